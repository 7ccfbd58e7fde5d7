"""Tokens in the funnel: counted on text input from the reader on, per tokenizer, or not at all."""

import json

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import SAMPLES, run, write_recipe
from webmill.stages.token_tally import _LastCounts
from webmill.tokens import TokenCounter


@pytest.fixture(scope="module")
def text_input(tmp_path_factory):
    """Real paragraphs of WikiText-2 as JSONL documents, a few of them repeated (exact_dedup drops them)."""
    import gzip

    paragraphs = [p.strip() for p in gzip.open(SAMPLES / "text" / "wikitext-2-valid.txt.gz", "rt").read().split("\n")
                  if len(p.strip()) > 300][:60]
    folder = tmp_path_factory.mktemp("text")
    with open(folder / "docs.jsonl", "w") as out:
        for i, text in enumerate(paragraphs + paragraphs[:7]):
            out.write(json.dumps({"id": f"doc-{i}", "text": text}) + "\n")
    return folder


def run_counting(folder, tmp_path, tokenizer: str) -> tuple[dict, list[str]]:
    recipe = write_recipe(tmp_path / f"tokens-{tokenizer}.yaml", ["exact_dedup", "pii"],
                          [folder / "docs.jsonl"], tmp_path / tokenizer)
    settings = yaml.safe_load(recipe.read_text())
    settings["output"]["count_tokens"] = tokenizer
    recipe.write_text(yaml.safe_dump(settings))
    report = run(recipe)
    texts = pq.read_table(tmp_path / tokenizer / "data", columns=["text"]).column("text").to_pylist()
    return report, texts


@pytest.mark.parametrize("tokenizer", ["words", "sentencepiece"])
def test_every_stage_of_text_input_counts_tokens(text_input, tmp_path, tokenizer):
    report, texts = run_counting(text_input, tmp_path, tokenizer)
    counter = TokenCounter(tokenizer)
    read, dedup, pii, write = report["stages"]
    assert read["kept"] == 67 and dedup["kept"] == 60
    assert read["tokens"] > dedup["tokens"] == pii["tokens"] == write["tokens"] == report["tokens_out"]
    assert report["tokens_out"] == sum(counter.count(t) for t in texts)
    assert report["tokenizer"] == counter.describe()


def test_counting_can_be_turned_off(text_input, tmp_path):
    report, _ = run_counting(text_input, tmp_path, "none")
    assert report["tokens_out"] is None and report["tokenizer"] is None
    assert all(row["tokens"] is None and "token tally" not in row["step"] for row in report["stages"])


def test_a_changed_text_is_counted_again():
    counter = TokenCounter("words")
    counts = _LastCounts(capacity=2)
    assert counts.tokens("a", "one two three", counter) == 3
    assert counts.tokens("a", "one two three", counter) == 3
    assert counts.tokens("a", "one two", counter) == 2  # same document, rewritten by a stage
    counts.tokens("b", "x", counter), counts.tokens("c", "y", counter)
    assert list(counts.entries) == ["b", "c"]  # bounded: the oldest is forgotten
    with pytest.raises(Exception, match="unknown tokenizer"):
        TokenCounter("gpt2")
