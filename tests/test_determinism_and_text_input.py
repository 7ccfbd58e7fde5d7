"""Same input + same recipe = the same Parquet bytes, whatever the task count; text inputs work too."""

import gzip
import json

import pyarrow.parquet as pq

from conftest import SAMPLES, assert_accounts_add_up, run, write_recipe

STAGES = ["extract", {"language": {"min_score": 0.3}}, "gopher_repetition", "refinedweb_lines"]
INPUTS = [SAMPLES / "warc" / name for name in
          ("CC-MAIN-2020-34-sample.warc.gz", "sample-0000.warc.gz", "sample-0001.warc.gz")] + [SAMPLES / "wet"]


def corpus_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def test_output_is_byte_identical_for_1_and_4_tasks(tmp_path):
    one = write_recipe(tmp_path / "one.yaml", STAGES, INPUTS, tmp_path / "one")
    three = write_recipe(tmp_path / "three.yaml", STAGES, INPUTS, tmp_path / "three",
                         executor={"tasks": 4, "workers": 2})
    report_one, report_three = run(one), run(three)
    assert_accounts_add_up(report_one)
    assert [r["read"] for r in report_one["stages"]] == [r["read"] for r in report_three["stages"]]
    files = corpus_bytes(tmp_path / "one")
    assert files == corpus_bytes(tmp_path / "three")
    # one output file per input file, named after it
    assert set(files) >= {"000_warc__CC-MAIN-2020-34-sample.warc.gz.parquet", "000_warc__sample-0000.warc.gz.parquet"}


def test_a_recipe_can_start_from_extracted_text(tmp_path):
    text_dir = tmp_path / "texts"
    text_dir.mkdir()
    paragraphs = [f"Line {i} of a plain text document about river boats, their engines and their crews."
                  for i in range(30)]
    rows = [{"id": "keep", "text": "\n".join(paragraphs), "source": "books"},
            {"id": "short", "text": "too short", "source": "web"}]
    with gzip.open(text_dir / "part-1.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    recipe = write_recipe(tmp_path / "text.yaml", [{"language": {"languages": ["en"]}}, "gopher_quality"],
                          [text_dir], tmp_path / "out")
    report = run(recipe)
    assert_accounts_add_up(report)
    assert report["stages"][0]["read"] == 2
    table = pq.read_table(tmp_path / "out" / "data")
    assert table.column("id").to_pylist() == ["keep"]
    assert json.loads(table.column("metadata")[0].as_py()) == {"source": "books"}
    assert [p.name for p in (tmp_path / "out" / "data").glob("*.parquet")] == ["000_part-1.jsonl.gz.parquet"]
