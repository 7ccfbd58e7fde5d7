"""Token counts without a download: what the mix weighs sources by and what a run's funnel reports.

`sentencepiece` counts the pieces of the shipped English SentencePiece model (8,000 pieces, from
WikiText-2) over each paragraph normalised as the model was trained (lower case, digits to 0, ASCII
punctuation): subword units, like an LM's tokens, so code and foreign text count more per word than
English prose. `words` counts whitespace-separated words and needs no model.
"""

from __future__ import annotations

import os
from pathlib import Path

from webmill.errors import WebmillError

SHIPPED_SP_MODEL = Path(__file__).resolve().parent / "assets" / "kenlm" / "en.sp.model"
TOKENIZERS = ("sentencepiece", "words")


def tokenizer_name(kind: str, sp_model: str | os.PathLike | None = None) -> str:
    """How reports name a tokenizer (no model is loaded)."""
    if kind == "words":
        return "words (whitespace-separated)"
    return f"sentencepiece ({Path(sp_model or SHIPPED_SP_MODEL).name}, normalised paragraphs)"


class TokenCounter:
    """Counts the tokens of one text at a time (`count`); `describe` names the tokenizer for reports."""

    def __init__(self, kind: str = "sentencepiece", sp_model: str | os.PathLike | None = None):
        if kind not in TOKENIZERS:
            raise WebmillError(f"unknown tokenizer {kind!r} (choose one of: {', '.join(TOKENIZERS)})")
        self.kind = kind
        self.model_path = Path(sp_model) if sp_model else SHIPPED_SP_MODEL
        if kind == "sentencepiece":
            import sentencepiece as spm

            from webmill.kenlm.normalize import normalize_paragraphs

            if not self.model_path.is_file():
                raise WebmillError(f"SentencePiece model not found: {self.model_path} (train one with "
                                   "`webmill kenlm train`, or use tokenizer: words)")
            self._sp = spm.SentencePieceProcessor(model_file=str(self.model_path))
            self._paragraphs = normalize_paragraphs

    def describe(self) -> str:
        return tokenizer_name(self.kind, self.model_path)

    def count(self, text: str) -> int:
        if self.kind == "words":
            return len(text.split())
        paragraphs = self._paragraphs(text)
        return sum(len(pieces) for pieces in self._sp.encode(paragraphs)) if paragraphs else 0
