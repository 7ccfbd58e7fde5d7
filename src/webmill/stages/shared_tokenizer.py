"""One word tokenisation per document, shared by every quality filter.

datatrove's Gopher, FineWeb and C4 filters each call `split_into_words(doc.text)`, which re-runs spaCy
on the same text: spaCy is most of the filters' cost. datatrove accepts a `WordTokenizer` instance in
place of a language code, so webmill hands all filters one instance that remembers its last answer.
Documents flow through the filters one at a time, so "the last text" is the current document.
"""

from __future__ import annotations

from functools import lru_cache

from datatrove.utils.word_tokenizers import WordTokenizer, load_word_tokenizer


class SharedWordTokenizer(WordTokenizer):
    def __init__(self, language: str = "en"):
        super().__init__(language)
        self._inner = None
        self._last = {}

    def __getstate__(self):  # ship the language code only; spaCy loads in the worker
        return {"language": self.language, "_inner": None, "_last": {}}

    @property
    def inner(self) -> WordTokenizer:
        if self._inner is None:
            self._inner = load_word_tokenizer(self.language)
        return self._inner

    def _remember(self, kind: str, text: str, compute):
        hit = self._last.get(kind)
        if hit is not None and (hit[0] is text or hit[0] == text):
            return hit[1]
        result = compute(text)
        self._last[kind] = (text, result)
        return result

    def word_tokenize(self, text: str) -> list[str]:
        return self._remember("words", text, self.inner.word_tokenize)

    def sent_tokenize(self, text: str) -> list[str]:
        return self._remember("sents", text, self.inner.sent_tokenize)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self._remember("spans", text, self.inner.span_tokenize)


@lru_cache(maxsize=None)
def shared_tokenizer(language: str) -> SharedWordTokenizer:
    """The process-wide instance for a language (all stages of a recipe get the same one)."""
    return SharedWordTokenizer(language)
