"""The ablation study runner and its report: a real (tiny) study of two corpora × two seeds end to end on
Parquet written from real text, caching of finished runs, re-rendering from results.json, and clear
errors for bad study files."""

from __future__ import annotations

import gzip
import json
import random
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from conftest import SAMPLES
from webmill.ablation import report
from webmill.ablation.study import StudyError, load_study, parse_study, run_study
from webmill.cli import main as webmill

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_MODEL = {"preset": "cpu-tiny", "block_size": 64, "n_layer": 1, "n_head": 2, "n_embd": 32}
TINY_TRAIN = {"budget_tokens": 64 * 8 * 12, "batch_size": 8, "lr": 0.003, "min_lr": 0.0003, "warmup_steps": 2}
TINY_EVAL = {"domains": ["wikipedia", "web"], "tasks": ["copa", "blimp_anaphor_number_agreement"],
             "max_docs_per_domain": 3, "max_items_per_task": 8, "max_bytes_per_doc": 400}


def wikitext_paragraphs(count: int) -> list[str]:
    """Real paragraphs of the shipped WikiText-2 sample (its tokenised form, headings left out)."""
    with gzip.open(SAMPLES / "text" / "wikitext-2-valid.txt.gz", "rt", encoding="utf-8") as f:
        paragraphs = [line.strip() for line in f if len(line) > 300 and not line.strip().startswith("=")]
    return paragraphs[:count]


def write_parquet(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"id": [str(i) for i in range(len(texts))], "text": texts}), folder / "part-0.parquet")
    return folder


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """Two corpora of the same words: real paragraphs, and the same paragraphs with their words shuffled."""
    root = tmp_path_factory.mktemp("corpora")
    paragraphs = wikitext_paragraphs(60)
    rng = random.Random(0)
    shuffled = []
    for text in paragraphs:
        words = text.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    return {"wiki": write_parquet(root / "wiki" / "data", paragraphs),
            "shuffled": write_parquet(root / "shuffled" / "data", shuffled)}


def write_study(path: Path, corpus_folders: dict, /, **changes) -> Path:
    study = {"name": "tiny", "corpora": {k: str(v) for k, v in corpus_folders.items()}, "tokenizer": "byte",
             "model": dict(TINY_MODEL), "train": dict(TINY_TRAIN), "seeds": [0, 1], "eval": dict(TINY_EVAL),
             "decontaminate": True}
    study.update(changes)
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def finished(corpora, tmp_path_factory):
    """The tiny study run once; (study file, report folder, log lines)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("study")
    path = write_study(root / "tiny.yaml", corpora)
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two seeds: the runner warns, which a test below checks
        folder = run_study(load_study(path), output=root / "reports", device="cpu", progress=False,
                           log=lines.append)
    return path, folder, lines


def test_results_json_holds_every_run_and_the_summary(finished):
    _, folder, lines = finished
    results = json.loads((folder / "results.json").read_text())
    assert results["format"] == "webmill-ablation-results/1"
    assert results["labels"] == ["wiki", "shuffled"] and results["seeds"] == [0, 1]
    assert sorted((r["label"], r["seed"]) for r in results["runs"]) == [
        ("shuffled", 0), ("shuffled", 1), ("wiki", 0), ("wiki", 1)]
    assert [line for line in lines if "training" in line and line.startswith("run ")][0].startswith("run 1/4 ")
    assert results["tokenizer"]["name"] == "bytes" and results["tokenizer"]["vocab_size"] == 257
    assert {"torch", "python", "webmill"} <= set(results["versions"])
    assert results["decontamination"]["requested"] is True
    for run in results["runs"]:
        losses = run["losses"]
        assert len(losses) == run["steps"] == 12
        assert losses[-1][1] == TINY_TRAIN["budget_tokens"]
        assert losses[-1][2] < losses[0][2]  # it learned something
        assert run["corpus"]["epochs"] > 0 and run["tokens_per_s"] > 0
        assert run["model"]["config"]["n_embd"] == 32
        assert set(run["eval"]["bpb"]) == {"wikipedia", "web", "macro"}
        assert all(0 < v < 10 for v in run["eval"]["bpb"].values())
        assert set(run["eval"]["tasks"]) == set(TINY_EVAL["tasks"])
    # seeds differ: same corpus, different order and initialisation
    wiki = [r for r in results["runs"] if r["label"] == "wiki"]
    assert wiki[0]["losses"] != wiki[1]["losses"]
    summary = results["summary"]["wiki"]
    macro = summary["bpb"]["macro"]
    assert macro["n"] == 2 and macro["values"] == [r["eval"]["bpb"]["macro"] for r in wiki]
    assert macro["mean"] == pytest.approx(sum(macro["values"]) / 2)
    assert macro["sd"] == pytest.approx(abs(macro["values"][0] - macro["values"][1]) / 2 ** 0.5)
    assert set(summary["tasks"]) == {"copa", "blimp"}
    assert {c["metric"] for c in results["comparisons"]} >= {"bpb macro", "copa accuracy", "blimp accuracy"}


def test_report_markdown_and_plots(finished):
    _, folder, _ = finished
    text = (folder / "report.md").read_text()
    for needle in ("# Ablation study: tiny", "## Setup", "## Bits per byte", "## Tasks", "Tie-aware accuracy",
                   "## Pairwise comparisons", "2 × max(sd_a, sd_b)", "not a prediction", "1B-parameter",
                   "| `wiki` |", "| `shuffled` |", "![loss curves](loss.png)"):
        assert needle in text, needle
    results = json.loads((folder / "results.json").read_text())
    macro = results["summary"]["wiki"]["bpb"]["macro"]
    assert f"{macro['mean']:.3f} ± {macro['sd']:.3f}" in text
    for name in ("loss.png", "bpb.png", "tasks.png"):
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name


def test_rerun_reuses_finished_runs_and_report_rerenders(finished):
    path, folder, _ = finished
    before = json.loads((folder / "results.json").read_text())
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_study(load_study(path), output=folder.parent, device="cpu", progress=False, log=lines.append)
    assert sum("reusing" in line for line in lines) == 4 and not any(": training" in line for line in lines)
    after = json.loads((folder / "results.json").read_text())
    assert after["runs"] == before["runs"]

    # the report comes from results.json alone
    original = (folder / "report.md").read_text()
    for name in ("report.md", "loss.png", "bpb.png", "tasks.png"):
        (folder / name).unlink()
    assert report.main([str(folder)]) == 0
    assert (folder / "report.md").read_text() == original
    assert (folder / "bpb.png").read_bytes().startswith(PNG_MAGIC)


def test_changed_settings_retrain_only_what_changed(finished, tmp_path):
    path, folder, _ = finished
    raw = yaml.safe_load(path.read_text())
    raw["seeds"] = [0, 1, 2]  # one more seed: the four finished runs stay
    lines: list[str] = []
    run_study(parse_study(raw, path), output=folder.parent, device="cpu", progress=False, log=lines.append)
    assert sum("reusing" in line for line in lines) == 4
    assert sum(line.endswith(": training") for line in lines) == 2
    results = json.loads((folder / "results.json").read_text())
    assert results["summary"]["wiki"]["bpb"]["macro"]["n"] == 3


def test_noise_rule():
    a = report.stat([1.00, 1.02, 1.04])  # sd 0.02
    b = report.stat([1.10, 1.11, 1.12])  # sd 0.01
    call = report.call_difference(a, b, lower_is_better=True)
    assert call["verdict"] == "called" and call["better"] == "a"
    assert call["threshold"] == pytest.approx(0.04)
    close = report.stat([1.03, 1.05, 1.07])
    assert report.call_difference(a, close, lower_is_better=True)["verdict"] == "within noise"
    assert report.call_difference(report.stat([0.6]), report.stat([0.5]), False)["better"] is None
    higher = report.call_difference(report.stat([0.6, 0.61]), report.stat([0.5, 0.5]), lower_is_better=False)
    assert higher["better"] == "a"


def test_cli_dry_run_and_fewer_seeds_warning(corpora, tmp_path, capsys):
    path = write_study(tmp_path / "tiny.yaml", corpora)
    assert webmill(["ablate", str(path), "--dry-run", "--device", "cpu", "--seeds", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 label(s) x 1 seed(s) = 2 runs" in out and "wiki:" in out and "shuffled:" in out
    study = load_study(path, seeds=1, budget_tokens=64 * 8)
    assert study.seeds == [0] and study.train["budget_tokens"] == 512
    with pytest.warns(UserWarning, match="1 seed"):
        run_study(study, output=tmp_path / "reports", device="cpu", progress=False, log=lambda _: None)
    text = (tmp_path / "reports" / "tiny" / "report.md").read_text()
    assert "one seed: cannot tell" in text


def test_architecture_study_of_variants(corpora, tmp_path):
    raw = {"name": "positions", "corpus": str(corpora["wiki"]), "model": dict(TINY_MODEL),
           "variants": {"learned": {"pos": "learned"}, "alibi": {"pos": "alibi"}},
           "train": dict(TINY_TRAIN, budget_tokens=64 * 8 * 2, checkpoint_every=1), "seeds": [0],
           "eval": dict(TINY_EVAL, tasks=["copa"], max_items_per_task=4), "decontaminate": False}
    study = parse_study(raw, tmp_path / "positions.yaml")
    assert study.kind == "variants" and study.labels == ["learned", "alibi"]
    stale = tmp_path / "positions" / "runs" / "learned" / "seed-0"
    stale.mkdir(parents=True)
    (stale / "checkpoint.pt").write_bytes(b"left by a run with other settings")  # removed, not resumed from
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = run_study(study, output=tmp_path, device="cpu", progress=False, log=lambda _: None)
    results = json.loads((folder / "results.json").read_text())
    assert [r["model"]["config"]["pos"] for r in results["runs"]] == ["learned", "alibi"]
    assert [r["steps"] for r in results["runs"]] == [2, 2]
    assert not stale.exists()  # a finished run's checkpoints are removed; its result is cached
    assert results["decontamination"]["applied"] is False
    text = (folder / "report.md").read_text()
    assert "Settings that differ between labels" in text and "**not applied**" in text


@pytest.mark.parametrize("change, message", [
    ({"colour": 1}, "key 'colour': unknown top-level key"),
    ({"corpora": {"a": "/nonexistent/output/fineweb/data"}}, "does not exist"),
    ({"model": {"preset": "huge"}}, "key 'preset': unknown preset"),
    ({"model": {"preset": "cpu-tiny", "pos": "sinusoidal"}}, "model pos 'sinusoidal'"),
    ({"model": {"preset": "cpu-tiny", "n_layers": 2}}, "key 'n_layers': unknown model setting (did you mean 'n_layer'?)"),
    ({"train": {"budget_tokens": "lots"}}, "key 'budget_tokens': expected int"),
    ({"train": {"seed": 3}}, "key 'seed': seeds are set once"),
    ({"seeds": [0, 0]}, "key 'seeds': seeds repeat"),
    ({"eval": {"max_docs": 3}}, "eval, key 'max_docs': unknown eval setting"),
    ({"eval": {"domains": ["klingon"]}}, "unknown held-out domain 'klingon'"),
    ({"tokenizer": "words"}, "key 'tokenizer'"),
    ({"tokenizer": {"bpe": {"vocab_size": 100}}}, "key 'vocab_size': must be at least 300"),
    ({"variants": {"x": {"pos": "alibi"}}}, "give either 'corpora'"),
    ({"corpora": {"bad label!": "x"}}, "labels use letters"),
])
def test_bad_study_is_a_clear_error(corpora, tmp_path, change, message):
    path = write_study(tmp_path / "bad.yaml", corpora, **change)
    with pytest.raises(StudyError) as err:
        study = load_study(path)
        run_study(study, output=tmp_path, device="cpu", progress=False, log=lambda _: None)
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_webmill_output_names_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # pipelines/ is found from the repository root
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"corpora": {"fw": str(tmp_path / "fineweb" / "data"),
                                                "mixed": {"paths": str(tmp_path / "nothing"),
                                                          "made_by": "webmill mix pipelines/pile.yaml"}}}))
    assert webmill(["ablate", str(path), "--dry-run"]) == 2
    assert f"webmill run pipelines/fineweb.yaml --output {tmp_path / 'fineweb'}" in capsys.readouterr().err
    path.write_text(yaml.safe_dump({"corpora": {"mixed": {"paths": str(tmp_path / "nothing"),
                                                          "made_by": "webmill mix pipelines/pile.yaml"}}}))
    assert webmill(["ablate", str(path), "--dry-run"]) == 2
    assert "make it with `webmill mix pipelines/pile.yaml`" in capsys.readouterr().err


def test_shipped_studies_are_valid(monkeypatch):
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    for name in ("ablation.yaml", "ablation-demo.yaml", "ablation-positions.yaml"):
        study = load_study(root / "pipelines" / name)
        assert len(study.seeds) >= 3, name
    positions = load_study(root / "pipelines" / "ablation-positions.yaml")
    assert sorted(v["model"]["pos"] for v in positions.variants.values()) == ["alibi", "learned", "none", "rotary"]


def test_decontamination_skips_documents_holding_eval_text(tmp_path):
    from webmill.evalsets import heldout_domains

    leaked = [doc[:1500] for doc in heldout_domains()["web"][:2]]  # held-out text copied into a crawl
    folder = write_parquet(tmp_path / "leaky" / "data", wikitext_paragraphs(6) + leaked)
    raw = {"name": "leaky", "corpora": {"leaky": str(folder)}, "model": dict(TINY_MODEL),
           "train": dict(TINY_TRAIN, budget_tokens=64 * 8 * 20), "seeds": [0],
           "eval": dict(TINY_EVAL, domains=["web"], tasks=["copa"], max_items_per_task=2)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_study(parse_study(raw, tmp_path / "leaky.yaml"), output=tmp_path, device="cpu", progress=False,
                        log=lambda _: None)
    results = json.loads((out / "results.json").read_text())
    assert results["decontaminated"] is True
    (run,) = results["runs"]
    assert run["corpus"]["epochs"] > 1  # the corpus was read to its end
    assert run["corpus"]["skipped_documents"] == 2 and run["corpus"]["documents"] == 6
    assert run["corpus"]["contaminated_by"].get("heldout_web") == 2


def test_bpe_tokenizer_is_trained_once_and_shared(corpora, tmp_path):
    raw = {"name": "bpe", "corpora": {k: str(v) for k, v in corpora.items()},
           "tokenizer": {"bpe": {"vocab_size": 512, "sample_chars_per_corpus": 20000}}, "model": dict(TINY_MODEL),
           "train": dict(TINY_TRAIN, budget_tokens=64 * 8 * 2), "seeds": [0],
           "eval": dict(TINY_EVAL, domains=["web"], tasks=["copa"], max_items_per_task=2), "decontaminate": False}
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_study(parse_study(raw, tmp_path / "bpe.yaml"), output=tmp_path, device="cpu", progress=False,
                        log=lines.append)
        assert sum("training BPE" in line for line in lines) == 1
        results = json.loads((out / "results.json").read_text())
        assert results["tokenizer"]["kind"] == "bpe" and results["tokenizer"]["vocab_size"] == 512
        assert results["tokenizer"]["trained_on"]["corpora"] == 2
        assert {r["model"]["config"]["vocab_size"] for r in results["runs"]} == {512}
        assert (out / "tokenizer" / "tokenizer.model").is_file()
        lines.clear()
        run_study(parse_study(raw, tmp_path / "bpe.yaml"), output=tmp_path, device="cpu", progress=False,
                  log=lines.append)
    assert any("tokenizer: reusing" in line for line in lines)
    assert sum("reusing" in line for line in lines) == 3  # the tokenizer and both runs
