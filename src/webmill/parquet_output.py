"""The corpus on disk: Parquet with a fixed, typed schema, zstd, large row groups, size-bounded files.

Columns: the base columns below, then the typed signals of the recipe's stages (each stage declares
its own), then `metadata`: a JSON object with anything else a document carried, so nothing is lost.
Each input file gets its own output file(s), `data/NNN_<input file>.parquet` (NNN counts files cut at
the size bound), so the corpus is the same whatever the number of tasks that produced it. A file is
written under `data/.partial/` and moved into `data/` only once complete, so an interrupted run never
leaves a half-written file among the finished ones (readers skip dot-folders).

With `route_by_language`, each language gets its own folder: `data/<lang>/NNN_<input file>.parquet`,
lang being the document's `language` (`und` when it has none). Partial files stay flat in
`data/.partial/` (named `<lang>~<input file>`, `~` never occurs in an input file's name), so no task
ever removes a folder another task is about to write into.
"""

from __future__ import annotations

import json
import os
import re
from string import Template

import pyarrow as pa
from datatrove.pipeline.writers.parquet import ParquetWriter

BASE_COLUMNS: dict[str, str] = {
    "id": "string",
    "text": "string",
    "url": "string",
    "date": "string",
    "language": "string",
    "language_score": "float32",
    "warc_file": "string",
    "warc_offset": "int64",
}
PARTIAL = ".partial"
UNDETERMINED = "und"  # ISO 639-2 code for "undetermined"
LANGUAGE_SEPARATOR = "~"
INTERNAL_KEYS = {"content_kind", "filter_reason", "shard", "shard_index", "file_path"}
ARROW_TYPES = {"string": pa.string(), "float32": pa.float32(), "float64": pa.float64(), "int32": pa.int32(),
               "int64": pa.int64(), "bool": pa.bool_()}


def output_columns(stage_columns: dict[str, str]) -> dict[str, str]:
    columns = dict(BASE_COLUMNS)
    for name, kind in stage_columns.items():
        if columns.setdefault(name, kind) != kind:
            raise ValueError(f"column {name!r} declared as both {columns[name]} and {kind}")
    columns["metadata"] = "string"
    return columns


def language_folder(language) -> str:
    """The folder a document's language routes it to: a safe, short name; `und` when missing or unknown."""
    if not isinstance(language, str) or language in ("", "unknown", "und"):
        return UNDETERMINED
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", language)[:32]
    return safe if safe.strip("_") else UNDETERMINED


def arrow_schema(columns: dict[str, str]) -> pa.Schema:
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in columns.items()])


def _typed(value, kind: str):
    if value is None:
        return None
    if kind == "string":
        return str(value)
    if kind in ("int32", "int64"):
        return int(value)
    if kind in ("float32", "float64"):
        return float(value)
    return bool(value)


class DeferredErrorFile:
    """A file wrapper for pyarrow: a failing write (disk full) inside pyarrow's C++ writer aborts the whole
    process instead of raising; so the error is kept here and raised once pyarrow has returned."""

    def __init__(self, file):
        self.file = file
        self.error: OSError | None = None

    def write(self, data):
        if self.error is None:
            try:
                return self.file.write(data)
            except OSError as err:
                self.error = err
        return len(data)

    def raise_if_failed(self):
        if self.error is not None:
            raise self.error

    def __getattr__(self, name):
        return getattr(self.file, name)


class CorpusParquetWriter(ParquetWriter):
    name = "📒 parquet corpus"

    def __init__(self, output_folder: str, columns: dict[str, str], compression: str | None = "zstd",
                 max_file_bytes: int = 1 << 30, row_group_rows: int = 100_000, row_group_bytes: int = 128 << 20,
                 route_by_language: bool = False):
        self.columns = columns
        self.route_by_language = route_by_language
        super().__init__(output_folder, output_filename="${rank}.parquet", compression=compression,
                         adapter=self._row, batch_size=row_group_rows, max_file_size=max_file_bytes,
                         schema=arrow_schema(columns))
        # named by input file, not by task rank (see the module docstring); set after the parent's
        # constructor, which warns about templates without ${rank}
        self.output_filename = Template(f"{PARTIAL}/${{shard}}.parquet")
        self.row_group_bytes = row_group_bytes
        self._buffered_bytes: dict[str, int] = {}
        self._guards: dict[str, DeferredErrorFile] = {}
        self._open_shard = None
        self._shard_files: set[str] = set()

    def _get_output_filename(self, document, rank: int | str = 0, **kwargs) -> str:
        name = super()._get_output_filename(document, rank, **kwargs)
        if not self.route_by_language:
            return name
        language = language_folder(document.metadata.get("language"))
        return f"{PARTIAL}/{language}{LANGUAGE_SEPARATOR}{name.removeprefix(PARTIAL + '/')}"

    def write(self, document, rank: int = 0, **kwargs):
        # input files are read one after another: finish the previous file's output (one file per language
        # when routing) before starting the next, so only one row group per language is ever buffered
        shard = document.metadata.get("shard", f"{rank:05d}")
        document.metadata["shard"] = shard
        if self._open_shard is not None and shard != self._open_shard:
            for filename in sorted(self._shard_files):
                self.close_file(filename)
            self._shard_files.clear()
        self._open_shard = shard
        self._shard_files.add(self._get_output_filename(document, rank))
        if self.route_by_language:
            self.stat_update(f"language_{language_folder(document.metadata.get('language'))}")
        super().write(document, rank, **kwargs)

    def close_file(self, filename):
        if self.max_file_size > 0 and filename not in self._writers:
            filename = self._get_filename_with_file_id(filename)
        super().close_file(filename)
        self._guards.pop(filename).raise_if_failed()
        # complete: move it out of the partial folder
        self.output_folder.mv(filename, self._final_name(filename))

    def _final_name(self, partial_name: str) -> str:
        name = partial_name.removeprefix(f"{PARTIAL}/")
        if not self.route_by_language:
            return name
        pattern = rf"(\d+_)?([^{LANGUAGE_SEPARATOR}/]+){LANGUAGE_SEPARATOR}(.*)"  # [file id] lang ~ input file
        file_id, language, rest = re.fullmatch(pattern, name).groups()
        self.output_folder.makedirs(language, exist_ok=True)
        return os.path.join(language, (file_id or "") + rest)

    def _write_batch(self, filename):
        super()._write_batch(filename)
        self._buffered_bytes[filename] = 0
        if filename in self._guards:
            self._guards[filename].raise_if_failed()

    def _row(self, _writer, document) -> dict:
        meta = dict(document.metadata)
        row = {"id": document.id, "text": document.text}
        for name, kind in self.columns.items():
            if name not in ("id", "text", "metadata"):
                row[name] = _typed(meta.pop(name, None), kind)
        rest = {k: v for k, v in meta.items() if k not in INTERNAL_KEYS}
        row["metadata"] = json.dumps(rest, ensure_ascii=False, sort_keys=True, default=str) if rest else None
        return row

    def _write(self, document: dict, file_handler, filename: str):
        # flush a row group at `batch_size` rows (parent) or at `row_group_bytes` of text, whichever first
        key = self._get_filename_with_file_id(filename) if self.max_file_size > 0 else filename
        if key not in self._guards:
            self._guards[key] = DeferredErrorFile(file_handler)
        super()._write(document, self._guards[key], filename)
        if self._batches.get(key):  # still buffered (the parent did not just flush at batch_size rows)
            self._buffered_bytes[key] = self._buffered_bytes.get(key, 0) + len(document["text"]) + 256
            if self._buffered_bytes[key] >= self.row_group_bytes:
                self._write_batch(key)
