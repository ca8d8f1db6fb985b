"""The write-ahead log: acknowledged entries survive a crash.

A tenant's WAL is a folder of segments, each an Arrow IPC stream of ENTRIES batches (lz4).

1. `write(batch)` appends a batch to the open segment and returns a ticket; it does not wait for the disk.
2. `sync(ticket)` returns once that batch is on disk. Concurrent callers share one fsync
   (group commit): whoever holds the sync lock fsyncs everything written so far.
3. `rotate()` fsyncs and closes the open segment and opens the next; it returns the closed
   segment's number so a flush can `retire(upto)` the segments its data came from.
4. `replay()` yields every batch of every segment in order; a torn tail (a crash mid-write of a
   batch that was never acknowledged) ends that segment's replay. A segment that ends otherwise
   (corrupted, or torn but not the newest) is also copied to the quarantine (store/quarantine.py).
5. A failed write or fsync (a full disk) fails the pushes whose batches it did not make durable,
   and leaves the segment: the next write opens a new one, so a torn batch ends only that segment
   (whose replay stops there: nothing after it was acknowledged).
6. `id` names the segments' numbering (kept in the folder): a flush's index files carry it with
   the segments they cover (store/tenant.py), so a restart knows which segments a flush committed.
   Numbers restart at 1 when a process starts on an empty folder, and so does the id: a new one.

Thread safety: `write` and `rotate` must be called under the caller's lock that also guards the
head, so that a segment never holds an entry the head it is retired with does not; `sync` may be
called from any thread.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Generator, Iterator
from typing import BinaryIO

import pyarrow as pa

from lokiarrow.store.quarantine import quarantine_segment
from lokiarrow.store.schema import ENTRIES


class WAL:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        existing = self._segments()
        self._fresh = not existing
        self._id: str | None = None
        self._number = (existing[-1] + 1) if existing else 1
        self._sync_lock = threading.Lock()
        self._written = 0      # batches written to the open segment
        self._synced = 0       # batches of the open segment known to be on disk
        self._file: BinaryIO | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._durable_upto: dict[int, int] = {}   # failed segments: how many of their batches are on disk
        self._broken = False                      # the open segment failed: the next write leaves it

    @property
    def id(self) -> str:
        """The segments' numbering (step 6); the folder and its id file are made on first use, so
        a tenant that is only read leaves nothing on disk."""
        if self._id is None:
            os.makedirs(self.folder, exist_ok=True)
            self._id = _id_of(self.folder, fresh=self._fresh)
        return self._id

    def _segments(self) -> list[int]:
        if not os.path.isdir(self.folder):
            return []
        return sorted(int(n.split(".")[0]) for n in os.listdir(self.folder) if n.endswith(".arrow"))

    def _path(self, number: int) -> str:
        return os.path.join(self.folder, f"{number:010d}.arrow")

    def _open(self) -> None:
        _ = self.id   # the folder and its id file exist before any segment
        path = self._path(self._number)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115
        try:
            # lz4 quarters what each fsync must write, for less CPU than the write it saves
            self._writer = pa.ipc.new_stream(self._file, ENTRIES, options=pa.ipc.IpcWriteOptions(compression="lz4"))
        except OSError:   # not even the header fits: the segment holds nothing, it goes
            self._file.close()
            self._file = None
            os.remove(path)
            raise
        self._written = self._synced = 0

    def write(self, batch: pa.RecordBatch) -> tuple[int, int]:
        if self._broken:
            self.rotate()
        if self._writer is None:
            self._open()
        assert self._writer is not None
        try:
            self._writer.write_batch(batch)
        except OSError:
            self._fail()
            raise
        self._written += 1
        return self._number, self._written

    def _fail(self) -> None:
        """The open segment could not be written: what was synced stays, the rest is not durable."""
        with self._sync_lock:
            self._durable_upto.setdefault(self._number, self._synced)
            self._broken = True

    def sync(self, ticket: tuple[int, int]) -> None:
        number, seq = ticket
        with self._sync_lock:
            durable = self._durable_upto.get(number)
            if durable is not None:
                if seq > durable:
                    raise OSError(f"the WAL segment {number} could not be written to disk")
                return
            if number != self._number or self._synced >= seq or self._file is None:
                return  # rotated (rotation fsyncs) or already covered by another caller's fsync
            target = self._written
            try:
                os.fsync(self._file.fileno())
            except OSError:
                self._durable_upto[number] = self._synced
                self._broken = True
                raise
            self._synced = target

    def rotate(self) -> int:
        """Close the open segment (durably) and start a new one; returns the closed number."""
        with self._sync_lock:
            closed = self._number
            if self._writer is not None and self._file is not None:
                try:
                    self._writer.close()
                    os.fsync(self._file.fileno())
                except OSError:   # every acknowledged batch was synced already: a torn end at worst
                    self._durable_upto.setdefault(closed, self._synced)
                finally:
                    self._file.close()
            self._writer = None
            self._file = None
            self._broken = False
            self._number += 1
            return closed

    def retire(self, upto: int) -> None:
        """Delete the segments numbered `upto` and below: their entries are in chunk files now."""
        for number in self._segments():
            if number <= upto:
                os.remove(self._path(number))

    def replay(self) -> Iterator[pa.RecordBatch]:
        found = [number for number in self._segments() if number < self._number]
        for number in found:
            path = self._path(number)
            failure = yield from _read_segment(path)
            if failure is not None and not (number == found[-1] and _TORN.search(failure)):
                quarantine_segment(path, f"{self.id}-{os.path.basename(path)}", failure)

    def oldest_segment_ns(self) -> int | None:
        """When the oldest segment was last written (ns), or None when there is none."""
        found = self._segments()
        return os.stat(self._path(found[0])).st_mtime_ns if found else None

    def close(self) -> None:
        self.rotate()


def _id_of(folder: str, fresh: bool) -> str:
    """The folder's WAL id; a new one when `fresh` (no segments) or none was kept."""
    path = os.path.join(folder, "wal.id")
    if not fresh and os.path.exists(path):
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    made = uuid.uuid4().hex
    tmp = f"{path}.{made}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(made)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return made


# what Arrow says when a stream ends inside a message: the batch being written at a crash
_TORN = re.compile(r"only \d+ bytes available|but only read|bytes for message body, got")


def _read_segment(path: str) -> Generator[pa.RecordBatch, None, str | None]:
    """The batches of a segment up to its end or its first unreadable byte; returns why it
    stopped early (None: a clean end)."""
    try:
        with open(path, "rb") as f:
            reader = pa.ipc.open_stream(f)
            while True:
                try:
                    batch = reader.read_next_batch()
                    batch.validate(full=True)
                except StopIteration:
                    return None
                yield batch
    except (pa.ArrowException, OSError, EOFError) as exc:
        return str(exc) or type(exc).__name__
