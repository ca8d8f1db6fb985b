"""Go text/template with Loki's functions: (template, labels) → output, or Go's error text."""

from __future__ import annotations

import pytest

from lokiarrow.errors import BadRequest, Unsupported
from lokiarrow.logql.template import TemplateExecError, compile_template

LABELS = {"status_code": "200", "method": "get", "level": "error", "email": "bob@example", "foo": "BLIp",
          "bar": "blop", "n": "20", "f": "5.3", "sp": "  blip ", "empty": "", "path": "/a/b/",
          "json": '{"a": {"b": "c"}, "l": ["x", "y"], "n": 55}', "date": "2023-03-10T01:32:40.340485723Z",
          "url": "/q?x=a b*", "enc": "%2Fq%3Fx", "b64": "Zm9vYmE", "dur": "3m10s", "size": "3 kB"}
LINE = "héllo XYZ world XYZ"
TS = 1656353124120000000  # 2022-06-27T18:05:24.12Z


@pytest.mark.parametrize(("template", "expected"), [
    # text, actions, trim markers, comments
    ("plain text", "plain text"),
    ("{{.status_code}} {{.method | ToUpper}}", "200 GET"),
    ("foo{{.foo}}buzz{{  .bar  }}", "fooBLIpbuzzblop"),
    ("{{.missing}}|{{.missing | default \"-\"}}", "|-"),
    ("a  {{- .bar -}}  \n b", "ablopb"),
    ("a {{/* comment */}}b{{- /* trimmed */ -}} c", "a bc"),
    # literals
    ('{{ "a\\tb" }}|{{ `raw\\n` }}|{{ 0x10 }}|{{ 1_000 }}|{{ 1.5 }}|{{ true }}|{{ \'a\' }}', "a\tb|raw\\n|16|1000|1.5|true|97"),
    # control structures
    ('{{ if eq .level "error" }}E{{ else }}O{{ end }}', "E"),
    ('{{ if eq .level "x" }}X{{ else if eq .level "error" }}E{{ else }}O{{ end }}', "E"),
    ('{{ if and (contains "he" "hello") (contains "llo" "hello") }}yes{{end}}', "yes"),
    ('{{ if contains "ErrTimeout" .foo }} timeout {{else if contains "he" "hello"}}yes{{else}}no{{end}}', "yes"),
    ("{{ with .bar }}[{{ . }}]{{ end }}{{ with .missing }}x{{ else }}none{{ end }}", "[blop]none"),
    ('{{ range $i, $v := (fromJson .json).l }}{{ $i }}={{ $v }};{{ end }}', "0=x;1=y;"),
    ('{{ range $k, $v := fromJson .json }}{{ $k }} {{ end }}', "a l n "),
    ('{{ range (fromJson "[]") }}x{{ else }}empty{{ end }}', "empty"),
    ("{{ range $v := 5 }}{{ if eq $v 3 }}{{ break }}{{ end }}{{ if eq $v 1 }}{{ continue }}{{ end }}{{ $v }}{{ end }}", "02"),
    ("{{ $x := 5 }}{{ $x = add $x 1 }}{{ $x }}{{ $.bar }}", "6blop"),
    ("{{ (fromJson .json).a.b }} {{ index (fromJson .json) \"n\" }} {{ fromJson .json | len }}", "c 55 3"),
    # builtins
    ("{{ __line__ | len }} {{ len .bar }}", "20 4"),
    ("{{ and 1 0 }} {{ or 0 \"\" \"x\" }} {{ not true }} {{ not .empty }}", "0 x false true"),
    ("{{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }} {{ eq .bar \"x\" \"blop\" }}", "true true true true false true"),
    ("{{ index .bar 0 }} {{ slice .bar 1 3 }}", "98 lo"),
    ('{{ print 1 2 "a" 3 }}|{{ println "a" 1 }}|{{ printf "%s-%d-%v-%q-%.2f-%5s|%-4d|%x" .bar 3 1.5 "q" 3.14159 "ab" 7 255 }}',
     '1 2a3|a 1\n|blop-3-1.5-"q"-3.14-   ab|7   |ff'),
    ('{{ printf "%d %s" "x" }}', "%!d(string=x) %!s(MISSING)"),
    ('{{ html "<a href=\'x\'>&" }} {{ js "a\'b<" }} {{ urlquery "a b&" }}', "&lt;a href=&#39;x&#39;&gt;&amp; a\\'b\\u003C a+b%26"),
    # Loki's string functions
    ('{{ ToLower "AB" }}{{ ToUpper "cd" }}{{ lower .foo }}{{ upper .bar }}{{ title "hello wORLD" }}', "abCDblipBLOPHello WORLD"),
    ('{{ Replace .bar "o" "0" -1 }} {{ .bar | replace "blop" "bar" }} {{ TrimSpace .sp }}|{{ trim .sp }}', "bl0p bar blip|blip"),
    ('{{ .bar | trimAll "op" }} {{ .bar | trimPrefix "b" }} {{ .bar | trimSuffix "p" }} {{ Trim .path "/" }} {{ TrimPrefix .path "/" }}', "bl lop blo a/b a/b/"),
    ('{{ .foo | substr 1 3 }} {{ .bar | trunc 1 }} {{ trunc -5 "hello world" }} {{ substr 6 11 "hello world" }}', "LI b world world"),
    ('{{ if .foo | contains "p" }}y{{ end }}{{ if hasPrefix "BL" .foo }}p{{ end }}{{ if hasSuffix "Ip" .foo }}s{{ end }}', "yps"),
    ('{{ "foo\\n bar" | indent 2 }}|{{ "foo" | nindent 2 }}|{{ repeat 3 "ab" }}', "  foo\n   bar|\n  foo|ababab"),
    ('{{ alignLeft 5 "hello world" }}|{{ alignLeft 5 "hi" }}|{{ alignRight 5 "hello world" }}|{{ alignRight 5 "hi" }}', "hello|hi   |world|   hi"),
    ('{{ regexReplaceAll "(\\\\w+)@(\\\\w+)" .email "$2" }} {{ regexReplaceAll "(?P<u>b)ob" .email "${u}X" }}', "example bX@example"),
    ('{{ regexReplaceAllLiteral "(p)" .foo "${1}" }} {{ __line__ | count "XYZ" }} {{ count "a|b" "abab" }}', "BLI${1} 2 4"),
    ("{{ .url | urlencode }} {{ urldecode .enc }}", "%2Fq%3Fx%3Da+b%2A /q?x"),
    ('{{ b64enc "i\'m a string" }} {{ .b64 | b64dec }}', "aSdtIGEgc3RyaW5n fooba"),
    ("{{ .size | bytes }} {{ bytes \"3MB\" }} {{ .dur | duration }} {{ duration_seconds \"3ms\" }}", "3000 3e+06 190 0.003"),
    ('{{ default "-" "" }}{{ default "-" "foo" }}{{ .empty | default "d" }}', "-food"),
    # math
    ("{{ add 3 2 5 }} {{ add .n 1 | sub 30 }} {{ mul 5 2 3 }} {{ div 10 3 }} {{ div -7 2 }} {{ mod .n 3 }} {{ max 1 3 2 }} {{ min 2 1 3 }}", "10 9 30 3 -3 2 3 1"),
    ('{{ addf 3.5 2 5 }} {{ subf 5.5 2 1.5 }} {{ mulf 5.5 2 2.5 }} {{ divf 10 2 4 }} {{ addf 0.1 0.2 }}', "10.5 2 27.5 1.25 0.3"),
    ("{{ addf 1.5 1.5 | subf 5 1.5 | mulf 10.5 | divf 20.2 }}", "3.8476190476190477"),
    ('{{ maxf 1 2.5 3 }} {{ minf 1.5 2.5 3 }} {{ ceil .f }} {{ floor .f }} {{ round 123.555555 3 }} {{ round 123.88571428571 5 .2 }}', "3 1.5 6 5 123.556 123.88572"),
    ('{{ "2.5" | float64 | int | add 10 }} {{ int "0x10" }} {{ int "x" }} {{ float64 "1e3" }}', "12 16 0 1000"),
    # time
    ("{{ __timestamp__ }}", "2022-06-27 18:05:24.12 +0000 UTC"),
    ('{{ __timestamp__ | unixEpoch }} {{ __timestamp__ | unixEpochMillis }} {{ unixEpochNanos __timestamp__ }}', "1656353124 1656353124120 1656353124120000000"),
    ('{{ __timestamp__ | date "2006-01-02T15:04:05.00Z07:00 Mon Jan _2 03:04PM" }}', "2022-06-27T18:05:24.12Z Mon Jun 27 06:05PM"),
    ('{{ date "2006-01-02" (toDate "2006-01-02" "2021-11-02") }} {{ toDate "2006-01-02" "bad" | unixEpoch }}', "2021-11-02 -62135596800"),
    ('{{ sub (unixEpoch (toDate "2006-01-02" "2021-11-02")) (unixEpoch (toDate "2006-01-02" "2021-11-01")) }}', "86400"),
    ('{{ .date | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochNanos }}', "1678411960340485723"),
    ('{{ toDateInZone "2006-01-02 15:04" "Europe/Paris" "2021-11-02 10:00" }}', "2021-11-02 10:00:00 +0100 CET"),
    ('{{ date "2006-01-02 15:04:05" (unixToTime "1679577215") }} {{ unixToTime "19373" | unixEpoch }}', "2023-03-23 13:13:35 1673827200"),
    ('{{ (__timestamp__).Format "15:04" }} {{ __timestamp__.Year }} {{ div (unixEpoch now) (unixEpoch now) }}', "18:05 2022 1"),
])
def test_render(template: str, expected: str) -> None:
    assert compile_template(template).render(LABELS, LINE, TS) == expected


@pytest.mark.parametrize(("template", "error"), [
    ("{{.foo Replace \"foo\"}}", 'template: line:1:2: executing "line" at <.foo>: foo is not a method but has arguments'),
    ("{{.foo | now}}", 'template: line:1:9: executing "line" at <now>: wrong number of args for now: want 0 got 1'),
    ("{{ .status_code | unixEpoch }}", 'template: line:1:18: executing "line" at <unixEpoch>: '
                                       "wrong type for value; expected time.Time; got string"),
    ("{{ div 1 0 }}", 'template: line:1:3: executing "line" at <div>: error calling div: runtime error: integer divide by zero'),
    ('{{ lt 1 "a" }}', 'template: line:1:3: executing "line" at <lt>: error calling lt: incompatible types for comparison'),
    ("{{ .bar.x }}", 'template: line:1:3: executing "line" at <.bar.x>: can\'t evaluate field x in type string'),
    ('{{ regexReplaceAll "(" .bar "" }}', "template: line:1:3: executing \"line\" at <regexReplaceAll>: "
                                          "error calling regexReplaceAll: error parsing regexp: missing closing ): `(`"),
    ('{{ repeat "x" "y" }}', 'template: line:1:3: executing "line" at <repeat>: expected integer; found "x"'),
    ("{{ urldecode \"%zz\" }}", 'template: line:1:3: executing "line" at <urldecode>: error calling urldecode: invalid URL escape "%zz"'),
])
def test_render_error(template: str, error: str) -> None:
    with pytest.raises(TemplateExecError) as exc:
        compile_template(template).render(LABELS, LINE, TS)
    assert str(exc.value) == error


@pytest.mark.parametrize(("template", "error"), [
    ("{{ foo }}", 'template: line:1: function "foo" not defined'),
    ("{{ trimSpace .x }}", 'template: line:1: function "trimSpace" not defined'),
    ("{{ .a", "template: line:1: unclosed action"),
    ("a\n{{ end }}", "template: line:2: unexpected {{end}}"),
    ("{{ if .x }}", "template: line:1: unexpected EOF"),
    ("{{ $y }}", 'template: line:1: undefined variable "$y"'),
    ("{{ .a | }}", "template: line:1: missing value for command"),
    ("{{ @ }}", "template: line:1: bad character U+0040 '@'"),
    ("{{ break }}", "template: line:1: {{break}} outside {{range}}"),
    ('{{ "abc }}', "template: line:1: unterminated quoted string"),
])
def test_syntax_error(template: str, error: str) -> None:
    with pytest.raises(BadRequest) as exc:
        compile_template(template)
    assert exc.value.message == error


def test_unsupported_actions_are_refused() -> None:
    with pytest.raises(Unsupported):
        compile_template('{{ define "x" }}{{ end }}')


def test_compiled_once_and_fast_paths() -> None:
    assert compile_template("{{.bar}}") is compile_template("{{.bar}}")
    assert compile_template("{{ .bar }}").render({"bar": "x"}) == "x"
    assert compile_template("{{ .bar }}").render({}) == ""
    assert compile_template("only text").render({}) == "only text"
