"""A query that runs into the timeout is a reported row, not a failed run, and is not asked again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.report import MetricResult, Results, markdown, summary
from bench.run import CallTimedOut, Http, Settle, _errors_of, _interleaved_ms, _ours


class SlowHttp(Http):
    def __init__(self) -> None:
        self.timeout, self.calls = 2.0, 0

    def call(self, method: str, path: str, params: dict[str, object] | None = None) -> tuple[int, bytes]:
        self.calls += 1
        raise TimeoutError("timed out")


def test_a_timed_out_call_is_reported_and_not_repeated() -> None:
    client = SlowHttp()
    settled: list[bool] = []

    def settle() -> str:
        settled.append(True)
        return "settled"

    ours = _ours(client, "/loki/api/v1/query_range", {"query": "x"}, settle)
    medians, _, errors = _interleaved_ms({"ours": ours, "floor": lambda: 1}, runs=5, warmup=1)
    assert client.calls == 1 and settled == [True]
    assert "ours" not in medians and "floor" in medians
    assert isinstance(errors["ours"], CallTimedOut)
    text, timed_out = _errors_of(errors)
    assert timed_out == 2.0 and "settled" in text
    res = Results("x", 1, 1, 1, 1, query_timeout=2.0)
    res.metrics.append(MetricResult("mg", "t", "q", "asked", "≤ 1 ms", "", duckdb_ms=1.0, error=text,
                                    timed_out=timed_out, met=False))
    assert "timed out (> 2 s)" in markdown(res)
    assert "timed out" in summary(res)


def test_settle_waits_for_the_server_to_go_quiet(tmp_path: Path) -> None:
    done = tmp_path / "done"
    busy = (f"import pathlib, time\nt = time.time()\nwhile time.time() - t < 1.5: pass\n"
            f"pathlib.Path({str(done)!r}).touch()\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", busy])
    try:
        note = Settle(proc.pid, limit=20, calm=0.5)()
        assert "went on working" in note
        assert done.exists()  # it returned only once the busy part was over
        assert "still busy" in Settle(proc.pid, limit=0.3, quiet=-1)()
    finally:
        proc.kill()
        proc.wait()
    assert "gone" in Settle(proc.pid, limit=5)()
