"""Train a fastText quality classifier (DCLM's recipe at small scale): supervised fastText with word
bigrams, text the user trusts labelled `positive`, random web text labelled `negative`.

Both sides are sampled to at most `max_docs` documents each by seeded reservoir sampling (memory bounded
whatever the input size), then cut to the same count (balanced). A share of each side (`heldout`) is kept
out of training; the model is scored on it and the metrics go to `manifest.json`. With one thread and a
seed the sample and the training order are fixed, and fastText (one thread, seeded) gives the same model
bytes run after run with the default 2^18 hash buckets (see docs/quality-pii-decontamination.md).
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from webmill.checksums import sha256_file
from webmill.errors import WebmillError
from webmill.quality.normalize import LABEL_PREFIX, MAX_CHARS, NEGATIVE, POSITIVE, normalize
from webmill.quality.score import positive_probability
from webmill.quality.sources import SourceCounts, expand, iter_documents


MAX_ATTEMPTS = 3
MIN_BUCKET = 1 << 18


@dataclass
class QualityTrainConfig:
    lang: str = "en"
    seed: int = 1
    dim: int = 64           # DCLM uses 256 on millions of documents; 64 is plenty for a few thousand
    epochs: int = 25        # DCLM: 3 epochs over ~400k documents; small samples need more passes ...
    lr: float = 0.5         # ... and a larger step (0.1 left a few hundred documents underfit)
    word_ngrams: int = 2    # word bigrams, as DCLM
    min_count: int = 2      # words seen once are noise at this size
    bucket: int = 1 << 18   # hashed bigram rows; fastText's 2M default would make a 500 MB matrix, and with
                            # fewer rows (2^16, 2^17) the installed fastText gave different models run to run
    max_docs: int = 50_000  # per side, reservoir-sampled
    min_words: int = 10     # shorter blocks (headings, menu lines) are not documents
    heldout: float = 0.1
    quantize: bool = True   # product-quantised .ftz, keeping the `quantize_rows` largest rows: ~50x smaller
    quantize_rows: int = 30_000
    language_filter: bool = True  # keep only documents the shipped LID model puts in `lang`
    max_chars: int = MAX_CHARS


@dataclass
class Side:
    label: str
    files: list[Path]
    counts: SourceCounts = field(default_factory=SourceCounts)
    sample: list[str] = field(default_factory=list)
    seen: int = 0  # usable documents (after the length and language checks)


def _language_check(config: QualityTrainConfig):
    if not config.language_filter:
        return lambda line: True
    from webmill.stages.language import SHIPPED_MODEL, load_fasttext

    lid = load_fasttext(SHIPPED_MODEL)
    wanted = LABEL_PREFIX + config.lang

    def check(line: str) -> bool:
        labels, scores = lid.predict(line[:2000], k=1)
        return bool(labels) and labels[0] == wanted and scores[0] >= 0.5

    return check


def reservoir_sample(side: Side, config: QualityTrainConfig, rng: random.Random, in_language) -> None:
    """Algorithm R over the usable documents: each is kept with equal probability, memory max_docs."""
    for text in iter_documents(side.files, side.counts):
        line = normalize(text, config.max_chars)
        if len(line.split()) < config.min_words:
            side.counts.skip("too_short")
            continue
        if not in_language(line):
            side.counts.skip(f"not_{config.lang}")
            continue
        side.seen += 1
        if len(side.sample) < config.max_docs:
            side.sample.append(line)
        else:
            slot = rng.randrange(side.seen)
            if slot < config.max_docs:
                side.sample[slot] = line


def binary_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """Precision, recall, F1 (positive class at `threshold`), accuracy and ROC AUC (ties count half)."""
    predicted = scores >= threshold
    tp = int(np.sum(predicted & labels))
    fp = int(np.sum(predicted & ~labels))
    fn = int(np.sum(~predicted & labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    pos, neg = scores[labels], scores[~labels]
    if len(pos) and len(neg):
        greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        auc = float(greater / (len(pos) * len(neg)))
    else:
        auc = float("nan")
    return {"threshold": threshold, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4), "accuracy": round(float(np.mean(predicted == labels)), 4), "auc": round(auc, 4),
            "positives": int(labels.sum()), "negatives": int((~labels).sum())}


def _write_lines(path: Path, examples: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for label, line in examples:
            f.write(f"{LABEL_PREFIX}{label} {line}\n")


def train_quality_model(positive: list[str | Path], negative: list[str | Path], out: str | Path,
                        config: QualityTrainConfig = QualityTrainConfig(), progress=lambda message: None) -> dict:
    """Train, evaluate on the held-out split, write `out/model.ftz` (or .bin) and `out/manifest.json`;
    return the manifest."""
    if not 0.0 < config.heldout < 0.5:
        raise WebmillError(f"heldout must be between 0 and 0.5, got {config.heldout}")
    if config.bucket < MIN_BUCKET:
        raise WebmillError(f"bucket must be at least {MIN_BUCKET} (fewer made fastText's training irreproducible)")
    if config.max_docs < 10:
        raise WebmillError(f"max_docs must be at least 10, got {config.max_docs}")
    started = time.time()
    sides = [Side(POSITIVE, expand(positive)), Side(NEGATIVE, expand(negative))]
    in_language = _language_check(config)
    for offset, side in enumerate(sides):
        reservoir_sample(side, config, random.Random(config.seed * 1_000_003 + offset), in_language)
        progress(f"{side.label}: {side.counts.documents} documents read, {side.seen} usable, "
                 f"{len(side.sample)} sampled")
    per_side = min(len(side.sample) for side in sides)
    if per_side < 10:
        raise WebmillError(f"too little usable text: {per_side} documents on the smaller side (need at least 10 "
                           f"of at least {config.min_words} words in '{config.lang}' per side)")
    rng = random.Random(config.seed)
    n_heldout = max(1, math.ceil(per_side * config.heldout))
    train, heldout = [], []
    for side in sides:
        chosen = rng.sample(side.sample, per_side)  # balanced: the same count from each side, seeded
        heldout += [(side.label, line) for line in chosen[:n_heldout]]
        train += [(side.label, line) for line in chosen[n_heldout:]]
    rng.shuffle(train)  # one thread reads the file in order: interleave the labels

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    import fasttext

    with tempfile.TemporaryDirectory(dir=out) as tmp:
        train_file = Path(tmp) / "train.txt"
        _write_lines(train_file, train)
        progress(f"training on {len(train)} documents ({len(heldout)} held out)")
        model, attempts = None, 0
        while model is None:
            attempts += 1
            try:
                model = fasttext.train_supervised(
                    input=str(train_file), dim=config.dim, epoch=config.epochs, lr=config.lr,
                    wordNgrams=config.word_ngrams, minCount=config.min_count, bucket=config.bucket, loss="softmax",
                    thread=1, seed=config.seed, verbose=0)
            except RuntimeError as err:  # fastText's "Encountered NaN": a diverging run; another may not
                if "NaN" not in str(err) or attempts == MAX_ATTEMPTS:
                    raise WebmillError(f"fastText training diverged {attempts} time(s) ({err}); lower --lr") from err
                progress(f"training diverged (attempt {attempts}), retrying")
        if config.quantize:
            model.quantize(input=str(train_file), qnorm=True, cutoff=config.quantize_rows, retrain=False,
                           thread=1, verbose=0)
        for name in ("model.ftz", "model.bin"):
            (out / name).unlink(missing_ok=True)
        model_path = out / ("model.ftz" if config.quantize else "model.bin")
        partial = out / f".{model_path.name}.partial"
        model.save_model(str(partial))
        os.replace(partial, model_path)

    scores = np.array([positive_probability(model, line) for _, line in heldout])
    labels = np.array([label == POSITIVE for label, _ in heldout])
    metrics = binary_metrics(scores, labels)
    percentiles = np.percentile(scores[~labels], np.arange(101)).round(5).tolist()
    manifest = {
        "kind": "webmill quality classifier (fastText supervised)",
        "language": config.lang,
        "labels": {"positive": "reference text (trusted)", "negative": "random web text"},
        "model_file": model_path.name,
        "model_bytes": model_path.stat().st_size,
        "model_sha256": sha256_file(model_path),
        "parameters": asdict(config),
        "fasttext": {"dim": config.dim, "epoch": config.epochs, "lr": config.lr, "wordNgrams": config.word_ngrams,
                     "minCount": config.min_count, "bucket": config.bucket, "loss": "softmax", "thread": 1,
                     "seed": config.seed, "quantized": config.quantize},
        "normalization": f"lower case, whitespace collapsed to one line, first {config.max_chars} characters",
        "training_files": {side.label: [{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
                                        for p in side.files] for side in sides},
        "documents": {side.label: {"read": side.counts.documents, "usable": side.seen, "sampled": len(side.sample),
                                   "skipped": side.counts.skipped} for side in sides},
        "sizes": {"per_side": per_side, "train": len(train), "heldout": len(heldout),
                  "vocabulary": len(model.words)},
        "heldout": {"metrics": metrics, "negative_score_percentiles": percentiles,
                    "positive_score_percentiles": np.percentile(scores[labels], np.arange(101)).round(5).tolist()},
        "training_attempts": attempts,
        "train_seconds": round(time.time() - started, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    progress("held-out: " + ", ".join(f"{k} {metrics[k]}" for k in ("precision", "recall", "f1", "auc")))
    return manifest
