"""Perplexity cutoffs: CCNet's head / middle / tail buckets are the thirds of a language's perplexity
distribution on the crawl itself (Wenzek et al., 2020: 30th and 60th percentiles).

`compute_cutoffs` samples documents of one language from a corpus (webmill Parquet output or JSONL),
scores them and writes `{lang}.cutoffs.json` beside the model:

    head    perplexity <  cutoff[0]      (most like the reference text)
    middle  cutoff[0] <= perplexity < cutoff[1]
    tail    perplexity >= cutoff[1]
"""

from __future__ import annotations

import datetime
import gzip
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from webmill.errors import WebmillError
from webmill.kenlm.layout import ModelFiles

CUTOFFS_FORMAT = "webmill-kenlm-cutoffs/1"
BUCKETS = ("head", "middle", "tail")
CORPUS_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json.gz")


@dataclass(frozen=True)
class Cutoffs:
    lang: str
    percentiles: tuple[float, float]
    values: tuple[float, float]
    per_paragraph: bool
    model_sha256: str | None = None  # of the {lang}.arpa.bin they were computed with (from its manifest)

    def bucket(self, perplexity: float) -> str:
        if perplexity < self.values[0]:
            return "head"
        if perplexity < self.values[1]:
            return "middle"
        return "tail"


def corpus_files(paths: list[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(CORPUS_SUFFIXES))
            if not found:
                raise WebmillError(f"no Parquet or JSONL files in {path}")
            files.extend(found)
        elif path.is_file() and path.name.endswith(CORPUS_SUFFIXES):
            files.append(path)
        else:
            raise WebmillError(f"corpus not found or not Parquet/JSONL: {path}")
    return files


def iter_documents(files: list[Path], text_key: str = "text") -> Iterator[tuple[str, str | None]]:
    """(text, language or None) for every document, streaming."""
    for file in files:
        if file.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(file)
            names = pf.schema_arrow.names
            if text_key not in names:
                raise WebmillError(f"{file} has no '{text_key}' column")
            columns = [text_key] + (["language"] if "language" in names else [])
            for batch in pf.iter_batches(columns=columns, batch_size=1024):
                texts = batch.column(text_key).to_pylist()
                langs = batch.column("language").to_pylist() if "language" in columns else [None] * len(texts)
                yield from zip(texts, langs)
        else:
            opener = gzip.open if file.name.endswith(".gz") else open
            with opener(file, "rt", encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        record = json.loads(line)
                        lang = record.get("language") or (record.get("metadata") or {}).get("language")
                        yield record.get(text_key), lang


def sample_texts(files: list[Path], lang: str, size: int, seed: int) -> tuple[list[str], int]:
    """A uniform sample (reservoir) of the documents in `lang` (or without a language); and how many there were."""
    rng = random.Random(seed)
    sample: list[str] = []
    seen = 0
    for text, doc_lang in iter_documents(files):
        if not text or (doc_lang is not None and doc_lang != lang):
            continue
        seen += 1
        if len(sample) < size:
            sample.append(text)
        else:
            j = rng.randrange(seen)
            if j < size:
                sample[j] = text
    return sample, seen


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def compute_cutoffs(model_dir: str | Path, lang: str, corpus: list[str | Path], sample: int = 5000,
                    percentiles: tuple[float, float] = (30, 60), per_paragraph: bool = True, seed: int = 0) -> dict:
    """Score a sample of `corpus` and write `{lang}.cutoffs.json`; return its content."""
    from webmill.kenlm.score import LanguageModel

    if len(percentiles) != 2 or not 0 < percentiles[0] < percentiles[1] < 100:
        raise WebmillError(f"--percentiles {' '.join(map(str, percentiles))}: two increasing values between "
                           "0 and 100 (head/middle and middle/tail), e.g. 30 60")
    if sample < 1:
        raise WebmillError("--sample must be at least 1")
    files = ModelFiles(Path(model_dir), lang)
    model = LanguageModel.load(files.folder, lang)
    texts, seen = sample_texts(corpus_files(corpus), lang, sample, seed)
    scores = sorted(p for p in (model.perplexity(t, per_paragraph) for t in texts) if math.isfinite(p))
    if len(scores) < 10:
        raise WebmillError(f"only {len(scores)} '{lang}' documents could be scored in the corpus; "
                           "cutoffs need at least 10")
    model_sha = None
    if files.manifest.is_file():
        model_sha = json.loads(files.manifest.read_text())["files"][files.binary.name]["sha256"]
    result = {
        "format": CUTOFFS_FORMAT,
        "lang": lang,
        "percentiles": list(percentiles),
        "cutoffs": [round(percentile(scores, q), 2) for q in percentiles],
        "per_paragraph": per_paragraph,
        "documents": {"in_language": seen, "sampled": len(texts), "scored": len(scores)},
        "distribution": {str(q): round(percentile(scores, q), 2) for q in range(0, 101, 10)},
        "corpus": [str(p) for p in corpus],
        "seed": seed,
        "model_sha256": model_sha,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    files.cutoffs.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def load_cutoffs(path: str | Path) -> Cutoffs:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != CUTOFFS_FORMAT:
        raise WebmillError(f"{path}: not a webmill cutoffs file; recompute it with `webmill kenlm cutoffs`")
    return Cutoffs(data["lang"], tuple(data["percentiles"]), tuple(data["cutoffs"]), data["per_paragraph"],
                   data.get("model_sha256"))
