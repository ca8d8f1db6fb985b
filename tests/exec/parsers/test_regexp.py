from __future__ import annotations

import pytest

from lokiarrow.errors import ParseError
from lokiarrow.exec.parsers.regexp import compile_parser
from lokiarrow.logql import ast
from tests.exec.parsers.helpers import run

LINES = ["GET /api 200 12ms", "POST /x 500", "nothing here", "", None]


@pytest.mark.parametrize(("pattern", "existing", "want"), [
    # all groups named: Arrow's extract_regex
    ("(?P<method>[A-Z]+) (?P<path>\\S+) (?P<status>\\d+)", set(),
     [{"method": "GET", "path": "/api", "status": "200"}, {"method": "POST", "path": "/x", "status": "500"}, {}, {}, {}]),
    # a group that takes no part gives ""
    ("(?P<method>[A-Z]+) \\S+ \\d+(?P<took> \\d+ms)?", set(),
     [{"method": "GET", "took": " 12ms"}, {"method": "POST", "took": ""}, {}, {}, {}]),
    # unnamed groups: line by line with re2
    ("([A-Z]+) (?P<path>\\S+)", set(), [{"path": "/api"}, {"path": "/x"}, {}, {}, {}]),
    ("(?P<path>/\\w+)", {"path"}, [{"path_extracted": "/api"}, {"path_extracted": "/x"}, {}, {}, {}]),
    ("(?P<_1>[a-z])", set(), [{"_1": "a"}, {"_1": "x"}, {"_1": "n"}, {}, {}]),
    ("(?P<e>^$)", set(), [{}, {}, {}, {"e": ""}, {}]),
])
def test_regexp(pattern: str, existing: set[str], want: list[dict[str, str]]) -> None:
    assert run(ast.RegexpParser(pattern), LINES, existing) == want


@pytest.mark.parametrize(("pattern", "error"), [
    ("(\\d+)", "at least one named capture must be supplied"),
    ("\\d+", "at least one named capture must be supplied"),
    ("(?P<a>x", "error parsing regexp: missing closing ): `(?P<a>x`"),
])
def test_regexp_errors(pattern: str, error: str) -> None:
    with pytest.raises(ParseError) as exc:
        compile_parser(pattern)
    assert exc.value.msg == error
