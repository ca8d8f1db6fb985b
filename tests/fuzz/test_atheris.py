"""Coverage-guided fuzzing (bench/fuzz_atheris.py): the inputs atheris found, replayed through their
targets' checks, and a short real atheris run of every target."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from bench.fuzz_atheris import FEEDS, Tally, run_all
from lokiarrow.agent.config import parse as parse_agent_config
from lokiarrow.agent.settings import ConfigError
from lokiarrow.logql.template import compile_template
from tests.fuzz.atheris_regressions import REGRESSIONS
from tests.fuzz.generators import TARGETS

RUNS = 800      # inputs per target in the short run, its 200 seeds included


@pytest.mark.parametrize(("name", "item"), REGRESSIONS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(REGRESSIONS)])
def test_found_inputs_keep_the_contract(name: str, item: Any) -> None:
    TARGETS[name].check(item)


def test_a_zone_that_is_no_zone_file_renders_in_utc_as_unknown_zones_do() -> None:
    for name in ("America", "a" * 300, "Nowhere/Else"):
        rendered = compile_template(f'{{{{ toDateInZone "2006-01-02" "{name}" "2020-05-06" }}}}').render({})
        assert rendered == "2020-05-06 00:00:00 +0000 UTC"


def test_a_stage_location_that_is_no_zone_file_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_agent_config("scrape_configs:\n- job_name: a\n  pipeline_stages:\n"
                           "  - timestamp: {source: ts, format: RFC3339, location: Etc}\n")
    assert str(err.value) == ("scrape_configs[0].pipeline_stages[0].timestamp.location: "
                              "invalid location specified: unknown time zone Etc")


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ eq .missing . }} {{ ne . .missing }} {{ eq .missing .other }}", "false true true"),
    ("{{ eq . . }}", "true"),
])
def test_nil_against_a_map_is_unequal_as_in_go(template: str, expected: str) -> None:
    assert compile_template(template, promtail=True).render({"app": "a"}) == expected


@pytest.mark.parametrize(("config", "message"), [
    ("server:\n  b: 2\n  1: a\n", "server.1: unknown field"),
    ("zz: 1\n~: x\n", "None: unknown field"),
])
def test_unknown_keys_that_are_not_strings_are_refused_by_name(config: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_agent_config(config)
    assert str(err.value) == message


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_seeds_are_generator_inputs_as_bytes(name: str) -> None:
    """Fuzzed bytes decode to an input that encodes back to the same bytes, and most generator inputs
    have such bytes: the seed corpus starts where the generator targets reach."""
    feed = FEEDS[name]
    kept = 0
    for seed in range(100):
        data = feed.seed(TARGETS[feed.target].make(random.Random(seed)))
        if data is None:
            continue
        kept += 1
        item = feed.decode(data)
        if item is not None:
            assert feed.seed(item) == data
    assert kept >= 60


@pytest.mark.parametrize(("data", "fed"), [
    (b'[{"limit": {"rate": 10, "burst": 20, "drop": true}}]\na\nb', True),
    (b'[{"limit": {"rate": 10, "burst": 20}}]\na\nb', False),                      # waits for tokens by design
    (b'[{"match": {"selector": "{a=\\"b\\"}", "stages": [{"limit": {"rate": 1}}]}}]\na', False),
    (b"[" * 5000 + b"]" * 5000, False),
    (b"not json\na", False),
])
def test_pipelines_that_wait_by_design_are_not_fed(data: bytes, fed: bool) -> None:
    assert (FEEDS["pipeline_stages"].decode(data) is not None) is fed


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tally]:
    out: Path = tmp_path_factory.mktemp("atheris")
    tallies = run_all(sorted(FEEDS), RUNS, jobs=2, max_seconds=0, out=out, quiet=True)
    return {t.name: t for t in tallies}


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_a_short_atheris_run_finds_no_crash_and_grows_coverage(short_runs: dict[str, Tally], name: str) -> None:
    tally = short_runs[name]
    assert tally.crashes == 0, (tally.kinds, tally.deaths, [r["input"] for r in tally.saved])
    assert tally.inputs >= RUNS
    assert tally.seed_ft > 0
    assert tally.ft > tally.seed_ft, f"no feature past the seed corpus ({tally.seed_ft})"
