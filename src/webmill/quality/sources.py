"""Training text for the quality classifier, read one document at a time from files the user names:

- `.txt` / `.txt.gz`: a document per block of lines, blocks separated by blank lines (so a file of
  paragraphs and a file of documents both work);
- `.jsonl` / `.jsonl.gz`: one JSON object per line with a `text` field;
- `.parquet`, or a folder: Parquet files with a `text` column (a webmill output folder such as `out/fw`
  or `out/fw/data`; folders starting with a dot, like unfinished `.partial` files, are skipped). A folder
  may also hold .txt/.jsonl files.

Lines or rows without usable text are counted (`skipped`), never fatal; a missing file or an unknown
format is a WebmillError.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from webmill.errors import WebmillError

SUFFIXES = (".txt", ".txt.gz", ".jsonl", ".jsonl.gz", ".parquet")


@dataclass
class SourceCounts:
    documents: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def expand(paths: list[str | Path]) -> list[Path]:
    """Files behind the given paths (folders searched recursively, hidden folders skipped), in order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise WebmillError(f"{path}: no {', '.join(SUFFIXES)} files in this folder")
            files.extend(found)
        elif path.is_file():
            if not path.name.endswith(SUFFIXES):
                raise WebmillError(f"{path}: unknown text format (expected {', '.join(SUFFIXES)})")
            files.append(path)
        else:
            raise WebmillError(f"{path}: no such file or folder")
    return files


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8", errors="replace") if path.name.endswith(".gz") \
        else open(path, encoding="utf-8", errors="replace")


def _txt_blocks(path: Path) -> Iterator[str]:
    block: list[str] = []
    with _open_text(path) as f:
        for line in f:
            if line.strip():
                block.append(line)
            elif block:
                yield "".join(block)
                block = []
    if block:
        yield "".join(block)


def _jsonl_texts(path: Path, counts: SourceCounts) -> Iterator[str]:
    with _open_text(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                text = json.loads(line).get("text")
            except (json.JSONDecodeError, AttributeError):
                counts.skip("bad_json")
                continue
            if not isinstance(text, str):
                counts.skip("no_text_field")
                continue
            yield text


def _parquet_texts(path: Path, counts: SourceCounts) -> Iterator[str]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if "text" not in parquet.schema_arrow.names:
        raise WebmillError(f"{path}: Parquet file without a `text` column")
    for batch in parquet.iter_batches(columns=["text"], batch_size=1024):
        for text in batch.column(0).to_pylist():
            if text is None:
                counts.skip("no_text_field")
                continue
            yield text


def iter_documents(paths: list[str | Path], counts: SourceCounts | None = None) -> Iterator[str]:
    counts = counts if counts is not None else SourceCounts()
    for path in expand(paths):
        name = path.name
        if name.endswith((".txt", ".txt.gz")):
            texts = _txt_blocks(path)
        elif name.endswith((".jsonl", ".jsonl.gz")):
            texts = _jsonl_texts(path, counts)
        else:
            texts = _parquet_texts(path, counts)
        for text in texts:
            counts.documents += 1
            yield text
