"""Line or paragraph deduplication across the whole corpus (as in CCNet and C4), sort/merge on disk.

Three steps around a `Barrier` (the same sort/merge as `webmill.dedup.keyed`):

1. `CollectUnits` (every task): each unit (line, or paragraph = text between blank lines) whose normalised
   form has at least `min_chars` characters gives one record (64-bit hash of the normalised unit, input
   file, position in that file, unit number in the document); documents pass through unchanged. Records
   are sorted in runs of bounded size (`SortedRuns`, 20 bytes a record) under `units/`.
2. `ResolveUnits` (one global job): a streaming k-way merge of the runs; equal hashes arrive ordered by
   (input file, position, unit), so the first record is the first occurrence in the corpus, whatever the
   task count. `keep_first`: every later occurrence is removed; otherwise (CCNet) every occurrence of a
   unit seen more than once is removed. Removals go to `remove/<input index>.bin` as (position, unit)
   records; memory stays flat.
3. `DropUnits` (every task, after the barrier): removes the listed units, records how many in
   `dedup_lines_removed`, and drops documents left without text (`all_lines_duplicated` /
   `all_paragraphs_duplicated`). Memory: the removals of one input file (8 bytes each).
"""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from webmill.stages.exclusions import ExclusionMixin  # first: it registers the stages, which import keyed
from webmill.dedup.common import ShardPositions, normalized_words  # noqa: I001
from webmill.dedup.keyed import SortedRuns, hash64, merge_runs

UNIT_RECORD = np.dtype([("key", "<u8"), ("shard", "<u4"), ("pos", "<u4"), ("unit", "<u4")])
REMOVAL = np.dtype([("pos", "<u4"), ("unit", "<u4")])
PARAGRAPH_BREAK = re.compile(r"(\n[^\S\n]*\n\s*)")  # a blank line (perhaps with spaces) and any that follow
SPACES = re.compile(r"\s+")


def split_units(text: str, unit: str) -> tuple[list[str], list[str]]:
    """(units, separators): separators[i] is the text between unit i and unit i + 1."""
    if unit == "line":
        parts = text.split("\n")
        return parts, ["\n"] * (len(parts) - 1)
    pieces = PARAGRAPH_BREAK.split(text)
    return pieces[0::2], pieces[1::2]


def join_units(parts: list[str], separators: list[str], removed: set[int]) -> str:
    """The text without the removed units; each kept unit is followed by the separator it had."""
    kept = [i for i in range(len(parts)) if i not in removed]
    pieces = []
    for k, i in enumerate(kept):
        pieces.append(parts[i])
        if k + 1 < len(kept):
            pieces.append(separators[i])
    return "".join(pieces)


class UnitKey:
    """Picklable: the hash of a unit's comparison form, or None when the unit is too short to count."""

    def __init__(self, normalize: bool, min_chars: int):
        self.normalize = normalize
        self.min_chars = min_chars

    def __call__(self, unit: str) -> int | None:
        form = " ".join(normalized_words(unit)) if self.normalize else SPACES.sub(" ", unit).strip()
        return hash64(form) if len(form) >= max(1, self.min_chars) else None


class CollectUnits(PipelineStep):
    type = "🫂 - DEDUP"
    name = "collect lines"

    def __init__(self, work_dir: str, unit: str, key: UnitKey, buffer_mb: int = 64):
        super().__init__()
        self.work_dir = work_dir
        self.unit = unit
        self.key = key
        self.buffer_records = max(1, (buffer_mb << 20) // UNIT_RECORD.itemsize)

    def run(self, data, rank: int = 0, world_size: int = 1):
        runs = SortedRuns(os.path.join(self.work_dir, "units"), rank, UNIT_RECORD, self.buffer_records)
        positions = ShardPositions()
        for doc in data:
            self.stat_update(StatHints.total, StatHints.forwarded)
            shard, pos, _new = positions.next(doc)
            with self.track_time():
                parts, _separators = split_units(doc.text, self.unit)
                for number, part in enumerate(parts):
                    key = self.key(part)
                    if key is not None:
                        runs.add((key, shard, pos, number))
            yield doc
        runs.flush()


class ResolveUnits(PipelineStep):
    type = "🫂 - DEDUP"
    name = "resolve duplicate lines"

    FLUSH = 1 << 20  # removals buffered before they are appended to their files

    def __init__(self, work_dir: str, keep_first: bool):
        super().__init__()
        self.work_dir = work_dir
        self.keep_first = keep_first

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        unit_dir, remove_dir = os.path.join(self.work_dir, "units"), os.path.join(self.work_dir, "remove")
        os.makedirs(unit_dir, exist_ok=True)
        shutil.rmtree(remove_dir, ignore_errors=True)  # a rerun starts from a clean slate
        os.makedirs(remove_dir)
        pending: dict[int, list[tuple[int, int]]] = {}
        buffered = 0

        def remove(shard: int, pos: int, unit: int):
            nonlocal buffered
            pending.setdefault(shard, []).append((pos, unit))
            buffered += 1
            self.stat_update("duplicate_units")
            if buffered >= self.FLUSH:
                flush()

        def flush():
            nonlocal buffered
            for shard, items in pending.items():
                with open(os.path.join(remove_dir, f"{shard:06d}.bin"), "ab") as out:
                    out.write(np.array(items, dtype=REMOVAL).tobytes())
            pending.clear()
            buffered = 0

        last_key, first, count = None, None, 0
        with self.track_time():
            for key, shard, pos, unit in merge_runs(unit_dir, UNIT_RECORD):
                self.stat_update("units")
                if key != last_key:
                    last_key, first, count = key, (shard, pos, unit), 1
                    continue
                count += 1
                if count == 2:
                    self.stat_update("repeated_units")
                    if not self.keep_first:
                        remove(*first)
                remove(shard, pos, unit)
            flush()


class DropUnits(ExclusionMixin, PipelineStep):
    type = "🫂 - DEDUP"
    name = "drop duplicate lines"

    def __init__(self, work_dir: str, unit: str, exclusion_writer=None):
        super().__init__()
        self.work_dir = work_dir
        self.unit = unit
        self.exclusion_writer = exclusion_writer
        self.reason = "all_lines_duplicated" if unit == "line" else "all_paragraphs_duplicated"

    def _removals(self, shard: int) -> np.ndarray:
        """The shard's removals as sorted position × 2^32 + unit numbers."""
        path = os.path.join(self.work_dir, "remove", f"{shard:06d}.bin")
        if not os.path.exists(path):
            return np.empty(0, dtype=np.uint64)
        table = np.fromfile(path, dtype=REMOVAL)
        return np.sort((table["pos"].astype(np.uint64) << np.uint64(32)) | table["unit"].astype(np.uint64))

    def run(self, data, rank: int = 0, world_size: int = 1):
        positions, removals = ShardPositions(), np.empty(0, dtype=np.uint64)
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                shard, pos, new_shard = positions.next(doc)
                if new_shard:
                    removals = self._removals(shard)
                lo, hi = np.searchsorted(removals, [pos << 32, (pos + 1) << 32])
                doc.metadata["dedup_lines_removed"] = int(hi - lo)
                if hi > lo:
                    with self.track_time():
                        units = set((removals[lo:hi] & np.uint64(0xFFFFFFFF)).astype(np.int64).tolist())
                        parts, separators = split_units(doc.text, self.unit)
                        doc.text = join_units(parts, separators, units)
                    self.stat_update("changed")
                    self.stat_update("lines_removed", value=len(units))
                    if not doc.text.strip():
                        self.drop(doc, self.reason, rank)
                        continue
                yield from self.keep(doc)
