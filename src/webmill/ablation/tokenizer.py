"""Tokenizers shared by every corpus of a study: UTF-8 bytes (the default) or a small SentencePiece BPE.

Both reserve one end-of-sequence id (EOS) that `pack_corpus` puts between documents, and both round-trip
any text exactly: the BPE is trained without normalisation and falls back to bytes for unseen characters,
so no corpus is favoured by characters the tokenizer cannot represent.

A tokenizer is saved as a folder: `tokenizer.json` (kind, name, vocabulary size) and, for BPE, the
SentencePiece model `tokenizer.model`. `load_tokenizer(folder)` reads either kind back.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from webmill.errors import WebmillError

META_FILE = "tokenizer.json"
MODEL_FILE = "tokenizer.model"
FORMAT = "webmill-tokenizer/1"
# SentencePiece skips training lines longer than this many bytes; documents are split into lines first
MAX_LINE_BYTES = 4192


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def save(self, folder: str | Path) -> None: ...


class ByteTokenizer:
    """UTF-8 bytes 0–255, and 256 for EOS."""

    name = "bytes"
    vocab_size = 257
    eos_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8", errors="surrogatepass"))

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8", errors="surrogatepass"), dtype=np.uint8) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def save(self, folder: str | Path) -> None:
        _write_meta(folder, {"kind": "bytes", "name": self.name, "vocab_size": self.vocab_size})


class BPETokenizer:
    """A SentencePiece BPE model with byte fallback; its EOS id is SentencePiece's `</s>`."""

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self.sp.get_piece_size()
        self.eos_id = self.sp.eos_id()
        digest = hashlib.sha256(model_proto).hexdigest()[:8]
        self.name = f"bpe{self.vocab_size}-{digest}"

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(ids, dtype=np.int32) for ids in self.sp.encode(texts)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids if int(i) != self.eos_id])

    def save(self, folder: str | Path) -> None:
        _write_meta(folder, {"kind": "bpe", "name": self.name, "vocab_size": self.vocab_size})
        (Path(folder) / MODEL_FILE).write_bytes(self.model_proto)


def train_bpe(texts: Iterable[str], vocab_size: int, seed: int = 0, max_lines: int = 200_000) -> BPETokenizer:
    """Train a BPE tokenizer on `texts` (give it a balanced sample of every corpus: see data.balanced_sample).

    Documents are split into lines (SentencePiece's unit of training); at most `max_lines` lines are used,
    a seeded sample of them when there are more. The same texts and seed give the same model, byte for byte.
    """
    import sentencepiece as spm

    if not isinstance(vocab_size, int) or vocab_size < 300:
        raise WebmillError(f"BPE vocab_size {vocab_size!r}: use at least 300 (256 byte pieces are reserved)")
    lines = [line for text in texts for line in text.splitlines(keepends=True)
             if line.strip() and len(line.encode("utf-8", errors="surrogatepass")) <= MAX_LINE_BYTES]
    if not lines:
        raise WebmillError("BPE training: no text to train on")
    if len(lines) > max_lines:
        chosen = np.random.default_rng(seed).choice(len(lines), size=max_lines, replace=False)
        lines = [lines[i] for i in sorted(chosen)]
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type="bpe",
            byte_fallback=True, character_coverage=0.9995,
            # keep the text exactly as it is, so that decode(encode(text)) == text
            normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True, split_digits=True,
            unk_id=0, eos_id=1, bos_id=-1, pad_id=-1,
            input_sentence_size=0, shuffle_input_sentence=False, num_threads=1, minloglevel=2)
    except RuntimeError as error:  # e.g. a vocabulary larger than the text allows
        raise WebmillError(f"BPE training failed: {str(error).strip().splitlines()[-1]}") from None
    return BPETokenizer(model.getvalue())


def load_tokenizer(folder: str | Path) -> ByteTokenizer | BPETokenizer:
    meta_path = Path(folder) / META_FILE
    if not meta_path.is_file():
        raise WebmillError(f"{folder}: no {META_FILE}; not a saved tokenizer")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise WebmillError(f"{meta_path}: unknown tokenizer format {meta.get('format')!r}")
    if meta["kind"] == "bytes":
        return ByteTokenizer()
    if meta["kind"] == "bpe":
        model_path = Path(folder) / MODEL_FILE
        if not model_path.is_file():
            raise WebmillError(f"{folder}: {MODEL_FILE} is missing")
        return BPETokenizer(model_path.read_bytes())
    raise WebmillError(f"{meta_path}: unknown tokenizer kind {meta['kind']!r}")


def _write_meta(folder: str | Path, meta: dict) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / META_FILE).write_text(json.dumps({"format": FORMAT, **meta}, indent=2) + "\n")
