"""The deployment files: docker-compose.yml, the Grafana provisioning and the Dockerfile.

No Docker engine runs here, so the files are checked for what they declare:
1. docker-compose.yml against the Compose specification's JSON schema (the copy check-jsonschema
   ships, vendor/compose-spec.json), and its wiring: mounted paths exist, images are pinned,
   the port lokiarrow publishes is the one its image exposes;
2. the Grafana data source provisioning files against DATASOURCES_V1, Grafana's provisioning format
   (apiVersion 1, the keys of pkg/services/provisioning/datasources/types.go), plus Grafana's own
   check that each organisation has at most one default data source, and that the data source
   reaches lokiarrow by its compose service name and port;
3. the Dockerfile's ENTRYPOINT, started here as the image would start it, answers its HEALTHCHECK
   and keeps what it is sent under the volume's path.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.conftest import ROOT, free_port

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DATASOURCES = ROOT / "deploy" / "grafana" / "datasources"
PROVISIONED_AT = "/etc/grafana/provisioning/datasources"

_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_INT_OR_ENV = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\$"}]}
# Grafana's data source provisioning format, version 1. Grafana itself ignores unknown keys; here
# they are errors, since an unknown key is a misspelt one that Grafana would silently drop.
DATASOURCES_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "datasources": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "type"],
            "additionalProperties": False,
            "properties": {
                "orgId": _INT_OR_ENV, "orgName": _STR, "version": _INT_OR_ENV,
                "name": {"type": "string", "minLength": 1}, "type": {"type": "string", "minLength": 1},
                "access": {"enum": ["proxy", "direct"]}, "url": _STR, "user": _STR, "database": _STR,
                "basicAuth": _BOOL, "basicAuthUser": _STR, "withCredentials": _BOOL, "isDefault": _BOOL,
                "correlations": {"type": "array", "items": {"type": "object"}},
                "jsonData": {"type": "object"},
                "secureJsonData": {"type": "object", "additionalProperties": _STR},
                "editable": _BOOL,
                # Grafana's uid rule: at most 40 of letters, digits, '-' and '_'.
                "uid": {"type": "string", "pattern": r"^[a-zA-Z0-9\-_]{1,40}$"},
            },
        }},
        "deleteDatasources": {"type": "array", "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": _STR, "orgId": _INT_OR_ENV, "orgName": _STR},
        }},
        "prune": _BOOL,
    },
}


def compose_schema() -> Any:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text(encoding="utf-8"))


def errors(schema: Any, doc: Any) -> list[str]:
    """Every schema violation of a document, as `path: message`."""
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}"
                  for e in Draft202012Validator(schema).iter_errors(doc))


def compose() -> Any:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def provisioning_files() -> list[Path]:
    return sorted(p for p in DATASOURCES.iterdir() if p.suffix in (".yaml", ".yml"))


def dockerfile(instruction: str) -> list[str]:
    """The arguments of each line of an instruction (continuation lines joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return [m.group(1).strip() for m in re.finditer(rf"^{instruction}\s+(.*)$", text, re.MULTILINE)]


def exposed_port() -> int:
    """The HTTP port: the first the image exposes (the second is gRPC's)."""
    [ports] = dockerfile("EXPOSE")
    http, grpc = ports.split()
    assert grpc == "9095"
    return int(http)


def test_compose_schema_is_the_compose_specification() -> None:
    schema = compose_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "compose_spec.json" and {"services", "volumes", "networks"} <= schema["properties"].keys()


def test_compose_file_follows_the_compose_specification() -> None:
    assert errors(compose_schema(), compose()) == []


@pytest.mark.parametrize(("change", "found"), [
    (lambda doc: doc["services"]["lokiarrow"].update(port=["3100:3100"]), "'port' was unexpected"),
    (lambda doc: doc["services"]["grafana"].update(depends_on={"lokiarrow": {"condition": "healthy"}}), "healthy"),
    (lambda doc: doc["services"]["lokiarrow"].update(restart=["always"]), "is not of type 'string'"),
], ids=["unknown-key", "bad-condition", "bad-type"])
def test_the_compose_schema_catches_mistakes(change: Any, found: str) -> None:
    doc = compose()
    change(doc)
    assert any(found in e for e in errors(compose_schema(), doc))


def test_compose_wiring() -> None:
    services = compose()["services"]
    assert {"lokiarrow", "grafana"} <= set(services)
    assert services["lokiarrow"]["build"] == "." and DOCKERFILE.is_file()
    assert [p.split(":")[-1] for p in services["lokiarrow"]["ports"]] == [str(exposed_port())]
    for service in services.values():
        assert "image" not in service or not service["image"].endswith(":latest"), "pin image versions"
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{source} is mounted but missing"
    grafana_mounts = {v.split(":")[1]: (ROOT / v.split(":")[0]).resolve() for v in services["grafana"]["volumes"]}
    assert grafana_mounts[PROVISIONED_AT] == DATASOURCES.resolve()
    assert services["gateway"]["depends_on"]["lokiarrow"] == {"condition": "service_healthy"}
    assert "gateway" in services["grafana"]["depends_on"]
    gateway = services["gateway"]["environment"]
    assert gateway["GATEWAY_WRITE_URL"] == gateway["GATEWAY_READ_URL"] == f"http://lokiarrow:{exposed_port()}"
    # every variable of the template has a value (the image's envsubst would leave it unset)
    wanted = set(re.findall(r"\$\{(GATEWAY_[A-Z_]+)\}", (ROOT / "deploy/gateway/nginx.conf.template").read_text()))
    assert wanted and wanted <= set(gateway)
    assert "-auth.enabled=true" in services["lokiarrow"]["command"]  # the gateway's tenants count


def test_grafana_provisioning_follows_grafanas_format() -> None:
    Draft202012Validator.check_schema(DATASOURCES_V1)
    files = provisioning_files()
    assert files, "no provisioning file"
    for path in files:
        assert errors(DATASOURCES_V1, yaml.safe_load(path.read_text(encoding="utf-8"))) == [], path.name


@pytest.mark.parametrize(("doc", "found"), [
    ({"apiVersion": 1, "datasources": [{"type": "loki"}]}, "'name' is a required property"),
    ({"apiVersion": 1, "datasources": [{"name": "x", "type": "loki", "jsondata": {}}]}, "'jsondata' was unexpected"),
    ({"apiVersion": 1, "datasources": [{"name": "x", "type": "loki", "access": "browser"}]}, "'browser' is not one of"),
    ({"apiVersion": 1, "datasources": [{"name": "x", "type": "loki", "uid": "a/b"}]}, "does not match"),
    ({"datasources": []}, "'apiVersion' is a required property"),
], ids=["no-name", "misspelt-key", "bad-access", "bad-uid", "no-version"])
def test_the_provisioning_schema_catches_mistakes(doc: Any, found: str) -> None:
    assert any(found in e for e in errors(DATASOURCES_V1, doc))


def test_the_provisioned_data_source_reaches_lokiarrow() -> None:
    sources = [ds for path in provisioning_files()
               for ds in yaml.safe_load(path.read_text(encoding="utf-8")).get("datasources", [])]
    defaults = Counter(int(ds.get("orgId", 1)) for ds in sources if ds.get("isDefault"))
    assert all(n == 1 for n in defaults.values()), f"more than one default data source in an organisation: {defaults}"
    [loki] = [ds for ds in sources if ds["type"] == "loki"]
    url = urlsplit(loki["url"])
    gateway = compose()["services"]["gateway"]["environment"]
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", "gateway", int(gateway["GATEWAY_PORT"]), "")
    assert loki["access"] == "proxy" and loki["basicAuth"] is True
    # the login Grafana uses is one the gateway accepts
    check = ["htpasswd", "-vb", str(ROOT / "deploy/gateway/htpasswd"), loki["basicAuthUser"],
             loki["secureJsonData"]["basicAuthPassword"]]
    assert subprocess.run(check, capture_output=True).returncode == 0


def test_the_image_copies_what_pip_install_needs() -> None:
    copied = [word for line in dockerfile("COPY") for word in line.split()[:-1]]
    assert {"pyproject.toml", "README.md", "lokiarrow"} <= set(copied)
    assert all((ROOT / path).exists() for path in copied)


def test_the_entrypoint_serves_and_passes_the_healthcheck(tmp_path: Path) -> None:
    [entrypoint] = dockerfile("ENTRYPOINT")
    [healthcheck] = dockerfile("HEALTHCHECK")
    command = json.loads(entrypoint)
    probe = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["lokiarrow", "serve"] and probe[0] == "python"
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()  # as the image's `mkdir /data`
    moved = {"-common.path-prefix=/data": f"-common.path-prefix={data}",
             f"-server.http-listen-port={exposed_port()}": f"-server.http-listen-port={port}"}
    args = [moved.get(arg, arg) for arg in command[2:]]
    assert args != command[2:] and len(moved) == sum(a != b for a, b in zip(args, command[2:], strict=True))
    check = [sys.executable, *probe[1:-1], probe[-1].replace(f":{exposed_port()}/", f":{port}/")]
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "serve", *args,
                                 "-server.grpc-listen-port=0"], cwd=ROOT,   # 9095 may be taken here
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(check, capture_output=True, timeout=30).returncode != 0:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, f"{shlex.join(check)} never passed"
            time.sleep(0.2)
        pushed = httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", timeout=30, json={
            "streams": [{"stream": {"app": "deploy"}, "values": [[str(time.time_ns()), "hello"]]}]})
        assert pushed.status_code == 204, pushed.text
    finally:
        proc.kill()
        proc.wait(10)
    assert any(p.is_file() for p in data.rglob("*")), "the server did not keep its data in the volume's path"


def test_the_compose_agent_ships_through_the_gateway_with_a_login_it_accepts() -> None:
    from lokiarrow.agent import config as agent_config
    agent = compose()["services"]["agent"]
    [mounted] = [v.split(":")[0] for v in agent["volumes"] if v.split(":")[1] == "/etc/agent/promtail.yaml"]
    assert "-config.file=/etc/agent/promtail.yaml" in agent["entrypoint"] and agent["entrypoint"][:2] == [
        "lokiarrow", "agent"]
    config = agent_config.parse((ROOT / mounted).read_text())  # the agent's own reader accepts it
    assert f":{config.server.http_listen_port}/ready" in agent["healthcheck"]["test"][-1]
    [client] = config.clients
    url = urlsplit(client.value["url"])
    gateway = compose()["services"]["gateway"]["environment"]
    assert (url.hostname, url.port, url.path) == ("gateway", int(gateway["GATEWAY_PORT"]), "/loki/api/v1/push")
    auth = client.value["basic_auth"]
    check = ["htpasswd", "-vb", str(ROOT / "deploy/gateway/htpasswd"), auth["username"], auth["password"]]
    assert subprocess.run(check, capture_output=True).returncode == 0
