"""Perplexity of a document under a SentencePiece + KenLM model, as CCNet computes it.

Each paragraph (line) is normalised, cut into SentencePiece pieces and scored by KenLM as a sentence
(with <s> and </s>). The log10 probabilities are summed over the document and divided by its number of
tokens, counting one </s> per paragraph:

    perplexity = 10 ** (-sum(log10 P(paragraph)) / sum(pieces(paragraph) + 1))

so long paragraphs weigh more than short ones. With `per_paragraph=False` the whole document is scored
as one sentence instead (one <s> ... </s>, paragraph breaks read as spaces).
"""

from __future__ import annotations

from pathlib import Path

from webmill.kenlm.layout import ModelFiles
from webmill.kenlm.normalize import normalize, normalize_paragraphs


class LanguageModel:
    def __init__(self, sp_model: str | Path, binary: str | Path):
        import kenlm
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(sp_model))
        self.lm = kenlm.Model(str(binary))

    @classmethod
    def load(cls, folder: str | Path, lang: str) -> "LanguageModel":
        files = ModelFiles(Path(folder), lang).require_model()
        return cls(files.sp_model, files.binary)

    def pieces(self, paragraphs: list[str]) -> list[list[str]]:
        return self.sp.encode(paragraphs, out_type=str) if paragraphs else []

    def log10_prob(self, text: str, per_paragraph: bool = True) -> tuple[float, int]:
        """(sum of log10 probabilities, number of tokens including one </s> per scored sentence)."""
        paragraphs = normalize_paragraphs(text) if per_paragraph else [normalize(text)]
        total, length = 0.0, 0
        for pieces in self.pieces([p for p in paragraphs if p]):
            total += self.lm.score(" ".join(pieces), bos=True, eos=True)
            length += len(pieces) + 1
        return total, length

    def perplexity(self, text: str, per_paragraph: bool = True) -> float:
        """Perplexity per token; infinite for a document with nothing to score."""
        total, length = self.log10_prob(text, per_paragraph)
        if length == 0:
            return float("inf")
        return 10.0 ** (-total / length)
