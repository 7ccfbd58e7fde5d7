"""Exact deduplication by key, sort/merge on disk, deterministic whatever the task count.

Three steps around a `Barrier`:

1. `CollectKeys` (every task): for each document, one record (key, preference, input file, position in
   that file) per key; documents pass through unchanged. The task sorts its records in runs of at most
   `buffer_records` (24 bytes each) and writes each run to `keys/<rank>_<run>.bin`.
2. `ResolveKeys` (one global job): a streaming k-way merge of the sorted runs. Among records sharing a
   key, the one with the smallest (preference, input file, position) survives — an order that does not
   depend on tasks. The losers are appended to `remove/<input file>.bin`; memory stays flat.
3. `DropKeyed` (every task, after the barrier): drops documents listed for their input file.

`SortedRuns` and `merge_runs` are the shared sort/merge machinery (line dedup uses them with its own
record layout).

Keys are 64-bit hashes (blake2b): among a billion distinct keys the chance that any two collide is
about 3 %, and a collision costs one document.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from typing import Callable, Iterator

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from webmill.dedup.common import ShardPositions
from webmill.stages.exclusions import ExclusionMixin

RECORD = np.dtype([("key", "<u8"), ("pref", "<i8"), ("shard", "<u4"), ("pos", "<u4")])
CHUNK = 1 << 16


def hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


# a key function returns (key, preference) pairs for a document; no pair = the document is never a duplicate
KeyFunction = Callable[[Document], list[tuple[int, int]]]


class SortedRuns:
    """Records of one task, sorted and written to disk in runs of at most `buffer_records` records:
    `<folder>/<rank>_<run>.bin`. Memory: one run. A rerun of the task first removes its old runs."""

    def __init__(self, folder: str, rank: int, dtype: np.dtype, buffer_records: int = 1 << 21):
        self.folder, self.rank, self.dtype = folder, rank, dtype
        self.buffer = np.empty(max(1, buffer_records), dtype=dtype)
        self.count = 0
        self.runs = 0
        os.makedirs(folder, exist_ok=True)
        for old in os.listdir(folder):
            if old.startswith(f"{rank:05d}_"):
                os.remove(os.path.join(folder, old))

    def add(self, record: tuple) -> None:
        self.buffer[self.count] = record
        self.count += 1
        if self.count == len(self.buffer):
            self.flush()

    def flush(self) -> None:
        """Write the buffered records as one sorted run (the first one even when empty)."""
        if self.count == 0 and self.runs:
            return
        table = np.sort(self.buffer[: self.count], order=list(self.dtype.names))
        path = os.path.join(self.folder, f"{self.rank:05d}_{self.runs:04d}.bin")
        table.tofile(path + ".tmp")
        os.replace(path + ".tmp", path)
        self.runs += 1
        self.count = 0


def _stream(path: str, dtype: np.dtype = RECORD) -> Iterator[tuple]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK * dtype.itemsize):
            yield from np.frombuffer(chunk, dtype=dtype).tolist()


def merge_runs(folder: str, dtype: np.dtype) -> Iterator[tuple]:
    """All sorted runs in `folder` merged into one sorted stream (one chunk of each run in memory)."""
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".bin"))
    return heapq.merge(*(_stream(f, dtype) for f in files))


class CollectKeys(PipelineStep):
    type = "🫂 - DEDUP"
    name = "collect keys"

    def __init__(self, work_dir: str, key_function: KeyFunction, buffer_records: int = 1 << 21):
        super().__init__()
        self.work_dir = work_dir
        self.key_function = key_function
        self.buffer_records = buffer_records

    def run(self, data, rank: int = 0, world_size: int = 1):
        runs = SortedRuns(os.path.join(self.work_dir, "keys"), rank, RECORD, self.buffer_records)
        positions = ShardPositions()
        for doc in data:
            self.stat_update(StatHints.total, StatHints.forwarded)
            shard, pos, _new_shard = positions.next(doc)
            with self.track_time():
                for key, pref in self.key_function(doc):
                    runs.add((key, pref, shard, pos))
            yield doc
        runs.flush()


class ResolveKeys(PipelineStep):
    type = "🫂 - DEDUP"
    name = "resolve duplicates"

    def __init__(self, work_dir: str):
        super().__init__()
        self.work_dir = work_dir

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        key_dir, remove_dir = os.path.join(self.work_dir, "keys"), os.path.join(self.work_dir, "remove")
        os.makedirs(remove_dir, exist_ok=True)
        for old in os.listdir(remove_dir):  # a rerun starts from a clean slate
            os.remove(os.path.join(remove_dir, old))
        outputs: dict[int, object] = {}
        last_key = None
        with self.track_time():
            for key, _pref, shard, pos in merge_runs(key_dir, RECORD):
                self.stat_update("keys")
                if key == last_key:
                    self.stat_update("duplicates")
                    if shard not in outputs:
                        outputs[shard] = open(os.path.join(remove_dir, f"{shard:06d}.bin"), "ab")
                    outputs[shard].write(np.array([pos], dtype="<u4").tobytes())
                last_key = key
        for handle in outputs.values():
            handle.close()


class DropKeyed(ExclusionMixin, PipelineStep):
    type = "🫂 - DEDUP"
    name = "drop duplicates"

    def __init__(self, work_dir: str, reason: str = "duplicate", exclusion_writer=None):
        super().__init__()
        self.work_dir = work_dir
        self.reason = reason
        self.exclusion_writer = exclusion_writer

    def _removals(self, shard: int) -> set[int]:
        path = os.path.join(self.work_dir, "remove", f"{shard:06d}.bin")
        return set(np.fromfile(path, dtype="<u4").tolist()) if os.path.exists(path) else set()

    def run(self, data, rank: int = 0, world_size: int = 1):
        positions, removals = ShardPositions(), set()
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                shard, pos, new_shard = positions.next(doc)
                if new_shard:
                    removals = self._removals(shard)
                if pos in removals:
                    self.drop(doc, self.reason, rank)
                else:
                    yield from self.keep(doc)
