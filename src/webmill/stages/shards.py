"""Which input file a document came from, as the stem of its output file.

Naming output after the input file (not after the task) makes the corpus identical whatever the number
of tasks: a file's documents are always read, processed and written in the same order.
"""

from __future__ import annotations

import os
import re

from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints


def shard_name(relative_path: str) -> str:
    """An input file's path below the input root, flattened and made safe for a file name."""
    flat = relative_path.replace("\\", "/").strip("/").replace("/", "__")
    return re.sub(r"[^A-Za-z0-9._=-]", "_", flat) or "input"


class TagShard(PipelineStep):
    """Records each document's input file: `shard` (its name) and `shard_index` (its position in the
    sorted input list, zero-padded so file names sort in input order). Text readers only give an
    absolute `file_path`; the archive reader sets `shard` itself."""

    type = "🏷 - TAG"
    name = "input shard"

    def __init__(self, root: str, relative_paths: list[str], count: bool = False):
        super().__init__()
        self.root = root
        self.index = {shard_name(p): f"{i:06d}" for i, p in enumerate(relative_paths)}
        self.count = count

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            if self.count:  # datatrove's text readers count per file only
                self.stat_update(StatHints.total, StatHints.forwarded)
            path = doc.metadata.pop("file_path", None)
            if path and "shard" not in doc.metadata:
                doc.metadata["shard"] = shard_name(os.path.relpath(path, self.root))
            # names output files: never trust a value that arrived with the input (e.g. "../../x")
            doc.metadata["shard"] = shard_name(str(doc.metadata.get("shard", "input")))
            doc.metadata["shard_index"] = self.index.get(doc.metadata.get("shard"), "999999")
            yield doc
