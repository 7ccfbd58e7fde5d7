"""Exact and URL dedup across input files: one survivor per duplicate set, the same for any task count."""

import gzip
import json

import pyarrow.parquet as pq

from conftest import assert_accounts_add_up, run, stage, write_recipe

ARTICLE = ("The harbour authority confirmed on Monday that the old lighthouse will be restored next spring, "
           "after years of debate about its future. ")


def write_jsonl(path, rows):
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def corpus(folder):
    table = pq.read_table(folder / "data")
    return sorted(zip(table.column("id").to_pylist(), table.column("url").to_pylist()))


def make_inputs(folder):
    folder.mkdir()
    write_jsonl(folder / "a.jsonl.gz", [
        {"id": "a0", "text": ARTICLE * 3, "url": "http://news.example/lighthouse", "date": "2024-01-01T00:00:00Z"},
        {"id": "a1", "text": "A different story about trains.", "url": "http://news.example/trains"},
        {"id": "a2", "text": ARTICLE * 3 + "  \n", "url": "http://mirror.example/lighthouse"},  # whitespace only
    ])
    write_jsonl(folder / "b.jsonl.gz", [
        {"id": "b0", "text": ARTICLE * 3, "url": "http://copy.example/x"},
        {"id": "b1", "text": "Updated: " + ARTICLE, "url": "HTTP://NEWS.example/lighthouse#top",
         "date": "2024-06-01T00:00:00Z"},
    ])
    write_jsonl(folder / "c.jsonl.gz", [{"id": "c0", "text": "Unique text about bees.", "url": "http://bees.example/"}])


def test_exact_dedup_keeps_the_first_occurrence_for_any_task_count(tmp_path):
    make_inputs(tmp_path / "in")
    results = {}
    for tasks in (1, 3):
        recipe = write_recipe(tmp_path / f"r{tasks}.yaml", ["exact_dedup"], [tmp_path / "in"], tmp_path / f"out{tasks}",
                              executor={"tasks": tasks, "workers": min(tasks, 2)})
        report = run(recipe)
        assert_accounts_add_up(report)
        assert stage(report, "exact_dedup")["dropped"] == {"duplicate_text": 2}
        results[tasks] = {p.name: p.read_bytes() for p in (tmp_path / f"out{tasks}" / "data").glob("*.parquet")}
    assert [i for i, _ in corpus(tmp_path / "out1")] == ["a0", "a1", "b1", "c0"]
    assert results[1] == results[3]


def test_url_dedup_keeps_the_newest_capture(tmp_path):
    make_inputs(tmp_path / "in")
    recipe = write_recipe(tmp_path / "r.yaml", [{"url_dedup": {"keep": "newest"}}], [tmp_path / "in"], tmp_path / "out",
                          executor={"tasks": 2, "workers": 2})
    report = run(recipe)
    assert_accounts_add_up(report)
    assert stage(report, "url_dedup")["dropped"] == {"duplicate_url": 1}
    ids = [i for i, _ in corpus(tmp_path / "out")]
    assert "b1" in ids and "a0" not in ids  # same normalised URL; June beats January


def test_dedup_then_more_stages_and_resume(tmp_path):
    make_inputs(tmp_path / "in")
    recipe = write_recipe(tmp_path / "r.yaml", ["exact_dedup", "url_dedup", {"language": {"min_score": 0.0}}],
                          [tmp_path / "in"], tmp_path / "out", executor={"tasks": 2, "workers": 2})
    first = run(recipe)
    assert_accounts_add_up(first)
    assert [r["stage"].split(":")[1] for r in first["stages"]] == [
        "read (jsonl)", "exact_dedup", "url_dedup", "language", "write (parquet)"]
    assert first["documents_out"] == 3  # a0 loses to b1 by URL after b0/a2 lost by text
    assert run(recipe)["stages"] == first["stages"]  # all phases complete: nothing re-run
