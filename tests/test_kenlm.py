"""KenLM perplexity: normalisation, training with the real lmplz/build_binary and SentencePiece, scoring,
cutoffs, the `perplexity` stage alone and inside a recipe run. No stand-ins: every model here is trained
by the tests themselves on the shipped WikiText-2 text (54 articles; the last 6 are held out)."""

import gzip
import hashlib
import json
import pickle
import random
import shutil
import sys

import pyarrow.parquet as pq
import pytest
import yaml
from datatrove.data import Document

from conftest import SAMPLES, assert_accounts_add_up, run, stage, write_recipe
from webmill.cli import main
from webmill.errors import WebmillError
from webmill.kenlm.cutoffs import compute_cutoffs, load_cutoffs
from webmill.kenlm.layout import SHIPPED_MODELS, ModelFiles, languages_in
from webmill.kenlm.normalize import normalize, normalize_paragraphs
from webmill.kenlm.reference import detokenize_wikitext
from webmill.kenlm.score import LanguageModel
from webmill.checksums import sha256_file
from webmill.kenlm.train import TrainConfig, find_tool, read_manifest, train_model, verify_model
from webmill.stages.perplexity import PerplexityFilter, PerplexityParams

WIKITEXT = SAMPLES / "text" / "wikitext-2-valid.txt.gz"
HELD_OUT_FROM = 3347  # line of " = Where the Streets Have No Name = ", the first of the last 6 articles

BOILERPLATE = [
    "Home | About us | Products | Contact\nLogin | Register | Forgot password?\nShopping cart (0 items)\n"
    "Copyright 2024 Example Corp. All rights reserved. Privacy policy | Terms of use | Cookie settings",
    "Skip to main content\nMenu\nSearch\nSign in\nSubscribe now\nShare on Facebook\nShare on Twitter\n"
    "Related posts\nLeave a comment\nPosted by admin at 10:42 PM\nLabels: news, updates",
    "SKU: 48213-B\nIn stock\nQty: 1\nAdd to cart\nAdd to wishlist\nFree shipping on orders over $50\n"
    "Size chart\nS M L XL XXL\n4.5 out of 5 stars (212 reviews)\nWrite a review",
    "Page 1 2 3 4 5 ... 27 Next >>\nSort by: newest | oldest | most popular\nShow 10 25 50 per page\n"
    "Filter results\nClear all filters\nApply",
    "Accept all cookies\nManage preferences\nWe use cookies to improve your experience on our site. By "
    "continuing you agree\nOK\nLearn more\nNewsletter\nEnter your email address\nSubmit",
]
GERMAN = [
    "Die Stadt liegt am Ufer eines großen Flusses und wurde im zwölften Jahrhundert gegründet. Im Laufe der "
    "Zeit wuchs sie zu einem wichtigen Handelsplatz, an dem Kaufleute aus vielen Ländern zusammenkamen.",
    "Der Verein wurde im Jahr 1908 gegründet und spielte lange Zeit in der höchsten Liga des Landes. Nach "
    "dem Krieg musste die Mannschaft neu aufgebaut werden, weil viele Spieler nicht zurückgekehrt waren.",
]


def wikitext_lines() -> list[str]:
    with gzip.open(WIKITEXT, "rt", encoding="utf-8") as f:
        return f.read().split("\n")


def held_out_paragraphs(min_words: int = 60) -> list[str]:
    paragraphs = (detokenize_wikitext(line) for line in wikitext_lines()[HELD_OUT_FROM:])
    return [p for p in paragraphs if len(p.split()) >= min_words]


def shuffled(text: str, seed: int = 0) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A real model: SentencePiece (2000 pieces) + KenLM 4-gram trained on 54 WikiText articles."""
    root = tmp_path_factory.mktemp("kenlm")
    text = root / "train.txt.gz"
    with gzip.open(text, "wt", encoding="utf-8") as f:
        f.write("\n".join(wikitext_lines()[:HELD_OUT_FROM]) + "\n")
    out = root / "models"
    manifest = train_model([text], out, TrainConfig("en", order=4, vocab_size=2000, wikitext=True))
    return out, manifest, text


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A JSONL corpus: held-out Wikipedia paragraphs, boilerplate, shuffled prose, and German pages."""
    held = held_out_paragraphs()
    docs = [{"text": "\n".join(held[i:i + 2]), "kind": "wiki"} for i in range(0, 24, 2)]
    docs += [{"text": b, "kind": "boilerplate"} for b in BOILERPLATE]
    docs += [{"text": shuffled(held[i], seed=i), "kind": "shuffled"} for i in range(24, 32)]
    docs += [{"text": g, "kind": "german"} for g in GERMAN]
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, doc in enumerate(docs):
            lang = "de" if doc["kind"] == "german" else "en"
            record = {"id": f"doc-{i:03d}", "text": doc["text"], "kind": doc["kind"], "language": lang}
            f.write(json.dumps(record) + "\n")
    return path, docs


def test_normalizer_on_tricky_inputs():
    assert normalize("Café DÉJÀ Vu") == "cafe deja vu"
    assert normalize("In 1984, ٣٤ and ४२ and ２０２４") == "in 0000, 00 and 00 and 0000"
    assert normalize("“Quoted” ‘single’ «guillemets» — dash – en…") == '"quoted" \'single\' "guillemets" - dash - en...'
    assert normalize("ＦＵＬＬ　ｗｉｄｔｈ！（ｘ）") == "full width!(x)"
    assert normalize("こんにちは、世界。") == "こんにちは,世界."
    assert normalize("zero\u200bwidth soft\u00adhyphen \ufeffbom bell\x07") == "zerowidth softhyphen bom bell"
    assert normalize("  tabs\tand\nnew\r\nlines \u00a0 nbsp\u2028sep ") == "tabs and new lines nbsp sep"
    assert normalize("İstanbul Ñandú Ångström naïve Ёлка") == "istanbul nandu angstrom naive елка"
    # marks that are parts of letters in other scripts stay (CCNet would strip them)
    assert normalize("हिन्दी") == "हिन्दी" and normalize("がぎ") == "がぎ" and normalize("한국어") == "한국어"
    assert normalize("Straße æøœ") == "straße æøœ"
    assert normalize("") == "" and normalize(" \u200b\t ") == ""
    assert normalize_paragraphs("First line.\n\n \u200b \nSecond LINE 2.") == ["first line.", "second line 0."]
    assert normalize(normalize("Déjà “vu” 42")) == normalize("Déjà “vu” 42")  # idempotent


def test_wikitext_detokenizer():
    assert detokenize_wikitext(" = = Life cycle = = ") == ""
    assert detokenize_wikitext(" It weighs 0 @.@ 7 – 2 @,@ 200 kg ( 1 @.@ 5 lb ) , and is n't a <unk> lobster . ") \
        == "It weighs 0.7 – 2,200 kg (1.5 lb), and isn't a lobster."
    assert detokenize_wikitext(' the " cutter " , which ') == 'the "cutter", which'


def test_held_out_wikipedia_scores_lower_than_boilerplate_and_shuffled_words(model_dir):
    folder, _, _ = model_dir
    lm = LanguageModel.load(folder, "en")
    held = held_out_paragraphs()[:20]
    wiki = [lm.perplexity(p) for p in held]
    boiler = [lm.perplexity(b) for b in BOILERPLATE]
    assert max(wiki) < min(boiler), (wiki, boiler)
    for paragraph, score in zip(held, wiki):
        assert score < lm.perplexity(shuffled(paragraph)), paragraph[:80]
    assert lm.perplexity("") == float("inf")
    # CCNet's formula: 10^(-sum log10 p / tokens), one </s> per paragraph
    total, length = lm.log10_prob(held[0] + "\n" + held[1])
    assert length == sum(len(lm.sp.encode(normalize(p), out_type=str)) + 1 for p in held[:2])
    assert lm.perplexity(held[0] + "\n" + held[1]) == pytest.approx(10 ** (-total / length))
    assert lm.perplexity(held[0] + "\n" + held[1], per_paragraph=False) != lm.perplexity(held[0] + "\n" + held[1])


def test_manifest_round_trips_and_matches_the_files(model_dir, tmp_path):
    folder, manifest, text = model_dir
    files = ModelFiles(folder, "en")
    assert sorted(p.name for p in folder.iterdir()) == ["en.arpa.bin", "en.manifest.json", "en.sp.model"]
    assert read_manifest(files.manifest) == manifest == verify_model(folder, "en")
    assert json.loads(json.dumps(manifest)) == manifest
    assert manifest["config"]["order"] == 4 and manifest["config"]["prune"] == [0, 0, 1]
    assert manifest["sentencepiece"]["vocab_size"] == 2000 and len(manifest["ngrams"]) == 4
    assert manifest["inputs"] == [{"path": "train.txt.gz", "bytes": text.stat().st_size, "sha256": sha256_file(text)}]
    assert manifest["files"]["en.arpa.bin"]["sha256"] == sha256_file(files.binary)
    assert set(manifest["tools"]) >= {"kenlm", "sentencepiece", "lmplz"} and manifest["created"]
    # the training-text hash is the hash of the normalised paragraphs the model learned from
    with gzip.open(text, "rt", encoding="utf-8") as f:
        normalised = [normalize(detokenize_wikitext(line.rstrip("\n"))) for line in f]
    body = "".join(p + "\n" for p in normalised if p).encode()
    assert manifest["training_text"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["training_text"]["bytes"] == len(body)
    # a changed model file no longer matches its manifest
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    with open(copy / "en.arpa.bin", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(WebmillError, match="does not match"):
        verify_model(copy, "en")


def test_training_is_deterministic_through_the_cli(model_dir, tmp_path, capsys):
    folder, manifest, text = model_dir
    out = tmp_path / "again"
    rc = main(["kenlm", "train", "--text", str(text), "--wikitext", "--lang", "en", "--out", str(out),
               "--order", "4", "--vocab-size", "2000"])
    assert rc == 0 and "en model in" in capsys.readouterr().out
    for name in ("en.sp.model", "en.arpa.bin"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the scratch folder is gone


def test_bad_training_settings_are_clear_errors(tmp_path, monkeypatch, capsys):
    with pytest.raises(WebmillError, match="--prune"):
        train_model([WIKITEXT], tmp_path, TrainConfig("en", prune=[1, 1]))
    with pytest.raises(WebmillError, match="orders 2 to 6"):
        train_model([WIKITEXT], tmp_path, TrainConfig("en", order=9))
    missing = str(tmp_path / "missing.txt")
    assert main(["kenlm", "train", "--text", missing, "--lang", "en", "--out", str(tmp_path)]) == 2
    assert "reference text not found" in capsys.readouterr().err
    # without KenLM's programs the error says how to build them
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("WEBMILL_KENLM_BIN", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(WebmillError, match=r"make kenlm-tools.*scripts/build_kenlm\.sh"):
        find_tool("lmplz")


def test_cutoffs_and_buckets(model_dir, corpus, tmp_path, capsys):
    folder, manifest, _ = model_dir
    path, docs = corpus
    rc = main(["kenlm", "cutoffs", "--model", str(folder), "--lang", "en", "--corpus", str(path)])
    assert rc == 0 and "documents scored" in capsys.readouterr().out
    data = json.loads(ModelFiles(folder, "en").cutoffs.read_text())
    english = [d for d in docs if d["kind"] != "german"]
    assert data["documents"] == {"in_language": len(english), "sampled": len(english), "scored": len(english)}
    assert data["percentiles"] == [30, 60] and data["model_sha256"] == manifest["files"]["en.arpa.bin"]["sha256"]
    cutoffs = load_cutoffs(ModelFiles(folder, "en").cutoffs)
    low, high = cutoffs.values
    assert low < high

    lm = LanguageModel.load(folder, "en")
    scores = {i: lm.perplexity(d["text"]) for i, d in enumerate(docs) if d["kind"] != "german"}
    buckets = {i: cutoffs.bucket(s) for i, s in scores.items()}
    for i, score in scores.items():
        expected = "head" if score < low else "middle" if score < high else "tail"
        assert buckets[i] == expected
    n = len(scores)
    assert abs(sum(b == "head" for b in buckets.values()) - 0.3 * n) <= 1
    assert abs(sum(b != "tail" for b in buckets.values()) - 0.6 * n) <= 1
    assert all(buckets[i] == "tail" for i, d in enumerate(docs) if d["kind"] == "boilerplate")
    assert all(buckets[i] != "tail" for i, d in enumerate(docs) if d["kind"] == "wiki")

    # a sample smaller than the corpus; other percentiles
    other = compute_cutoffs(folder, "en", [path], sample=10, percentiles=(50, 90), seed=3)
    assert other["documents"]["sampled"] == 10 and other["percentiles"] == [50, 90]
    with pytest.raises(WebmillError, match="percentiles"):
        compute_cutoffs(folder, "en", [path], percentiles=(60, 30))
    compute_cutoffs(folder, "en", [path])  # restore the default cutoffs for the tests below


def test_stage_errors_name_the_command_that_makes_the_model(model_dir, tmp_path):
    folder, _, _ = model_dir
    with pytest.raises(WebmillError, match="webmill kenlm train"):
        PerplexityFilter(PerplexityParams(models=str(tmp_path / "nowhere")))
    with pytest.raises(WebmillError, match="webmill kenlm train"):
        PerplexityFilter(PerplexityParams(models=str(tmp_path)))  # a folder without models
    with pytest.raises(WebmillError, match=r"fr\.sp\.model.*webmill kenlm train"):
        PerplexityFilter(PerplexityParams(models=str(folder), languages=["fr"]))
    no_cutoffs = tmp_path / "no-cutoffs"
    no_cutoffs.mkdir()
    for name in ("en.sp.model", "en.arpa.bin"):
        shutil.copy(folder / name, no_cutoffs / name)
    with pytest.raises(WebmillError, match="webmill kenlm cutoffs"):
        PerplexityFilter(PerplexityParams(models=str(no_cutoffs), keep_buckets=["head"]))
    PerplexityFilter(PerplexityParams(models=str(no_cutoffs)))  # scoring alone needs no cutoffs
    with pytest.raises(WebmillError, match="per_paragraph"):
        PerplexityFilter(PerplexityParams(models=str(folder), per_paragraph=False))


def test_stage_scores_buckets_and_passes_languages_without_a_model(model_dir):
    folder, _, _ = model_dir
    step = PerplexityFilter(PerplexityParams(models=str(folder), keep_buckets=["head", "middle"]))
    assert languages_in(folder) == ["en"] and list(step.cutoffs) == ["en"]
    held = held_out_paragraphs()
    docs = [Document(text=held[0], id="wiki", metadata={"language": "en"}),
            Document(text=BOILERPLATE[0], id="nav", metadata={"language": "en"}),
            Document(text=GERMAN[0], id="de", metadata={"language": "de"}),
            Document(text=GERMAN[1], id="none", metadata={})]
    kept = list(step.run(iter(docs)))
    assert [d.id for d in kept] == ["wiki", "de", "none"]
    assert kept[0].metadata["ccnet_bucket"] in ("head", "middle") and kept[0].metadata["perplexity"] > 1
    assert "perplexity" not in kept[1].metadata
    stats = {k: v.total for k, v in step.stats.stats.items()}
    assert stats["total"] == 4 and stats["forwarded"] == 3 and stats["no_model"] == 2
    assert stats["dropped_bucket_tail"] == 1 and stats["scored"] == 2
    # a used step still pickles (the loaded models stay behind) and scores the same in the copy
    copy = pickle.loads(pickle.dumps(step))
    assert copy._models == {}
    assert copy.model("en").perplexity(held[0]) == pytest.approx(step.model("en").perplexity(held[0]))

    cap = PerplexityFilter(PerplexityParams(models=str(folder), max_perplexity=kept[0].metadata["perplexity"] + 1))
    nav = Document(text=BOILERPLATE[1], id="nav2", metadata={"language": "en"})
    assert cap.filter(nav) == (False, "perplexity_too_high")


def test_stage_in_a_recipe_run_adds_up(model_dir, corpus, tmp_path):
    folder, _, _ = model_dir
    path, docs = corpus
    recipe = write_recipe(tmp_path / "ccnet-test.yaml", [
        {"language": {"min_score": 0.0}},
        {"perplexity": {"models": str(folder), "keep_buckets": ["head", "middle"]}},
    ], [path], tmp_path / "out", executor={"tasks": 2, "workers": 2})
    raw = yaml.safe_load(recipe.read_text())
    raw["output"]["exclusions"] = str(tmp_path / "excluded")
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    report = run(recipe)
    assert_accounts_add_up(report)
    row = stage(report, "perplexity")
    german = sum(d["kind"] == "german" for d in docs)
    assert row["read"] == len(docs)
    assert row["counters"]["no_model"] == german and row["counters"]["scored"] == len(docs) - german
    assert row["dropped"]["bucket_tail"] == row["counters"]["bucket_tail"] > 0
    table = pq.read_table(tmp_path / "out" / "data").to_pylist()
    assert len(table) == report["documents_out"] == row["kept"]
    for rec in table:
        if rec["language"] == "en":
            assert rec["ccnet_bucket"] in ("head", "middle") and rec["perplexity"] > 0
        else:
            assert rec["ccnet_bucket"] is None and rec["perplexity"] is None
    excluded = list((tmp_path / "excluded").rglob("*.jsonl.gz"))
    reasons = [json.loads(line)["metadata"]["filter_reason"] for f in excluded for line in gzip.open(f, "rt")]
    assert reasons and set(reasons) == {"bucket_tail"} and len(reasons) == row["dropped"]["bucket_tail"]


def test_shipped_model_matches_its_manifest_and_cutoffs():
    manifest = verify_model(SHIPPED_MODELS, "en")
    cutoffs = load_cutoffs(ModelFiles(SHIPPED_MODELS, "en").cutoffs)
    assert cutoffs.model_sha256 == manifest["files"]["en.arpa.bin"]["sha256"] and cutoffs.per_paragraph
    step = PerplexityFilter(PerplexityParams(keep_buckets=["head", "middle"]))  # the default folder
    assert step.filter(Document(text=BOILERPLATE[0], id="x", metadata={"language": "en"})) == (False, "bucket_tail")
