"""A real `lokiarrow serve` subprocess for the benchmark, and a sampler of its memory and CPU.

Contract: `ServerProcess` is a context manager; leaving it always stops the server (SIGTERM, then
SIGKILL after `stop_timeout`), and on Linux the server also dies if this process dies first
(PR_SET_PDEATHSIG), so a benchmark never leaves a server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import psutil

from tests.conftest import PERMISSIVE, free_port  # the limits Loki ran the conformance data with

ROOT = Path(__file__).resolve().parent.parent

def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# the figures are of the files as flushes leave them: the compactor (bench/compaction.py) runs apart
BENCH_CONFIG = PERMISSIVE + "compactor:\n  compaction_interval: 0s\n"


class ServerProcess:
    def __init__(self, work: Path, config: str = BENCH_CONFIG, start_timeout: float = 60,
                 stop_timeout: float = 120, data: Path | None = None) -> None:
        self.data = data or work / "data"   # several processes of a scaled-out deployment share one
        self.data.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = work / "config.yaml"
        self.config_path.write_text(config)
        self.log_path = work / "server.log"
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        args = [sys.executable, "-m", "lokiarrow.cli", "serve", f"-common.path-prefix={self.data}",
                f"-server.http-listen-port={self.port}", "-server.http-listen-address=127.0.0.1",
                f"-config.file={self.config_path}", "-server.grpc-listen-port=0", "-log.level=warn"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=_die_with_parent)  # noqa: PLW1509
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server not ready after {self.start_timeout:.0f} s:\n{self.log_tail()}")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Noise:
    """CPU used by processes other than the server and this one since `start()`, in cores.

    The machine is shared (builds, tests); a busy neighbour skews the figures, so runs report it.
    """

    def __init__(self, server_pid: int) -> None:
        self.procs = [psutil.Process(server_pid), psutil.Process()]
        self.start()

    def _busy(self) -> tuple[float, float, float]:
        t = psutil.cpu_times()
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
        ours = 0.0
        for p in self.procs:
            with contextlib.suppress(psutil.Error):
                c = p.cpu_times()
                ours += c.user + c.system
        return time.monotonic(), busy, ours

    def start(self) -> None:
        self._t0 = self._busy()

    def cores(self) -> float:
        now, busy, ours = self._busy()
        then, busy0, ours0 = self._t0
        return max(0.0, ((busy - busy0) - (ours - ours0)) / max(now - then, 1e-9))


class Sampler:
    """Samples a process's RSS every `period` s in a thread; `mark()` starts a new phase.

    Peak RSS is kept per phase (name -> bytes) and overall; CPU seconds are read on demand.
    """

    def __init__(self, pid: int, period: float = 0.02) -> None:
        self.proc = psutil.Process(pid)
        self.period = period
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def mark(self, phase: str) -> None:
        self._sample()
        self.phase = phase
        self._sample()

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def cpu_seconds(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    @property
    def peak(self) -> int:
        return max(self.peaks.values(), default=0)

    def _sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            rss = self.rss()
            if rss > self.peaks.get(self.phase, 0):
                self.peaks[self.phase] = rss

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._sample()
