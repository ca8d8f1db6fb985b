#!/usr/bin/env bash
# One entry point: `./run.sh serve` sets up and starts the server; `./run.sh test` sets up and tests.
set -euo pipefail
cd "$(dirname "$0")"

venv() {
  if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
  local stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-$1
  if [ ! -f "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    if [ "$1" = test ]; then .venv/bin/pip install -q -e '.[test]'; else .venv/bin/pip install -q -e .; fi
    touch "$stamp"
  fi
}

test_tools() {
  # Node.js packages for the tests: winston-loki (a client), @grafana/lezer-logql (Grafana's LogQL grammar).
  # NGINX (the gateway's tests run the real one) and htpasswd; Node.js for the npm packages below
  local missing=()
  command -v npm >/dev/null || missing+=(nodejs npm)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  # Chromium for the explorer page's tests (driven by Playwright), without its desktop extras
  command -v chromium >/dev/null || missing+=(chromium fonts-liberation)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local stamp=tests/clients/node/node_modules/.installed-$(sha1sum tests/clients/node/package-lock.json | cut -c1-12)
  if [ ! -f "$stamp" ]; then (cd tests/clients/node && npm ci --silent --no-audit --no-fund) && touch "$stamp"; fi
  # moto's S3 server for the object storage tests, in its own venv (its pins differ from ours)
  stamp=.venv-s3/.installed-$(sha1sum tests/objects/s3-server.txt | cut -c1-12)
  if [ ! -f "$stamp" ]; then
    python3 -m venv .venv-s3 && .venv-s3/bin/pip install -q -r tests/objects/s3-server.txt && touch "$stamp"
  fi
}

case "${1:-}" in
  serve)
    venv run
    shift
    exec .venv/bin/lokiarrow serve "$@"
    ;;
  test)
    venv test
    test_tools
    shift
    .venv/bin/ruff check lokiarrow tests bench
    .venv/bin/mypy lokiarrow
    exec .venv/bin/pytest "$@"
    ;;
  soak)
    venv test
    shift
    exec .venv/bin/python -m tests.soak "$@"
    ;;
  bench)
    venv test
    shift
    if [ "${1:-}" = agent ]; then shift; exec .venv/bin/python -m bench.agent "$@"; fi
    if [ "${1:-}" = compact ]; then shift; exec .venv/bin/python -m bench.compaction "$@"; fi
    if [ "${1:-}" = scale ]; then shift; exec .venv/bin/python -m bench.scale "$@"; fi
    exec .venv/bin/python -m bench.run "$@"
    ;;
  *)
    echo "usage: ./run.sh serve [lokiarrow serve flags] | test [pytest args] | bench [agent|compact|scale] [flags]" \
         "| soak [--quick] [--only crash|overload|fuzz|atheris]" >&2
    exit 2
    ;;
esac
