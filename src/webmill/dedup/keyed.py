"""Exact deduplication by key, sort/merge on disk, deterministic whatever the task count.

Three steps around a `Barrier`:

1. `CollectKeys` (every task): for each document, one record (key, preference, input file, position in
   that file) per key; documents pass through unchanged. The task sorts its records and writes them to
   `keys/<rank>.bin`. Memory: 24 bytes per record of the task.
2. `ResolveKeys` (one global job): a streaming k-way merge of the sorted files. Among records sharing a
   key, the one with the smallest (preference, input file, position) survives — an order that does not
   depend on tasks. The losers are appended to `remove/<input file>.bin`; memory stays flat.
3. `DropKeyed` (every task, after the barrier): drops documents listed for their input file.

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

from webmill.stages.exclusions import ExclusionMixin

RECORD = np.dtype([("key", "<u8"), ("pref", "<i8"), ("shard", "<u4"), ("pos", "<u4")])
CHUNK = 1 << 16


def hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


# a key function returns (key, preference) pairs for a document; no pair = the document is never a duplicate
KeyFunction = Callable[[Document], list[tuple[int, int]]]


class CollectKeys(PipelineStep):
    type = "🫂 - DEDUP"
    name = "collect keys"

    def __init__(self, work_dir: str, key_function: KeyFunction):
        super().__init__()
        self.work_dir = work_dir
        self.key_function = key_function

    def run(self, data, rank: int = 0, world_size: int = 1):
        records, positions = [], {}
        for doc in data:
            self.stat_update(StatHints.total, StatHints.forwarded)
            shard = int(doc.metadata["shard_index"])
            pos = positions.get(shard, 0)
            positions[shard] = pos + 1
            with self.track_time():
                for key, pref in self.key_function(doc):
                    records.append((key, pref, shard, pos))
            yield doc
        table = np.array(records, dtype=RECORD)
        table.sort(order=["key", "pref", "shard", "pos"])
        os.makedirs(os.path.join(self.work_dir, "keys"), exist_ok=True)
        path = os.path.join(self.work_dir, "keys", f"{rank:05d}.bin")
        table.tofile(path + ".tmp")
        os.replace(path + ".tmp", path)


def _stream(path: str) -> Iterator[tuple]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK * RECORD.itemsize):
            yield from np.frombuffer(chunk, dtype=RECORD).tolist()


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
        files = sorted(os.path.join(key_dir, f) for f in os.listdir(key_dir) if f.endswith(".bin"))
        outputs: dict[int, object] = {}
        last_key = None
        with self.track_time():
            for key, _pref, shard, pos in heapq.merge(*(_stream(f) for f in files)):
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
        shard, removals, pos = None, set(), 0
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                doc_shard = int(doc.metadata["shard_index"])
                if doc_shard != shard:  # documents of one input file arrive together
                    shard, removals, pos = doc_shard, self._removals(doc_shard), 0
                duplicate = pos in removals
                pos += 1
                if duplicate:
                    self.drop(doc, self.reason, rank)
                else:
                    yield from self.keep(doc)
