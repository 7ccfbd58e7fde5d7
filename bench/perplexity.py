"""KenLM perplexity: scoring throughput of the `perplexity` stage and the cost of `webmill kenlm train`.

    python bench/perplexity.py                 # writes bench/results/perplexity.json
    python bench/perplexity.py --train-mb 10   # a smaller training run

1. Scoring (the shipped English model, one process = one core, median of `--rounds`): the stage's own
   filter loop over two corpora, (a) the English pages of the sample crawl shards, extracted and
   identified by a webmill run (extract -> language en), and (b) the WikiText-2 paragraphs shipped as
   reference text. docs/s per core = documents / seconds in the stage (model loading timed apart).
   Where the time goes is measured on corpus (a): normalisation alone, + SentencePiece, + KenLM.
2. Training: `webmill kenlm train` in a subprocess on ~`--train-mb` MB of text, wall time and peak RSS
   (the largest process of its tree: the CLI, the SentencePiece trainer, lmplz, build_binary; from
   wait4); once with every paragraph in SentencePiece's sample, once with `--sample 20000`. There is no
   50 MB of open English text in the repository, so the text is built deterministically from the 1 MB WikiText-2 sample: its sentences are shuffled (seeded) and regrouped
   into paragraphs of 3-8 sentences until the size is reached. Every sentence recurs ~50 times, so the
   model is not a useful one, and lmplz needs `--discount-fallback` (the recurring n-grams upset the
   closed-form Kneser-Ney discounts, as lmplz warns for duplicated text); the work (normalising,
   SentencePiece sampling, lmplz's on-disk sort of every n-gram, build_binary) scales with the bytes as
   for real text.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work" / "perplexity"
RESULTS = ROOT / "bench" / "results"
WIKITEXT = ROOT / "data" / "samples" / "text" / "wikitext-2-valid.txt.gz"

WEB_RECIPE = """name: bench-perplexity-web
input: {{paths: [{warc}]}}
output: {{dir: {out}}}
executor: {{kind: local, tasks: 4, workers: 2}}
stages:
  - extract: {{timeout_s: 1.0}}
  - language: {{languages: [en], min_score: 0.5}}
"""


def web_corpus() -> list[dict]:
    """English pages of data/samples/warc as extracted text (a webmill run, cached in bench/work)."""
    out = WORK / "web"
    if not (out / "stats.json").is_file():
        recipe = WORK / "web.yaml"
        recipe.write_text(WEB_RECIPE.format(warc=ROOT / "data" / "samples" / "warc", out=out))
        subprocess.run([sys.executable, "-m", "webmill", "run", str(recipe), "--overwrite", "--quiet"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import pyarrow.parquet as pq

    return pq.read_table(out / "data", columns=["id", "text", "language"]).to_pylist()


def wikitext_paragraphs() -> list[str]:
    from webmill.kenlm.reference import read_lines

    return [line for line in read_lines([WIKITEXT], wikitext=True) if line]


def time_stage(texts: list[str], rounds: int) -> dict:
    from datatrove.data import Document

    from webmill.stages.perplexity import PerplexityFilter, PerplexityParams

    step = PerplexityFilter(PerplexityParams())
    started = time.perf_counter()
    step.model("en")
    load_s = time.perf_counter() - started
    runs = []
    for _ in range(rounds):
        docs = [Document(text=t, id=str(i), metadata={"language": "en"}) for i, t in enumerate(texts)]
        started = time.perf_counter()
        for doc in docs:
            step.filter(doc)
        runs.append(time.perf_counter() - started)
    seconds = statistics.median(runs)
    chars = sum(len(t) for t in texts)
    return {"documents": len(texts), "mean_chars": round(chars / len(texts)), "seconds": round(seconds, 3),
            "docs_per_s_per_core": round(len(texts) / seconds, 1), "mb_per_s_per_core": round(chars / seconds / 1e6, 3),
            "model_load_s": round(load_s, 3), "rounds": [round(r, 3) for r in runs]}


def time_parts(texts: list[str], rounds: int) -> dict:
    """Seconds for the corpus: normalisation only; + SentencePiece; + KenLM (the whole score)."""
    from webmill.kenlm.layout import SHIPPED_MODELS
    from webmill.kenlm.normalize import normalize_paragraphs
    from webmill.kenlm.score import LanguageModel

    lm = LanguageModel.load(SHIPPED_MODELS, "en")

    def normalise():
        for t in texts:
            normalize_paragraphs(t)

    def tokenise():
        for t in texts:
            lm.pieces(normalize_paragraphs(t))

    def score():
        for t in texts:
            lm.perplexity(t)

    parts = {}
    steps = (("normalize", normalise), ("normalize+sentencepiece", tokenise), ("normalize+sentencepiece+kenlm", score))
    for name, fn in steps:
        runs = []
        for _ in range(rounds):
            started = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - started)
        parts[name] = round(statistics.median(runs), 3)
    return parts


def build_training_text(path: Path, target_bytes: int, seed: int) -> dict:
    """~target_bytes of text from WikiText-2's sentences, shuffled and regrouped (see the docstring)."""
    sentences = [s for p in wikitext_paragraphs() for s in re.split(r"(?<=[.!?])\s+", p) if len(s.split()) >= 3]
    rng = random.Random(seed)
    written = paragraphs = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target_bytes:
            line = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 8))) + "\n"
            f.write(line)
            written += len(line.encode("utf-8"))
            paragraphs += 1
    return {"bytes": written, "paragraphs": paragraphs, "source_sentences": len(sentences), "seed": seed,
            "how": "WikiText-2 valid (detokenised) split into sentences, sentences drawn at random with the "
                   "seed and grouped 3-8 per paragraph until the size is reached"}


def time_training(text: Path, built: dict, extra: list[str]) -> dict:
    out = WORK / "model"
    command = [sys.executable, "-m", "webmill", "kenlm", "train", "--text", str(text), "--lang", "en",
               "--out", str(out), "--memory", "1G", "--discount-fallback", *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"webmill kenlm train failed:\n{output}")
    manifest = json.loads((out / "en.manifest.json").read_text())
    return {"text": built, "command": " ".join(command[1:]).replace(str(ROOT) + "/", ""),
            "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "steps_s": manifest["timings_s"], "tokens": manifest["training_text"]["tokens"],
            "ngrams": manifest["ngrams"], "files_bytes": {k: v["bytes"] for k, v in manifest["files"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-mb", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "src"))

    web = [r["text"] for r in web_corpus()]
    wiki = wikitext_paragraphs()
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "note": "one process = one core; other work may have shared this 2-core machine during the run",
        "scoring": {
            "model": "shipped en (WikiText-2, 8000 pieces, 5-gram probing)",
            "web_pages_en": time_stage(web, args.rounds),
            "wikitext_paragraphs": time_stage(wiki, args.rounds),
            "web_pages_en_parts_s": time_parts(web, args.rounds),
        },
    }
    print(json.dumps(result["scoring"], indent=1), flush=True)
    if not args.skip_training:
        text = WORK / "train-text.txt"
        built = build_training_text(text, int(args.train_mb * 1e6), args.seed)
        # all paragraphs (fewer than the default sample of 100000), then a 20000-paragraph sample
        result["training"] = time_training(text, built, [])
        print(json.dumps(result["training"], indent=1), flush=True)
        result["training_sample_20000"] = time_training(text, built, ["--sample", "20000"])
        print(json.dumps(result["training_sample_20000"], indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "perplexity.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS / 'perplexity.json'}")


if __name__ == "__main__":
    main()
