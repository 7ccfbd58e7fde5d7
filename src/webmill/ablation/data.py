"""Read a corpus and pack it into a fixed token budget for the ablation.

A corpus is any list of Parquet files with a `text` column (webmill's output `OUT/data/*.parquet`, or
anyone's), JSONL files (`.jsonl`, `.jsonl.gz`) with a `text` field, or folders of them. Given a webmill
output folder (it has `stats.json`), its `data/` folder is read.

Packing (`pack_corpus`):
- Documents are read in a seeded random order that spreads over every file (see `sampled_texts`), one
  unit of reading (a Parquet row group, a whole JSONL file) at a time. Reading stops as soon as the budget
  is filled, so memory holds one row group plus the budget's tokens, and a corpus bigger than the budget
  is sampled uniformly from all of its files, not only the first.
- Each document is tokenised and followed by EOS; the token stream is cut into windows of block_size + 1
  tokens (inputs and next-token targets) that follow each other: every budget token is predicted once.
- A corpus smaller than the budget is repeated, each pass in a fresh seeded document order; `epochs`
  says how many passes the budget amounts to (below 1 when the corpus was only sampled: the corpus size is
  then estimated from the row counts).
Same files, tokenizer, budget and seed give the same token stream.
"""

from __future__ import annotations

import glob
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from webmill.errors import WebmillError

SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz")
ENCODE_BATCH = 256  # documents tokenised together (SentencePiece encodes a list faster than one by one)


@dataclass(frozen=True)
class _Unit:
    """A piece of a corpus read in one go: a Parquet row group or a whole JSONL file."""
    path: Path
    row_group: int | None = None  # None: a JSONL file
    rows: int | None = None  # known for Parquet from its footer


def list_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files, folders and glob patterns into the corpus files, sorted; raise if there are none."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if any(c in str(raw) for c in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(str(raw), recursive=True))]
            if not matches:
                raise WebmillError(f"{raw}: no file matches")
            files += [m for m in matches if m.is_file() and _supported(m)]
        elif path.is_dir():
            if (path / "stats.json").is_file() and (path / "data").is_dir():
                path = path / "data"  # a webmill output folder: the corpus is in data/
            found = sorted(f for f in path.rglob("*") if f.is_file() and _supported(f)
                           and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not found:
                raise WebmillError(f"{raw}: no {', '.join(SUFFIXES)} files in this folder")
            files += found
        elif path.is_file():
            if not _supported(path):
                raise WebmillError(f"{raw}: not a corpus file (expected {', '.join(SUFFIXES)})")
            files.append(path)
        else:
            raise WebmillError(f"{raw}: no such file or folder")
    if not files:
        raise WebmillError("no corpus files given")
    return sorted(dict.fromkeys(files))


def read_texts(paths: Iterable[str | Path]) -> Iterator[str]:
    """Every non-empty `text` of the corpus, file by file in sorted order, streamed by row group."""
    for unit in _units(list_files(paths)):
        for text in _read_unit(unit):
            if text:
                yield text


def sampled_texts(paths: Iterable[str | Path], seed: int, fraction: float = 1.0) -> Iterator[str | None]:
    """Every document of the corpus once (None for a null text), in a seeded random order, one unit at a time.

    Each document draws a seeded key in [0, 1). The corpus is read in passes: the first yields the
    documents whose key is below `fraction`, the next those between fraction and 2·fraction, and so on
    (units in a seeded order; inside a unit by increasing key). Any prefix of the output is thus a
    uniform sample spread over every file; a `fraction` close to the share of the corpus that will be
    used keeps the reading to about one pass.
    """
    units = _units(list_files(paths))
    order = np.random.default_rng([seed, 0]).permutation(len(units))
    low, high = 0.0, min(1.0, max(fraction, 1e-6))
    while low < 1.0:
        for u in order:
            texts = _read_unit(units[u])
            keys = np.random.default_rng([seed, 1, int(u)]).random(len(texts))
            chosen = np.flatnonzero((keys >= low) & (keys < high))
            for i in chosen[np.argsort(keys[chosen], kind="stable")]:
                yield texts[i]
        low, high = high, min(1.0, 2 * high)


def first_fraction(paths: Iterable[str | Path], seed: int, wanted: float, size: Callable[[list[str]], float],
                   rows: int | None = None) -> float:
    """The share of the corpus expected to hold `wanted` (tokens, characters…), with a 20 % margin:
    `size(texts)` of up to 256 documents of one unit, scaled to the corpus's row count (`rows`, counted
    when not given)."""
    files = list_files(paths)
    probe = []
    for text in sampled_texts(files, seed):
        probe.append(text or "")
        if len(probe) == 256:
            break
    per_row = size([t for t in probe if t]) / max(1, len(probe))
    if per_row <= 0:
        return 1.0
    return min(1.0, 1.2 * wanted / (per_row * (rows if rows is not None else _count_rows(files))))


def balanced_sample(corpora: Iterable[Iterable[str | Path]], chars_per_corpus: int, seed: int) -> list[str]:
    """Up to `chars_per_corpus` characters of documents from each corpus, sampled by seed from all of its
    files: text to train one tokenizer for a whole study without favouring the biggest corpus."""
    sample: list[str] = []
    for paths in corpora:
        taken = 0
        fraction = first_fraction(paths, seed, chars_per_corpus, lambda texts: sum(map(len, texts)))
        for text in sampled_texts(paths, seed, fraction):
            if text:
                sample.append(text)
                taken += len(text)
                if taken >= chars_per_corpus:
                    break
    return sample


@dataclass
class PackedCorpus:
    tokens: np.ndarray  # the token stream: budget_tokens + 1 ids (the last only as a target)
    block_size: int
    budget_tokens: int  # tokens predicted over the whole stream (a multiple of block_size)
    corpus_tokens: int  # tokens (with EOS) of the corpus; estimated when the corpus was only sampled
    corpus_tokens_exact: bool
    epochs: float  # budget_tokens / corpus_tokens
    documents: int  # distinct documents in the stream
    skipped_documents: int  # refused by `keep`
    empty_documents: int  # null or empty text
    seed: int

    @property
    def sequences(self) -> int:
        return self.budget_tokens // self.block_size

    def windows(self) -> np.ndarray:
        """[sequences, block_size + 1] view of the stream: window i starts at i·block_size."""
        view = np.lib.stride_tricks.sliding_window_view(self.tokens, self.block_size + 1)
        return view[:: self.block_size][: self.sequences]

    def batches(self, batch_size: int, start: int = 0) -> Iterator["torch.LongTensor"]:
        """LongTensor batches [batch_size, block_size + 1] in stream order, from batch number `start`;
        a last incomplete batch is left out."""
        import torch

        if batch_size < 1:
            raise WebmillError(f"batch_size {batch_size}: must be at least 1")
        windows = self.windows()
        for b in range(start, self.sequences // batch_size):
            yield torch.from_numpy(windows[b * batch_size:(b + 1) * batch_size].astype(np.int64))


def pack_corpus(paths: Iterable[str | Path], tokenizer, budget_tokens: int, block_size: int, seed: int,
                keep: Callable[[str], bool] | None = None) -> PackedCorpus:
    """Tokenise the corpus into a stream of exactly `budget_tokens` (rounded down to whole blocks) + 1 tokens."""
    for name, value in (("budget_tokens", budget_tokens), ("block_size", block_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise WebmillError(f"{name} {value!r}: must be a positive whole number")
    sequences = budget_tokens // block_size
    if sequences < 1:
        raise WebmillError(f"budget_tokens {budget_tokens} is smaller than one block of {block_size} tokens")
    used = sequences * block_size
    need = used + 1
    files = list_files(paths)
    dtype = np.uint16 if tokenizer.vocab_size <= 2 ** 16 else np.int32
    eos = np.array([tokenizer.eos_id], dtype=dtype)

    documents: list[np.ndarray] = []  # each document's tokens followed by EOS
    gathered = encoded = rows = skipped = empty = 0  # encoded: tokens of every document tokenised
    pending: list[str] = []
    total_rows = _count_rows(files)
    fraction = first_fraction(files, seed, need, lambda texts: sum(len(ids) + 1 for ids in _encode(tokenizer, texts)),
                              rows=total_rows)
    stream = sampled_texts(files, seed, fraction)
    exhausted = False
    while gathered < need and not exhausted:
        text = next(stream, StopIteration)
        if text is StopIteration:
            exhausted = True
        else:
            rows += 1
            if not text:
                empty += 1
            elif keep is not None and not keep(text):
                skipped += 1
            else:
                pending.append(text)
        if len(pending) >= ENCODE_BATCH or (exhausted and pending):
            for ids in _encode(tokenizer, pending):
                encoded += len(ids) + 1
                if gathered < need:
                    documents.append(np.concatenate([ids.astype(dtype, copy=False), eos]))
                    gathered += len(documents[-1])
            pending = []
    if not documents:
        raise WebmillError(f"{_describe(files)}: no document with text to train on"
                           + (f" ({skipped} refused by the filter)" if skipped else ""))

    if gathered >= need:  # enough: when the corpus was not read to its end, estimate its size from row counts
        exact = rows == total_rows
        corpus_tokens = encoded if exact else max(encoded, round(encoded / rows * total_rows))
        tokens = np.concatenate(documents)[:need]
    else:  # smaller than the budget: repeat, each pass in a fresh seeded order
        exact, corpus_tokens = True, gathered
        passes = [np.concatenate(documents)]
        total = gathered
        epoch = 1
        while total < need:
            order = np.random.default_rng([seed, 2, epoch]).permutation(len(documents))
            passes.append(np.concatenate([documents[i] for i in order]))
            total += gathered
            epoch += 1
        tokens = np.concatenate(passes)[:need]
    return PackedCorpus(tokens=tokens, block_size=block_size, budget_tokens=used, corpus_tokens=corpus_tokens,
                        corpus_tokens_exact=exact, epochs=used / corpus_tokens, documents=len(documents),
                        skipped_documents=skipped, empty_documents=empty, seed=seed)


def _encode(tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Token ids of each text; a tokenizer's `encode_batch`, when it has one, is faster than one by one."""
    if hasattr(tokenizer, "encode_batch"):
        return tokenizer.encode_batch(texts)
    return [np.asarray(tokenizer.encode(text), dtype=np.int64) for text in texts]


def _supported(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def _describe(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{files[0].parent} ({len(files)} files)"


def _units(files: list[Path]) -> list[_Unit]:
    units: list[_Unit] = []
    for path in files:
        if path.name.endswith(".parquet"):
            metadata = _parquet(path).metadata
            units += [_Unit(path, g, metadata.row_group(g).num_rows) for g in range(metadata.num_row_groups)]
        else:
            units.append(_Unit(path))
    return units


def _parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise WebmillError(f"{path}: not a readable Parquet file ({error})") from None
    field = parquet.schema_arrow.field("text") if "text" in parquet.schema_arrow.names else None
    if field is None:
        raise WebmillError(f"{path}: no 'text' column (columns: {', '.join(parquet.schema_arrow.names)})")
    if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        raise WebmillError(f"{path}: the 'text' column holds {field.type}, not strings")
    return parquet


def _read_unit(unit: _Unit) -> list[str | None]:
    if unit.row_group is not None:
        return _parquet(unit.path).read_row_group(unit.row_group, columns=["text"]).column("text").to_pylist()
    texts: list[str | None] = []
    with _open_jsonl(unit.path) as lines:
        try:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise WebmillError(f"{unit.path}:{number}: not JSON ({error.msg})") from None
                if not isinstance(record, dict) or "text" not in record:
                    raise WebmillError(f"{unit.path}:{number}: no 'text' field")
                if record["text"] is not None and not isinstance(record["text"], str):
                    raise WebmillError(f"{unit.path}:{number}: 'text' is not a string")
                texts.append(record["text"])
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
            raise WebmillError(f"{unit.path}: unreadable ({error})") from None
    return texts


def _open_jsonl(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _count_rows(files: list[Path]) -> int:
    rows = 0
    for path in files:
        if path.name.endswith(".parquet"):
            rows += _parquet(path).metadata.num_rows
        else:
            with _open_jsonl(path) as lines:
                rows += sum(1 for line in lines if line.strip())
    return rows
