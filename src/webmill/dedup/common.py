"""Helpers shared by webmill's dedup steps. No import of `webmill.stages` here: stage modules and dedup
modules import each other, and this module must load whichever of them is imported first."""

from __future__ import annotations

import re
import unicodedata

import regex
from datatrove.utils.text import NUMBERS_PATTERN, PUNCTUATION

PUNCT = re.compile("[" + re.escape(PUNCTUATION) + "]")
MARKS = regex.compile(r"\p{Mn}+")


def normalized_words(text: str) -> list[str]:
    """The words of datatrove's `simplify_text` (lower case, digits → 0, punctuation → space, accents
    removed), split at whitespace. Gives the same words as `simplify_text(text).split()`, ~3× faster
    (one regex per rule; the accent pass runs only on non-ASCII text)."""
    text = PUNCT.sub(" ", NUMBERS_PATTERN.sub("0", text.lower()))
    if not text.isascii():
        text = MARKS.sub("", unicodedata.normalize("NFD", text))
    return text.split()


def ngram_strings(words: list[str], n: int) -> list[str]:
    """The shingles as text: each run of `n` consecutive words joined by one space. Documents with fewer
    than `n` words have none (as in datatrove) and are never near-duplicates of anything."""
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


# documents are keyed by (input file, position in that file), never by task


def doc_key(shard: int, pos: int) -> int:
    return (shard << 32) | pos


class ShardPositions:
    """Counts documents per input file as they arrive; they arrive one input file after another."""

    def __init__(self):
        self.shard: int | None = None
        self.pos = -1
        self.seen: set[int] = set()

    def next(self, doc) -> tuple[int, int, bool]:
        """(input index, position, True when this document starts a new input file)."""
        shard = int(doc.metadata["shard_index"])
        if shard != self.shard:
            if shard in self.seen:
                raise RuntimeError(f"documents of input file {shard} did not arrive together")
            self.seen.add(shard)
            self.shard, self.pos = shard, 0
            return shard, 0, True
        self.pos += 1
        return shard, self.pos, False
