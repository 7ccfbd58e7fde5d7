"""The demo recipes on the shipped samples: real WARC → trafilatura → fastText → filters → Parquet.

The corpus is read back with pyarrow, duckdb and Hugging Face `datasets`; the accounting must add up
stage by stage, and every dropped document must be in the exclusions folder with its reason.
"""

import gzip
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest

from conftest import REPO, assert_accounts_add_up, read_json, stage
from webmill.recipe import load_recipe
from webmill.runner import run_recipe

EXPECTED_COLUMNS = ["id", "text", "url", "date", "language", "language_score", "warc_file", "warc_offset",
                    "html_bytes", "lines_removed", "minhash_cluster_id", "minhash_cluster_size", "metadata"]


@pytest.fixture(scope="module")
def refinedweb_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("refinedweb")
    recipe = load_recipe(REPO / "pipelines" / "refinedweb.yaml", {
        "input": {"paths": [str(REPO / "data" / "samples" / "warc")]},
        "output": {"dir": str(out / "corpus"), "exclusions": str(out / "excluded")},
        "executor": {"tasks": 4, "workers": 2},
    })
    report = run_recipe(recipe, progress=False)
    return out, report


def test_accounting_adds_up_stage_by_stage(refinedweb_run):
    out, report = refinedweb_run
    assert_accounts_add_up(report)
    assert report == read_json(out / "corpus" / "stats.json")
    reader = stage(report, "read")
    assert reader["read"] > 1900 and reader["kept"] > 950  # records in the shipped shards; ~990 HTML pages
    assert stage(report, "language")["dropped"]["language_not_allowed"] > 500  # the pages are mostly German
    assert report["documents_out"] > 50


def test_corpus_reads_back_with_pyarrow_duckdb_and_datasets(refinedweb_run, tmp_path):
    out, report = refinedweb_run
    files = sorted((out / "corpus" / "data").glob("*.parquet"))
    assert files and all(f.name.endswith(".parquet") and f.name[:3].isdigit() for f in files)

    table = pq.read_table(out / "corpus" / "data")
    assert table.column_names == EXPECTED_COLUMNS
    assert table.num_rows == report["documents_out"]
    assert str(table.schema.field("language_score").type) == "float"
    assert str(table.schema.field("warc_offset").type) == "int64"
    assert set(table.column("language").to_pylist()) == {"en"}
    assert min(table.column("language_score").to_pylist()) >= 0.65
    meta = pq.ParquetFile(files[0]).metadata
    assert meta.row_group(0).column(1).compression == "ZSTD"

    import duckdb

    ((n, ids),) = duckdb.sql(f"select count(*), count(distinct id) from read_parquet('{out}/corpus/data/*.parquet')").fetchall()
    assert n == report["documents_out"] == ids

    import datasets

    os.environ["HF_DATASETS_OFFLINE"] = "1"
    ds = datasets.load_dataset("parquet", data_files=str(out / "corpus" / "data" / "*.parquet"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == report["documents_out"]
    assert ds.features["text"].dtype == "string" and all(ds["text"])


def test_exclusions_hold_every_dropped_document_with_its_reason(refinedweb_run):
    out, report = refinedweb_run
    excluded = {}
    for path in (out / "excluded").rglob("*.jsonl.gz"):
        folder = path.parent.name  # "<stage index>_<stage name>"
        with gzip.open(path, "rt") as f:
            for line in f:
                reason = json.loads(line)["metadata"]["filter_reason"]
                excluded.setdefault(folder, {}).setdefault(reason, 0)
                excluded[folder][reason] += 1
    for row in report["stages"]:
        index, name = row["stage"].split(":", 1)
        if not row["dropped"]:
            continue
        folder = f"{int(index):02d}_{name.split(' ')[0]}"
        assert excluded.get(folder) == row["dropped"], (folder, excluded.get(folder), row["dropped"])


def test_rerun_resumes_and_a_different_recipe_is_refused(refinedweb_run, tmp_path):
    out, report = refinedweb_run
    before = {p.name: p.read_bytes() for p in (out / "corpus" / "data").glob("*.parquet")}
    recipe = load_recipe(REPO / "pipelines" / "refinedweb.yaml", {
        "input": {"paths": [str(REPO / "data" / "samples" / "warc")]},
        "output": {"dir": str(out / "corpus"), "exclusions": str(out / "excluded")},
        "executor": {"tasks": 4, "workers": 2},
    })
    again = run_recipe(recipe, progress=False)  # all tasks complete: nothing re-run, same accounting
    assert again["stages"] == report["stages"]
    assert before == {p.name: p.read_bytes() for p in (out / "corpus" / "data").glob("*.parquet")}

    from webmill.errors import WebmillError

    recipe.stages[2].params.min_score = 0.9
    with pytest.raises(WebmillError, match="different recipe"):
        run_recipe(recipe, progress=False)


def test_fineweb_recipe_runs_and_adds_up(tmp_path):
    recipe = load_recipe(REPO / "pipelines" / "fineweb.yaml", {
        "input": {"paths": [str(REPO / "data" / "samples" / "warc")]},
        "output": {"dir": str(tmp_path / "corpus")},
        "executor": {"tasks": 2, "workers": 2},
    })
    report = run_recipe(recipe, limit=60, progress=False)
    assert_accounts_add_up(report)
    assert [r["stage"].split(":", 1)[1] for r in report["stages"]][1:-1] == [
        "url_filter", "extract", "language", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality",
        "minhash_dedup", "decontaminate", "pii"]
    assert stage(report, "extract")["read"] == 120
    assert pq.read_table(tmp_path / "corpus" / "data").num_rows == report["documents_out"] > 0


def test_funnel_counts_the_tokens_each_stage_kept(refinedweb_run):
    from webmill.tokens import TokenCounter

    out, report = refinedweb_run
    rows = report["stages"]
    extract = next(i for i, r in enumerate(rows) if r["stage"].endswith("extract"))
    assert all(r["tokens"] is None for r in rows[:extract])  # HTML until extraction: no tokens
    assert all(isinstance(r["tokens"], int) and r["tokens"] > 0 for r in rows[extract:])
    for before, after in zip(rows[extract:], rows[extract + 1:]):
        if not after["changed"]:  # a stage that only drops documents can only lose tokens
            assert after["tokens"] <= before["tokens"], after
            assert (after["tokens"] < before["tokens"]) == (after["kept"] < before["kept"]), after
    counter = TokenCounter("sentencepiece")
    texts = pq.read_table(out / "corpus" / "data", columns=["text"]).column("text").to_pylist()
    assert report["tokens_out"] == rows[-1]["tokens"] == sum(counter.count(t) for t in texts)
    assert report["tokenizer"] == counter.describe()
