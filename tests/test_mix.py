"""The Pile-like mixer: token shares, epochs, seeded down-sampling, the written corpus, errors."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from webmill.cli import main
from webmill.mix import TokenCounter, choose_documents, load_mix_recipe, run_mix
from webmill.parquet_output import arrow_schema, output_columns

REPO = Path(__file__).resolve().parent.parent
DOMAINS = REPO / "data" / "samples" / "domains"


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def web_parquet(tmp_path_factory) -> Path:
    """A corpus in webmill's Parquet schema, made of real text (the books sample), in two files."""
    folder = tmp_path_factory.mktemp("web") / "data"
    folder.mkdir()
    (folder / ".partial").mkdir()  # an unfinished file of a running pipeline must be ignored
    docs = read_jsonl(DOMAINS / "books.jsonl.gz")
    schema = arrow_schema(output_columns({"html_bytes": "int64"}))
    for part, chunk in enumerate((docs[:50], docs[50:])):
        rows = [{"id": d["id"], "text": d["text"], "url": f"https://example.org/{d['id']}", "date": None,
                 "language": "en", "language_score": 0.9, "warc_file": "x.warc.gz", "warc_offset": i,
                 "html_bytes": 1000 + i, "metadata": json.dumps({"lines": d["meta"]["lines"]})}
                for i, d in enumerate(chunk)]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / f"000_part-{part}.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:1], schema=schema), folder / ".partial" / "000_part-9.parquet")
    return folder


def write_mix(path: Path, sources: list[dict], output: Path, **mix) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "mix": {**mix, "sources": sources},
                                    "output": {"dir": str(output)}}))
    return path


def source(name: str, **settings) -> dict:
    return {"name": name, "paths": [str(DOMAINS / f"{name}.jsonl.gz")], **settings}


def test_mix_obeys_token_shares_and_records_epochs(tmp_path, web_parquet):
    from datasets import load_dataset

    sources = [{"name": "web", "paths": [str(web_parquet)], "epochs": 1},
               source("wikipedia", weight=0.3), source("stackexchange", weight=0.1), source("nih", epochs=2.5)]
    recipe = write_mix(tmp_path / "mix.yaml", sources, tmp_path / "out", seed=3)
    assert main(["mix", str(recipe)]) == 0

    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    rows = {r["source"]: r for r in stats["sources"]}
    corpus = load_dataset("parquet", data_files=str(tmp_path / "out" / "data" / "*.parquet"), split="train",
                          cache_dir=str(tmp_path / "hf"))
    assert set(corpus.column_names) >= {"id", "text", "url", "date", "language", "source", "epoch", "metadata"}
    assert len(corpus) == stats["documents_out"]

    # tokens recounted from the corpus as read back, independently of the mixer's bookkeeping
    counter = TokenCounter("sentencepiece")
    written = Counter()
    for source_name, text in zip(corpus["source"], corpus["text"]):
        written[source_name] += counter.count(text)
    total = sum(written.values())
    assert total == stats["total_tokens"]["written"]
    for name, row in rows.items():
        assert written[name] == row["tokens_written"]
        assert row["within_tolerance"], row
        assert abs(written[name] - row["target_tokens"]) <= 0.02 * row["target_tokens"]
    assert written["wikipedia"] / total == pytest.approx(0.3, abs=0.01)
    assert written["stackexchange"] / total == pytest.approx(0.1, abs=0.01)
    # the epoch sources make up the rest: the web once, nih two and a half times
    assert written["web"] == rows["web"]["tokens_available"]
    assert rows["nih"]["epochs"] == pytest.approx(2.5, abs=0.1)

    # up-sampled source: epochs 1 and 2 hold every document, epoch 3 a seeded part of them
    nih = [(i, e) for i, e, s in zip(corpus["id"], corpus["epoch"], corpus["source"]) if s == "nih"]
    by_epoch = {e: sorted(i for i, ep in nih if ep == e) for e in (1, 2, 3)}
    all_ids = sorted(d["id"] for d in read_jsonl(DOMAINS / "nih.jsonl.gz"))
    assert by_epoch[1] == by_epoch[2] == all_ids
    assert 0 < len(by_epoch[3]) < len(all_ids) and set(by_epoch[3]) <= set(all_ids)
    assert rows["nih"]["copies_by_epoch"] == {"1": 5, "2": 5, "3": len(by_epoch[3])}
    assert {e for e, s in zip(corpus["epoch"], corpus["source"]) if s != "nih"} == {1}

    # the web rows keep their columns; its other columns land in `metadata`; the .partial file is ignored
    web = [r for r in corpus if r["source"] == "web"]
    assert len(web) == rows["web"]["documents_available"] == 99
    assert web[0]["url"].startswith("https://example.org/") and web[0]["language"] == "en"
    assert set(json.loads(web[0]["metadata"])) == {"html_bytes", "lines"}


def test_down_sampling_is_deterministic_by_seed(tmp_path):
    def mix(seed: int, name: str) -> Path:
        sources = [source("wikipedia", weight=0.5), source("books", weight=0.5)]
        recipe = write_mix(tmp_path / f"{name}.yaml", sources, tmp_path / name, seed=seed, tokenizer="words")
        run_mix(load_mix_recipe(recipe))
        return tmp_path / name / "data"

    first, again, other = mix(7, "a"), mix(7, "b"), mix(8, "c")
    names = sorted(p.name for p in first.glob("*.parquet"))
    assert names == ["000_wikipedia.parquet", "001_books.parquet"]
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes()

    def books_ids(folder: Path) -> set[str]:
        return {r[0] for r in duckdb.sql(f"select id from '{folder}/001_books.parquet'").fetchall()}

    # weights only, natural total: the scarcer source (wikipedia, in words) is used exactly once, books down-sampled
    assert duckdb.sql(f"select count(*) from '{first}/000_wikipedia.parquet'").fetchall()[0][0] == 60
    assert 0 < len(books_ids(first)) < 99
    assert books_ids(first) != books_ids(other)


def test_total_tokens_budget(tmp_path):
    sources = [source("wikipedia", weight=0.25), source("books", weight=0.75)]
    recipe = write_mix(tmp_path / "m.yaml", sources, tmp_path / "out", total_tokens=500_000)
    report = run_mix(load_mix_recipe(recipe))
    rows = {r["source"]: r for r in report["sources"]}
    assert rows["wikipedia"]["target_tokens"] == 125_000 and rows["books"]["target_tokens"] == 375_000
    assert rows["books"]["epochs"] > 1  # 375k of 309k tokens: one pass and a part
    assert report["total_tokens"]["written"] == pytest.approx(500_000, rel=0.02)


def test_choose_documents_hits_the_target_within_a_document():
    import random

    tokens = [random.Random(i).randint(1, 3000) for i in range(300)]
    for target in (1, 5000, 123_456, sum(tokens) - 1):
        chosen = choose_documents(tokens, target, random.Random(0))
        assert abs(sum(tokens[i] for i in chosen) - target) <= max(tokens)
    assert choose_documents(tokens, 0, random.Random(0)) == set()


def test_run_dispatches_mix_recipes(tmp_path, capsys):
    recipe = write_mix(tmp_path / "m.yaml", [source("arxiv", epochs=1), source("uspto", epochs=1)],
                       tmp_path / "unused")
    assert main(["run", str(recipe), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    assert "uspto" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "data").glob("*.parquet"))) == 2
    # a second run refuses to replace the corpus unless asked
    assert main(["run", str(recipe), "--output", str(tmp_path / "out")]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["run", str(recipe), "--output", str(tmp_path / "out"), "--overwrite"]) == 0
    assert main(["run", str(recipe), "--tasks", "4"]) == 2
    assert "--tasks does not apply" in capsys.readouterr().err
    assert main(["mix", str(recipe), "--output", str(tmp_path / "dry"), "--dry-run"]) == 0
    assert not (tmp_path / "dry").exists()


BAD_RECIPES = [
    ({"sources": [source("arxiv", weight=0.5, epochs=2)]}, "either a weight or epochs"),
    ({"sources": [source("arxiv", weight=0.5), source("nih", weight=0.3)]}, "weights sum to 0.8, not 1"),
    ({"sources": [source("arxiv", epochs=1), source("nih", weight=1.0)]}, "must sum to less than 1"),
    ({"sources": [source("arxiv", epochs=1)], "total_tokens": 1000}, "epoch sources fix the total"),
    ({"sources": [source("arxiv", weigth=1.0)]}, "did you mean 'weight'"),
    ({"sources": [source("arxiv", weight=1.0)], "tokeniser": "words"}, "did you mean 'tokenizer'"),
    ({"sources": [source("arxiv", weight=1.0)], "total_tokens": "all"}, "key 'total_tokens'"),
    ({"sources": [source("arxiv", weight=1.0), source("arxiv", weight=1.0)]}, "same name"),
    ({"sources": []}, "needs a list of sources"),
    ({"sources": [{"name": "web", "paths": ["nowhere/data"], "weight": 1.0, "made_by": "webmill run x.yaml"}]},
     "no input found at 'nowhere/data'; make it with `webmill run x.yaml`"),
]


@pytest.mark.parametrize("mix, message", BAD_RECIPES)
def test_bad_recipe_is_one_clear_error(tmp_path, capsys, mix, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"name": "bad", "mix": mix, "output": {"dir": str(tmp_path / "out")}}))
    assert main(["mix", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"webmill: error: {recipe}") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_unusable_sources_are_clear_errors(tmp_path, capsys, web_parquet):
    recipe = write_mix(tmp_path / "m.yaml", [{"name": "web", "paths": [str(web_parquet)], "weight": 1.0,
                                              "text_key": "body"}], tmp_path / "out")
    assert main(["mix", str(recipe)]) == 2
    assert "no document with text (key 'body') in 2 file(s)" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": \n')
    recipe = write_mix(tmp_path / "m.yaml", [{"name": "b", "paths": [str(broken)], "weight": 1.0}], tmp_path / "o")
    assert main(["mix", str(recipe)]) == 2
    assert f"{broken}, line 2: not valid JSON" in capsys.readouterr().err
    # writing over a source's own folder would delete it
    recipe = write_mix(tmp_path / "m.yaml", [{"name": "web", "paths": [str(web_parquet)], "weight": 1.0}],
                       web_parquet.parent)
    assert main(["mix", str(recipe), "--overwrite"]) == 2
    assert "holds input of source 'web'" in capsys.readouterr().err
    assert len(list(web_parquet.glob("*.parquet"))) == 2


def test_unsafe_yaml_is_refused(tmp_path, capsys):
    recipe = tmp_path / "evil.yaml"
    recipe.write_text("mix: !!python/object/apply:os.system ['echo hi']\n")
    assert main(["mix", str(recipe)]) == 2
    assert "YAML tags that construct objects are not allowed" in capsys.readouterr().err


def test_pile_recipe_names_the_command_for_a_missing_web_corpus(tmp_path, monkeypatch, capsys):
    recipe = load_mix_recipe(REPO / "pipelines" / "pile.yaml")
    assert [s.name for s in recipe.sources][:4] == ["web", "wikipedia", "books", "stackexchange"]
    monkeypatch.chdir(tmp_path)  # no output/fineweb here
    assert main(["run", str(REPO / "pipelines" / "pile.yaml")]) == 2
    assert "make it with `webmill run pipelines/fineweb.yaml`" in capsys.readouterr().err


def test_shipped_domain_samples_hold_only_the_first_part_of_their_originals():
    originals = {"stack_exchange": 70, "redpajama-pile-stackexchange-refined": 10, "arxiv": 11,
                 "the-pile-nih-refined": 10, "the-pile-uspto-refined": 10, "wikitext-2-valid": 60}
    seen = Counter()
    for name in ("wikipedia", "books", "stackexchange", "arxiv", "nih", "uspto"):
        for doc in read_jsonl(DOMAINS / f"{name}.jsonl.gz"):
            origin, position = doc["id"].rsplit(":", 1)
            seen[origin] += 1
            if origin == "tinyshakespeare":
                assert doc["meta"]["lines"][1] <= 35_522  # before 90 % of the 40,000 lines and of the characters
            elif origin != "wikitext-2-valid":  # the whole validation split; its test split is held out
                assert int(position) < originals[origin] // 2
    # first halves, less one repeated text each in stack_exchange and arxiv
    assert seen == {"stack_exchange": 34, "redpajama-pile-stackexchange-refined": 5, "arxiv": 4,
                    "the-pile-nih-refined": 5, "the-pile-uspto-refined": 5, "wikitext-2-valid": 60,
                    "tinyshakespeare": 99}


def test_domain_samples_share_no_text_with_the_held_out_evaluation_set():
    evalsets = pytest.importorskip("webmill.evalsets")

    def lines(text: str) -> set[str]:
        return {" ".join(line.split()) for line in text.split("\n") if len(line) > 80}

    held_out = set().union(*(lines(t) for texts in evalsets.heldout_domains().values() for t in texts))
    assert len(held_out) > 1000
    for name in ("wikipedia", "books", "stackexchange", "arxiv", "nih", "uspto"):
        for doc in read_jsonl(DOMAINS / f"{name}.jsonl.gz"):
            assert not lines(doc["text"]) & held_out, doc["id"]
