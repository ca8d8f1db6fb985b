"""Following files as Promtail does, without ever losing a line.

Each poll (every ~250 ms, in one reader thread):
1. Expand the targets' paths (globs, like Promtail's `__path__`, `**` included, less the
   `__path_exclude__` glob); a new file starts at its saved
   position, or at 0 when it has none (Promtail's default); a position past the end restarts at 0.
2. Rotation (the path names another inode now): the old file keeps being read to its end, then
   closed; the new file is read from 0. Copytruncate (the size fell below the read offset): read
   again from 0. Deletion: read to the end, close, and forget the position.
3. Read new bytes in large blocks, a few per file in turn so that a busy file does not starve the
   others; the complete lines of a block go out as one `Batch` through a bounded queue; a
   partial last line waits for its newline. A full queue stops the reading (back-pressure):
   memory stays bounded whatever the server does. Reading resumes as soon as the queue has
   room again, not at the next poll, so a backlog goes at the consumer's pace.
4. The consumer calls `batch.ack()` once the lines were pushed. A file's position advances only
   over acknowledged batches, in order, so a restart re-reads at most the unacknowledged lines.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from lokiarrow.agent.discovery import files
from lokiarrow.agent.positions import Positions

log = logging.getLogger(__name__)

FILENAME_LABEL = "filename"
ROOM_WAIT_S = 0.002   # how often a reader stopped by a full queue looks for room


@dataclass(frozen=True)
class Target:
    """A file (or a glob of files) to follow, with the labels its lines get."""

    path: str
    labels: dict[str, str] = field(default_factory=dict)
    exclude: str = ""   # a glob of files not to follow (`__path_exclude__`)


@dataclass(frozen=True)
class FileStats:
    """What `/metrics` shows per file: shipped position, bytes read, size, and lag (unshipped)."""

    path: str
    position: int
    read: int
    size: int

    @property
    def lag(self) -> int:
        return max(self.size - self.position, 0)


class _Acks:
    """The in-order commits of one file generation (an inode, until it is truncated): the
    position is the end of the last batch before which every batch was acknowledged. Once
    detached (rotation, truncation, deletion) its acks no longer move the saved position."""

    def __init__(self, positions: Positions, key: str, start: int) -> None:
        self._positions = positions
        self._key = key
        self._lock = threading.Lock()
        self._ends: dict[int, int] = {}
        self._done: set[int] = set()
        self._next_seq = 0
        self._next_commit = 0
        self._live = True
        self.position = start

    def add(self, end: int) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            self._ends[seq] = end
            return seq

    def ack(self, seq: int) -> None:
        with self._lock:
            if seq not in self._ends or seq in self._done:
                return
            self._done.add(seq)
            moved = False
            while self._next_commit in self._done:
                self._done.discard(self._next_commit)
                self.position = self._ends.pop(self._next_commit)
                self._next_commit += 1
                moved = True
            if moved and self._live:
                self._positions.put(self._key, self.position)

    def detach(self) -> None:
        with self._lock:
            self._live = False


class Batch:
    """Complete lines of one file, read at `read_ns`, ending at byte offset `end`; call `ack()`
    once they were shipped (acknowledging twice is harmless)."""

    __slots__ = ("_acks", "_seq", "end", "labels", "lines", "path", "read_ns")

    def __init__(self, path: str, labels: dict[str, str], lines: list[str], end: int, acks: _Acks) -> None:
        self.path = path
        self.labels = labels
        self.lines = lines
        self.end = end
        self.read_ns = time.time_ns()
        self._acks = acks
        self._seq = acks.add(end)

    def ack(self) -> None:
        self._acks.ack(self._seq)


class _File:
    """One open file: its inode, the bytes read so far, the partial line waiting for its end."""

    def __init__(self, path: str, labels: dict[str, str], positions: Positions) -> None:
        self.path = path
        self.labels = {**labels, FILENAME_LABEL: path}
        self.fd = os.open(path, os.O_RDONLY)
        st = os.fstat(self.fd)
        self.ident = (st.st_dev, st.st_ino)
        self.size = st.st_size
        start = positions.get(path)
        if start > st.st_size:
            log.info("position %d beyond the end of %s: reading it from 0", start, path)
            start = 0
            positions.put(path, 0)
        self.offset = start
        self.partial = b""
        self.acks = _Acks(positions, path, start)
        self.retired_at = 0.0

    def restart(self, positions: Positions) -> None:
        """The file was truncated: read it again from 0, as a new generation."""
        self.acks.detach()
        positions.put(self.path, 0)
        self.acks = _Acks(positions, self.path, 0)
        self.offset = 0
        self.partial = b""

    def stats(self) -> FileStats:
        return FileStats(self.path, self.acks.position, self.offset - len(self.partial), self.size)


class Tailer:
    """Follows the targets' files and hands their lines over through `batches` (a bounded queue
    read by one consumer). Thread-safe: `set_targets`, `stats` and `Batch.ack` may be called from
    any thread. The saved positions belong to `positions`; the tailer never writes the file."""

    def __init__(
        self,
        positions: Positions,
        targets: Iterable[Target] = (),
        *,
        poll_interval: float = 0.25,
        block_bytes: int = 256 * 1024,
        blocks_per_turn: int = 4,
        max_batches: int = 32,
        rotation_grace: float = 1.0,
    ) -> None:
        self.positions = positions
        self.batches: queue.Queue[Batch] = queue.Queue(maxsize=max_batches)
        self.poll_interval = poll_interval
        self.block_bytes = block_bytes
        self.blocks_per_turn = blocks_per_turn
        self.rotation_grace = rotation_grace
        self._targets = list(targets)
        self._files: dict[str, _File] = {}
        self._retired: list[tuple[_File, bool]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_targets(self, targets: Iterable[Target]) -> None:
        with self._lock:
            self._targets = list(targets)

    def stats(self) -> list[FileStats]:
        with self._lock:
            return [f.stats() for f in self._files.values()]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tailer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the files; batches still queued are not acknowledged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            files = list(self._files.values()) + [f for f, _ in self._retired]
            self._files.clear()
            self._retired.clear()
        for f in files:
            os.close(f.fd)

    def _run(self) -> None:
        while not self._stop.is_set():
            next_poll = time.monotonic() + self.poll_interval
            more = False
            try:
                more = self.poll()
                while more and time.monotonic() < next_poll and not self._stop.is_set():
                    while self.batches.full() and not self._stop.wait(ROOM_WAIT_S):
                        pass
                    more = self._read_all()
            except Exception:  # a bad poll must not end the agent's reading
                log.exception("tailer poll failed")
            if not more:
                self._stop.wait(max(0.0, next_poll - time.monotonic()))

    def poll(self) -> bool:
        """One round: find files, notice rotation/truncation/deletion, read what is new until
        every file is read to its end (False) or the queue is full (True)."""
        now = time.monotonic()
        wanted = self._wanted()
        for path in list(self._files):
            f = self._files[path]
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            except OSError as exc:  # unreadable for now: look again next round
                log.warning("cannot stat %s: %s", path, exc)
                continue
            if st is None or path not in wanted:
                self._retire(f, now, forget=st is None)
            elif (st.st_dev, st.st_ino) != f.ident:
                self._retire(f, now, forget=False)
                self.positions.put(path, 0)
            elif st.st_size < f.offset:
                log.info("%s was truncated: reading it from 0", path)
                f.restart(self.positions)
        for path, labels in wanted.items():
            if path not in self._files:
                try:
                    opened = _File(path, labels, self.positions)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.warning("cannot open %s: %s", path, exc)
                    continue
                with self._lock:
                    self._files[path] = opened
        for f in self._files.values():
            f.size = os.fstat(f.fd).st_size
        more = self._read_all()
        self._close_retired(now)
        return more

    def _read_all(self) -> bool:
        """Read the files in turns of `blocks_per_turn` blocks until all are at their end (False)
        or the queue is full (True)."""
        with self._lock:
            files = [f for f, _ in self._retired] + list(self._files.values())
        while files and not self._stop.is_set():
            files = [f for f in files if self._read(f)]
            if self.batches.full():
                return True
        return False

    def _wanted(self) -> dict[str, dict[str, str]]:
        with self._lock:
            targets = list(self._targets)
        wanted: dict[str, dict[str, str]] = {}
        for target in targets:
            for path in files(target.path, target.exclude):
                wanted.setdefault(path, target.labels)
        return wanted

    def _retire(self, f: _File, now: float, forget: bool) -> None:
        """Stop following `f` at its path; it is still read to its end before it is closed."""
        f.acks.detach()
        if forget:
            self.positions.remove(f.path)
        f.retired_at = now
        with self._lock:
            del self._files[f.path]
            self._retired.append((f, forget))

    def _close_retired(self, now: float) -> None:
        keep: list[tuple[_File, bool]] = []
        for f, forget in self._retired:
            quiet = os.fstat(f.fd).st_size <= f.offset
            if not quiet or now - f.retired_at < self.rotation_grace or self.batches.full():
                keep.append((f, forget))
                continue
            if f.partial:  # the file will not grow any more: its last line is complete
                self._hand_over(f, [f.partial.decode("utf-8", "replace")], f.offset)
                f.partial = b""
            os.close(f.fd)
        with self._lock:
            self._retired = keep

    def _read(self, f: _File) -> bool:
        """Read up to `blocks_per_turn` blocks of `f` while the queue has room; True when `f` may
        have more."""
        for _ in range(self.blocks_per_turn):
            if self.batches.full() or self._stop.is_set():
                return True
            data = os.pread(f.fd, self.block_bytes, f.offset)
            if not data:
                return False
            f.offset += len(data)
            buf = f.partial + data if f.partial else data
            cut = buf.rfind(b"\n")
            if cut < 0:
                f.partial = buf
                continue
            f.partial = buf[cut + 1 :]
            lines = buf[:cut].decode("utf-8", "replace").split("\n")
            self._hand_over(f, lines, f.offset - len(f.partial))
        return True

    def _hand_over(self, f: _File, lines: list[str], end: int) -> None:
        self.batches.put(Batch(f.path, f.labels, lines, end, f.acks))
