"""Quality classifier: trained on real text (WikiText paragraphs against the same words in shuffled order,
a real kind of spam), it separates held-out documents, writes its manifest, is deterministic by seed, and
the stage keeps high-scoring documents and drops low-scoring ones with a reason."""

import gzip
import hashlib
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import SAMPLES, assert_accounts_add_up, run, stage, write_recipe
from webmill.errors import WebmillError
from webmill.quality.normalize import normalize
from webmill.quality.score import SHIPPED_MODEL, QualityModel
from webmill.quality.sources import SourceCounts, iter_documents
from webmill.quality.train import QualityTrainConfig, train_quality_model
from webmill.stages.quality_classifier import QualityClassifier, QualityClassifierParams

WIKITEXT = SAMPLES / "text" / "wikitext-2-valid.txt.gz"
CONFIG = QualityTrainConfig(max_docs=300, quantize=False, seed=7, dim=32, language_filter=False)


def paragraphs() -> list[str]:
    return [p for p in iter_documents([WIKITEXT]) if len(p.split()) >= 40]


def shuffled(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Positive: the WikiText file itself (.txt.gz); negative: other paragraphs with their words shuffled, half
    as .jsonl.gz and half as a Parquet folder. The last 40 paragraphs are never used for training."""
    root = tmp_path_factory.mktemp("quality")
    paras = paragraphs()
    rng = random.Random(0)
    negatives = [shuffled(p, rng) for p in paras[:-40]]
    with gzip.open(root / "spam.jsonl.gz", "wt") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in negatives[::2])
    (root / "spam").mkdir()
    pq.write_table(pa.table({"text": negatives[1::2]}), root / "spam" / "part-0.parquet")
    unseen = paras[-40:]
    return root, unseen, [shuffled(p, rng) for p in unseen]


@pytest.fixture(scope="module")
def trained(data):
    root, _, _ = data
    manifest = train_quality_model([WIKITEXT], [root / "spam.jsonl.gz", root / "spam"], root / "model", CONFIG)
    return root / "model", manifest


def test_manifest_records_data_parameters_and_sane_heldout_metrics(trained, data):
    folder, manifest = trained
    assert (folder / "model.bin").is_file() and json.loads((folder / "manifest.json").read_text()) == manifest
    metrics = manifest["heldout"]["metrics"]
    assert metrics["auc"] > 0.8 and metrics["f1"] > 0.7, metrics
    assert metrics["positives"] == metrics["negatives"] == 30  # balanced, 10 % of 300 per side
    assert {k: manifest["sizes"][k] for k in ("per_side", "train", "heldout")} == {"per_side": 300, "train": 540,
                                                                                "heldout": 60}
    assert manifest["parameters"]["seed"] == 7 and manifest["fasttext"]["wordNgrams"] == 2
    positive_file = manifest["training_files"]["positive"][0]
    assert positive_file["sha256"] == hashlib.sha256(WIKITEXT.read_bytes()).hexdigest()
    assert len(manifest["training_files"]["negative"]) == 2
    assert manifest["documents"]["positive"]["skipped"]["too_short"] > 0  # WikiText headings
    assert len(manifest["heldout"]["negative_score_percentiles"]) == 101


def test_unseen_real_text_scores_above_its_shuffled_words(trained, data):
    folder, _ = trained
    _, unseen, unseen_spam = data
    model = QualityModel(folder)
    real = [model.score(t) for t in unseen]
    spam = [model.score(t) for t in unseen_spam]
    assert sum(r > s for r, s in zip(real, spam)) >= 0.8 * len(real)
    assert sum(r >= 0.5 for r in real) >= 0.7 * len(real) and sum(s < 0.5 for s in spam) >= 0.7 * len(spam)


def test_same_seed_same_model(trained, data, tmp_path):
    folder, manifest = trained
    root, unseen, unseen_spam = data
    again = train_quality_model([WIKITEXT], [root / "spam.jsonl.gz", root / "spam"], tmp_path, CONFIG)
    assert again["documents"] == manifest["documents"] and again["sizes"] == manifest["sizes"]
    assert (tmp_path / "model.bin").read_bytes() == (folder / "model.bin").read_bytes()
    assert again["heldout"] == manifest["heldout"]
    first, second = QualityModel(folder), QualityModel(tmp_path)
    texts = unseen + unseen_spam
    assert [first.score(t) for t in texts] == [second.score(t) for t in texts]


def test_stage_keeps_high_scores_drops_low_ones_with_reason(trained, data, tmp_path):
    folder, _ = trained
    _, unseen, unseen_spam = data
    docs = [{"id": f"real{i}", "text": t} for i, t in enumerate(unseen[:10])]
    docs += [{"id": f"spam{i}", "text": t} for i, t in enumerate(unseen_spam[:10])]
    source = tmp_path / "docs.jsonl.gz"
    with gzip.open(source, "wt") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs)
    recipe = write_recipe(tmp_path / "q.yaml", [{"quality_classifier": {"model": str(folder), "threshold": 0.5}}],
                          [source], tmp_path / "out")
    spec = yaml.safe_load(recipe.read_text())
    spec["output"]["exclusions"] = str(tmp_path / "excluded")
    recipe.write_text(yaml.safe_dump(spec))
    report = run(recipe)
    assert_accounts_add_up(report)
    row = stage(report, "quality_classifier")
    assert row["read"] == 20 and row["counters"]["scored"] == 20
    assert set(row["dropped"]) == {"quality_score_too_low"} and row["dropped"]["quality_score_too_low"] >= 7
    table = pq.read_table(tmp_path / "out" / "data")
    assert str(table.schema.field("quality_score").type) == "float"
    kept = dict(zip(table.column("id").to_pylist(), table.column("quality_score").to_pylist()))
    assert all(score >= 0.5 for score in kept.values())
    assert sum(i.startswith("real") for i in kept) >= 7 and sum(i.startswith("spam") for i in kept) <= 3
    excluded = [json.loads(line) for p in (tmp_path / "excluded").rglob("*.jsonl.gz") for line in gzip.open(p, "rt")]
    assert excluded and all(d["metadata"]["filter_reason"] == "quality_score_too_low" and
                            d["metadata"]["quality_score"] < 0.5 for d in excluded)


def test_top_fraction_uses_the_heldout_web_scores(trained):
    folder, manifest = trained
    model = QualityModel(folder)
    web = manifest["heldout"]["negative_score_percentiles"]
    assert model.threshold_for_top_fraction(1.0) == pytest.approx(web[0])
    assert model.threshold_for_top_fraction(0.1) == pytest.approx(web[90])
    stage_ = QualityClassifier(QualityClassifierParams(model=str(folder), top_fraction=0.25))
    assert stage_.threshold == pytest.approx(web[75])
    with pytest.raises(WebmillError, match="not both"):
        QualityClassifier(QualityClassifierParams(model=str(folder), threshold=0.5, top_fraction=0.25))


def test_missing_model_names_the_train_command(tmp_path):
    with pytest.raises(WebmillError, match="webmill quality train --positive"):
        QualityClassifier(QualityClassifierParams(model=str(tmp_path / "nothing-here")))
    with pytest.raises(WebmillError, match="webmill quality train"):
        QualityModel(tmp_path)  # a folder without a model


def test_sources_and_normalisation(tmp_path):
    (tmp_path / "a.txt").write_text("First document,\nsecond line.\n\n\n  \nSecond   DOCUMENT\n")
    (tmp_path / "b.jsonl").write_text('{"text": "x"}\nnot json\n{"id": 3}\n')
    counts = SourceCounts()
    assert list(iter_documents([tmp_path], counts)) == ["First document,\nsecond line.\n", "Second   DOCUMENT\n", "x"]
    assert counts.skipped == {"bad_json": 1, "no_text_field": 1}
    assert normalize("Second   DOCUMENT\n__label__positive  trick") == "second document labelpositive trick"
    (tmp_path / "c.csv").write_text("text\n")
    with pytest.raises(WebmillError, match="unknown text format"):
        list(iter_documents([tmp_path / "c.csv"]))


def test_too_little_text_is_a_clear_error(tmp_path):
    (tmp_path / "few.txt").write_text("A single short line of text.\n")
    with pytest.raises(WebmillError, match="too little usable text"):
        train_quality_model([tmp_path / "few.txt"], [tmp_path / "few.txt"], tmp_path / "m", CONFIG)


@pytest.mark.skipif(not (SHIPPED_MODEL / "manifest.json").is_file(), reason="shipped model not built yet")
def test_shipped_english_model_is_small_and_prefers_reference_text():
    model = QualityModel(SHIPPED_MODEL)
    assert model.path.stat().st_size < 5_000_000 and model.language == "en"
    assert model.manifest["heldout"]["metrics"]["auc"] > 0.8
    assert model.manifest["documents"]["positive"]["skipped"]["not_en"] > 0  # Spanish StackExchange posts
    wiki = next(d for d in iter_documents([SAMPLES / "domains" / "wikipedia.jsonl.gz"]) if len(d) > 2000)
    boilerplate = ("Home | About us | Contact | Shop now! Free shipping on orders over $50. "
                   "Sign up for our newsletter. Cookie settings. Accept all cookies. Follow us on Facebook, Twitter and Instagram. "
                   "Copyright 2023 All rights reserved. Privacy policy. Terms of use. Click here to learn more.")
    assert model.score(wiki) > model.score(boilerplate)
