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
import shutil
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


GATEWAY_TEMPLATE = ROOT / "deploy" / "gateway" / "nginx.conf.template"
TEMPLATE_VARIABLES = set(re.findall(r"\$\{(GATEWAY_[A-Z_]+)\}", GATEWAY_TEMPLATE.read_text()))
_SERVER = re.compile(r"server\s+([^\s;]+)\s*;")


def pools(environment: dict[str, str]) -> dict[str, list[str]]:
    """A gateway's pools (WRITE, READ, BACKEND, GRPC_WRITE, GRPC_READ): the HOST:PORT of each
    `server` line of its GATEWAY_*_SERVERS variable, which must hold nothing else."""
    found = {}
    for name, value in environment.items():
        if name.startswith("GATEWAY_") and name.endswith("_SERVERS"):
            found[name.removeprefix("GATEWAY_").removesuffix("_SERVERS")] = _SERVER.findall(value)
            assert _SERVER.sub("", value).strip() == "", f"{name}: not only `server HOST:PORT;` lines"
    return found


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
    # one server: every pool is it
    assert pools(gateway) == {"WRITE": [f"lokiarrow:{exposed_port()}"], "READ": [f"lokiarrow:{exposed_port()}"],
                              "BACKEND": [f"lokiarrow:{exposed_port()}"], "GRPC_WRITE": ["lokiarrow:9095"],
                              "GRPC_READ": ["lokiarrow:9095"]}
    # every variable of the template has a value (the image's envsubst would leave it unset)
    assert TEMPLATE_VARIABLES and TEMPLATE_VARIABLES <= set(gateway)
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


# The scalable profile (`docker compose --profile scalable up`): MinIO and its bucket, writers,
# readers and a backend running deploy/scalable/'s configs, their gateway and their Grafana.
SCALABLE = ROOT / "deploy" / "scalable"
ROLES = {"lokiarrow-write-1": "write", "lokiarrow-write-2": "write", "lokiarrow-read": "read",
         "lokiarrow-backend": "backend"}


def scalable() -> dict[str, Any]:
    return {name: s for name, s in compose()["services"].items() if "scalable" in s.get("profiles", [])}


def mounted_file(service: dict[str, Any], path: str) -> Path:
    """The repository file a service sees at `path`, through its bind mounts."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith(".") and (path == target or path.startswith(target + "/")):
            return ROOT / source / path.removeprefix(target).lstrip("/")
    raise AssertionError(f"{path} is not mounted from the repository")


def service_config(name: str) -> tuple[Any, dict[str, Any]]:
    """A lokiarrow service's config, as the server reads it and as YAML."""
    from lokiarrow.config import from_yaml
    service = scalable()[name]
    command = service["entrypoint"]
    assert command[:2] == ["lokiarrow", "serve"]
    [flag] = [arg for arg in command if arg.startswith("-config.file=")]
    text = mounted_file(service, flag.split("=", 1)[1]).read_text(encoding="utf-8")
    return from_yaml(text), yaml.safe_load(text)


def test_the_scalable_profile_leaves_the_default_services_alone() -> None:
    services = compose()["services"]
    default = {name for name, s in services.items() if "profiles" not in s}
    assert default == {"lokiarrow", "gateway", "grafana", "agent"}
    assert set(scalable()) == {*ROLES, "minio", "minio-setup", "scalable-gateway", "scalable-grafana"}
    assert set(scalable()) | default == set(services)
    published = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"
    writers = [name for name, role in ROLES.items() if role == "write"]
    assert len(writers) == 2 and scalable()["lokiarrow-read"]["deploy"]["replicas"] == 2
    assert "replicas" not in scalable()["lokiarrow-backend"].get("deploy", {})   # one compactor


@pytest.mark.parametrize("name", sorted(ROLES))
def test_each_scalable_service_runs_its_target_on_the_shared_bucket(name: str) -> None:
    service = scalable()[name]
    config, doc = service_config(name)
    assert config.target == ROLES[name] and config.auth_enabled   # the gateway sets X-Scope-OrgID
    # the image's -common.path-prefix=/data is not passed: it would override the bucket
    assert not any(arg.startswith("-common.path-prefix") for arg in service["entrypoint"])
    assert service["image"] == compose()["services"]["lokiarrow"]["image"]
    assert service["depends_on"]["minio-setup"] == {"condition": "service_completed_successfully"}
    # the bucket minio-setup creates, on the MinIO it starts, with its login
    minio = scalable()["minio"]
    setup = scalable()["minio-setup"]["entrypoint"][-1]
    bucket = urlsplit(config.path_prefix)
    assert bucket.scheme == "s3" and f"mb --ignore-existing minio/{bucket.hostname}" in setup
    endpoint = urlsplit(config.storage.endpoint)
    assert (endpoint.hostname, endpoint.port) == ("minio", 9000) and f"http://minio:{endpoint.port} " in setup
    login = (minio["environment"]["MINIO_ROOT_USER"], minio["environment"]["MINIO_ROOT_PASSWORD"])
    assert (config.storage.access_key_id, config.storage.secret_access_key) == login
    assert " ".join(login) in setup
    # the WAL and the cache on the volume at /data: a named one, or the image's own (VOLUME /data)
    assert dockerfile("VOLUME") == ["/data"]
    for folder in (config.ingester.wal_dir, config.storage.cache_location):
        assert folder.startswith("/data/"), folder
    if ROLES[name] == "write":   # each writer's WAL in a volume of its own
        [volume] = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == "/data"]
        assert volume in compose()["volumes"]
        assert [s for s in scalable().values() if f"{volume}:/data" in s.get("volumes", [])] == [service]
    assert config.http_listen_port == exposed_port()


def test_the_readers_know_the_writers_and_split_through_the_gateway() -> None:
    config, doc = service_config("lokiarrow-read")
    writers = [f"http://{name}:{service_config(name)[0].http_listen_port}" for name, role in ROLES.items()
               if role == "write"]
    assert doc["querier"]["writers"] == writers
    gateway = scalable()["scalable-gateway"]["environment"]
    assert config.frontend.downstream_url == f"http://scalable-gateway:{gateway['GATEWAY_PORT']}"
    assert config.limits.split_queries_by_interval == 24 * 3600 * 10**9
    backend, _ = service_config("lokiarrow-backend")
    assert backend.compactor.retention_enabled   # the delete requests API needs it, as in Loki


def test_the_scalable_gateway_pools_the_replicas() -> None:
    gateway = scalable()["scalable-gateway"]
    environment = gateway["environment"]
    assert TEMPLATE_VARIABLES <= set(environment)
    assert gateway["image"] == compose()["services"]["gateway"]["image"]
    assert gateway["volumes"] == compose()["services"]["gateway"]["volumes"]   # the same template and logins

    def addresses(role: str, grpc: bool = False) -> list[str]:
        return [f"{name}:{(cfg.grpc_listen_port if grpc else cfg.http_listen_port)}"
                for name, cfg in ((n, service_config(n)[0]) for n, r in ROLES.items() if r == role)]

    assert pools(environment) == {"WRITE": addresses("write"), "READ": addresses("read"),
                                  "BACKEND": addresses("backend"), "GRPC_WRITE": addresses("write", grpc=True),
                                  "GRPC_READ": addresses("read", grpc=True)}
    # NGINX resolves the names when it starts: every replica must be up by then
    assert gateway["depends_on"] == {name: {"condition": "service_healthy"} for name in ROLES}
    published = {int(p.split(":")[1]) for p in gateway["ports"]}
    assert published == {int(environment["GATEWAY_PORT"]), int(environment["GATEWAY_GRPC_PORT"])}


@pytest.mark.parametrize("name", ["gateway", "scalable-gateway"])
def test_the_gateway_template_renders_to_a_config_nginx_accepts(name: str, tmp_path: Path) -> None:
    """The compose service's environment rendered into the template, as the nginx image does,
    then `nginx -t`. Outside compose's network its host names do not resolve: they become
    127.0.0.1 (ports kept), and the mounted files are the repository's."""
    from tests.gateway.gateway import render
    service = compose()["services"][name]
    environment = dict(service["environment"])
    for variable in ("GATEWAY_HTPASSWD", "GATEWAY_TENANTS"):
        environment[variable] = str(mounted_file(service, environment[variable]))
    environment["GATEWAY_RUN_DIR"] = str(tmp_path)
    for pool in [v for v in environment if v.endswith("_SERVERS")]:
        environment[pool] = _SERVER.sub(lambda m: f"server 127.0.0.1:{m.group(1).rsplit(':', 1)[1]};",
                                        environment[pool])
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(environment))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    checked = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "upstream writers { server 127.0.0.1:3100;" in conf.read_text()


def test_the_scalable_grafana_reaches_the_scalable_gateway() -> None:
    grafana = scalable()["scalable-grafana"]
    folder = mounted_file(grafana, PROVISIONED_AT)
    [path] = sorted(folder.glob("*.yaml"))
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert errors(DATASOURCES_V1, doc) == []
    [loki] = doc["datasources"]
    url = urlsplit(loki["url"])
    gateway = scalable()["scalable-gateway"]["environment"]
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", "scalable-gateway", int(gateway["GATEWAY_PORT"]), "")
    assert grafana["depends_on"] == ["scalable-gateway"]
    check = ["htpasswd", "-vb", str(ROOT / "deploy/gateway/htpasswd"), loki["basicAuthUser"],
             loki["secureJsonData"]["basicAuthPassword"]]
    assert subprocess.run(check, capture_output=True).returncode == 0
