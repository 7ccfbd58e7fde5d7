"""Data cards: generated from a real run (real pages, real LID and KenLM scores), loaded back with
huggingface_hub and datasets, for the flat layout, the per-language layout and a mixed corpus."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from conftest import SAMPLES, run, write_recipe
from webmill.cli import main
from webmill.cards import make_card
from webmill.cards.collect import collect
from webmill.tokens import TokenCounter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """German, English, Spanish, French and Polish pages: language shares, perplexity buckets (English
    only: the shipped model), drops with reasons."""
    folder = tmp_path_factory.mktemp("card")
    recipe = write_recipe(folder / "cardtest.yaml",
                          [{"extract": {"fast": True}},
                           {"language": {"languages": ["en", "de", "es", "fr", "pl"], "min_score": 0.5}},
                           "perplexity", {"minhash_dedup": {"engine": "datasketch"}}],
                          [SAMPLES / "warc" / "pages-0000.warc.gz"], folder / "out")
    run(recipe, limit=120)
    return folder / "out"


@pytest.fixture
def hf_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))


def table_of(folder: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(folder.rglob("*.parquet")))


def card_copy(corpus: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    return copy


def linked_images(card: Path) -> list[Path]:
    return [card.parent / link for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card.read_text())]


def test_card_header_funnel_and_plots(corpus, tmp_path, capsys):
    from huggingface_hub import DatasetCard

    out = card_copy(corpus, tmp_path)
    assert main(["card", str(out), "--license", "odc-by"]) == 0
    assert "card written to" in capsys.readouterr().out
    path = out / "README.md"
    card = DatasetCard.load(path)
    data = table_of(out / "data")
    languages = pc.value_counts(data["language"]).to_pylist()
    seen = [v["values"] for v in sorted(languages, key=lambda v: (-v["counts"], v["values"]))]
    assert card.data.license == "odc-by"
    assert card.data.language == seen and {"de", "en"} <= set(seen)
    assert card.data.size_categories == ["n<1K"]
    flat = [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}]
    assert card.data.configs == flat

    text = path.read_text()
    stats = json.loads((out / "stats.json").read_text())
    for row in stats["stages"]:  # the funnel is the accounting, stage by stage
        dropped = sum(row["dropped"].values())
        assert f"| {row['stage']} | {row['read']:,} | {row['kept']:,} | {dropped:,} |" in text
        for reason, n in row["dropped"].items():
            assert f"{reason} {n:,}" in text
        for name, n in row.get("counters", {}).items():  # and what each stage counted besides its drops
            if "." not in name:
                assert f"{name} {n:,}" in text
    characters = pc.sum(pc.utf8_length(data["text"])).as_py()
    assert f"| documents | {data.num_rows:,} |" in text
    assert f"| characters | {characters:,} |" in text
    write_row = next(line for line in text.splitlines() if "write (parquet)" in line and line.startswith("|"))
    assert f"| {characters:,} |" in write_row  # datatrove's per-stage doc_len agrees with the data
    tokens = sum(TokenCounter("sentencepiece").count(t) for t in data["text"].to_pylist())
    assert f"| {tokens:,} |" in write_row and f"| tokens, {stats['tokenizer']} | {tokens:,} |" in text
    buckets = {b["values"]: b["counts"] for b in pc.value_counts(data["ccnet_bucket"]).to_pylist()}
    assert "## Perplexity buckets" in text and "## Languages" in text and "## Top domains" in text
    for bucket in ("head", "middle", "tail"):
        if buckets.get(bucket):
            assert f"| {bucket} | {buckets[bucket]:,} |" in text
    assert "### `perplexity`" in text and "### `language_score`" in text

    images = linked_images(path)
    names = {p.name for p in images}
    assert {"funnel.png", "drop_reasons.png", "language_values.png", "text_length.png", "perplexity_hist.png",
            "ccnet_bucket_values.png", "domains.png"} <= names
    for image in images:
        assert image.read_bytes()[:8] == PNG_MAGIC and image.stat().st_size > 2000

    # --out: the same card and plots elsewhere, byte for byte (cards are committed: no spurious diffs)
    assert main(["card", str(out), "--license", "odc-by", "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "README.md").read_text() == text
    for image in images:
        assert (tmp_path / "elsewhere" / "card_assets" / image.name).read_bytes() == image.read_bytes()


def test_card_makes_the_folder_loadable(corpus, tmp_path, hf_offline):
    import datasets

    out = card_copy(corpus, tmp_path)
    make_card(out, with_plots=False)
    loaded = datasets.load_dataset(str(out), split="train")
    data = table_of(out / "data")
    assert loaded.num_rows == data.num_rows
    assert sorted(loaded["id"]) == sorted(data["id"].to_pylist())


def test_language_routed_layout(corpus, tmp_path, hf_offline):
    """data/<lang>/*.parquet: one config per language plus a default one with everything."""
    import datasets
    from huggingface_hub import DatasetCard

    out = card_copy(corpus, tmp_path)
    for file in sorted((out / "data").glob("*.parquet")):
        table = pq.read_table(file)
        for lang in set(table["language"].to_pylist()):
            part = table.filter(pc.equal(table["language"], lang))
            (out / "data" / lang).mkdir(exist_ok=True)
            pq.write_table(part, out / "data" / lang / file.name)
        file.unlink()
    make_card(out, with_plots=False)
    card = DatasetCard.load(out / "README.md")
    by_name = {c["config_name"]: c for c in card.data.configs}
    langs = sorted(p.name for p in (out / "data").iterdir())
    assert set(by_name) == {"all", *langs}
    assert by_name["all"]["default"] is True
    assert by_name["de"]["data_files"] == [{"split": "train", "path": "data/de/*.parquet"}]
    everything = datasets.load_dataset(str(out), split="train")
    german = datasets.load_dataset(str(out), "de", split="train")
    data = table_of(out / "data")
    assert everything.num_rows == data.num_rows
    assert german.num_rows == pc.sum(pc.equal(data["language"], "de")).as_py() > 0
    assert set(german["language"]) == {"de"}


def test_mixed_corpus_with_unknown_stats(corpus, tmp_path):
    """A corpus with a `source` column and a stats.json of another shape: per-source shares from the
    data, the stats shown as recorded, no recipe."""
    from huggingface_hub import DatasetCard

    mix = tmp_path / "mix"
    (mix / "data").mkdir(parents=True)
    data = table_of(corpus / "data")
    source = pc.if_else(pc.equal(data["language"], "de"), "german-web", "other-web")
    data = data.append_column("source", source)
    pq.write_table(data, mix / "data" / "000_mix.parquet")
    german = pc.sum(pc.equal(source, "german-web")).as_py()
    stats = {"mix": "demo", "seed": 3,
             "sources": [{"source": "german-web", "documents": german, "weight": 0.5},
                         {"source": "other-web", "documents": data.num_rows - german, "weight": 0.5}]}
    (mix / "stats.json").write_text(json.dumps(stats))
    path = make_card(mix, with_plots=True)
    text = path.read_text()
    assert DatasetCard.load(path).data.pretty_name == "mix"
    assert "## Sources" in text and f"| german-web | {german:,} |" in text
    assert "| source | documents | weight |" in text and "| german-web | " in text  # stats as recorded
    assert "no stage recipe" in text and "## Funnel" not in text
    assert (mix / "card_assets" / "source_values.png").read_bytes()[:8] == PNG_MAGIC


def test_histograms_are_sampled_but_counts_are_exact(corpus):
    facts = collect(corpus, sample=40)
    full = collect(corpus)
    assert facts.documents == full.documents and facts.characters == full.characters
    assert facts.categories["language"].documents == full.categories["language"].documents
    assert len(full.text_lengths) == full.documents
    assert 10 < len(facts.text_lengths) < 80 and len(facts.signals["language_score"]) == len(facts.text_lengths)


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "has no stats.json: not a finished webmill output"),
    (lambda d: (d / "stats.json").write_text("{not json"), "cannot be read as JSON"),
])
def test_unfinished_output_is_a_clear_error(tmp_path, capsys, setup, message):
    folder = tmp_path / "unfinished"
    (folder / "data" / ".partial").mkdir(parents=True)
    setup(folder)
    assert main(["card", str(folder)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (folder / "README.md").exists()


def test_bad_license_is_refused(corpus, tmp_path, capsys):
    out = card_copy(corpus, tmp_path)
    assert main(["card", str(out), "--license", "CC BY 4.0"]) == 2
    assert "not a Hub licence identifier" in capsys.readouterr().err
