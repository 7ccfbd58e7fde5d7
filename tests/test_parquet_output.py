"""The Parquet corpus format: fixed typed schema, row groups by rows or bytes, size-bounded files."""

import hashlib
import json

import pyarrow.parquet as pq
from datatrove.data import Document

from webmill.parquet_output import CorpusParquetWriter, output_columns


def docs(n, size=200):
    for i in range(n):
        noise = "".join(hashlib.sha256(f"{i}-{j}".encode()).hexdigest() for j in range(size // 64 + 1))
        yield Document(text=f"document {i} " + noise[:size], id=f"doc-{i:05d}",
                       metadata={"url": f"http://example.org/{i}", "language": "en", "language_score": 0.91,
                                 "html_bytes": 1000 + i, "warc_offset": i * 10, "content_kind": "text",
                                 "extra_signal": {"nested": i}})


def write(folder, n, size=200, **kwargs):
    writer = CorpusParquetWriter(str(folder), output_columns({"html_bytes": "int64"}), **kwargs)
    list(writer.run(docs(n, size), rank=3))
    return sorted(folder.glob("*.parquet"))


def test_schema_is_fixed_and_typed_and_nothing_is_lost(tmp_path):
    (path,) = write(tmp_path, 10)
    table = pq.read_table(path)
    assert table.column_names == ["id", "text", "url", "date", "language", "language_score", "warc_file",
                                  "warc_offset", "html_bytes", "metadata"]
    assert str(table.schema.field("html_bytes").type) == "int64"
    assert str(table.schema.field("date").type) == "string"  # missing values stay typed (null)
    row = table.slice(3, 1).to_pylist()[0]
    assert row["html_bytes"] == 1003 and row["date"] is None
    assert json.loads(row["metadata"]) == {"extra_signal": {"nested": 3}}  # internal keys dropped, others kept


def test_row_groups_flush_at_row_count_or_buffered_bytes(tmp_path):
    (path,) = write(tmp_path / "rows", 250, row_group_rows=100)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100, 100, 50]
    (path,) = write(tmp_path / "bytes", 100, size=20_000, row_group_rows=100_000, row_group_bytes=200_000)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups >= 9 and all(meta.row_group(i).num_rows <= 10 for i in range(meta.num_row_groups))
    assert meta.row_group(0).column(1).compression == "ZSTD"


def test_files_are_size_bounded_and_named_deterministically(tmp_path):
    files = write(tmp_path, 400, size=5_000, row_group_rows=50, max_file_bytes=300_000)
    assert [f.name for f in files] == [f"{i:03d}_00003.parquet" for i in range(len(files))] and len(files) >= 2
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 400
    again = write(tmp_path / "again", 400, size=5_000, row_group_rows=50, max_file_bytes=300_000)
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in again]
