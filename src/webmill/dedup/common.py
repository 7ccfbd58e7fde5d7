"""Helpers shared by webmill's dedup steps. No import of `webmill.stages` here: stage modules and dedup
modules import each other, and this module must load whichever of them is imported first."""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from functools import lru_cache

import numpy as np
import regex
from datatrove.utils.text import NUMBERS_PATTERN, PUNCTUATION

PUNCT = re.compile("[" + re.escape(PUNCTUATION) + "]")
MARKS = regex.compile(r"\p{Mn}+")

# for `normalized_bytes`: the ASCII part of a text is normalised as bytes, by table, in NumPy
ASCII_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "  # what str.split() splits at, below 128
BYTE_MAP = np.array([ord("0") if chr(c).isdigit() and c < 128 else
                     32 if c < 128 and (chr(c) in PUNCTUATION or chr(c) in ASCII_WHITESPACE) else c
                     for c in range(256)], dtype=np.uint8)
IS_DIGIT = np.zeros(256, dtype=bool)
IS_DIGIT[ord("0"):ord("9") + 1] = True
IS_SEPARATOR = np.zeros(256, dtype=bool)  # the ASCII separators of NUMBERS_PATTERN ("3.5", "1,000")
IS_SEPARATOR[[ord("."), ord(",")]] = True
NUMBER_PARTS = regex.compile(r"[\p{Nd}،٫⎖⎗⎘]")  # non-ASCII characters the numbers rule can involve
# the other characters str.split() splits at (`tests/test_minhash_dedup.py` checks the list)
UNICODE_WHITESPACE = "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
                     "\u2028\u2029\u202f\u205f\u3000"
OTHER_SPACE = re.compile("[" + UNICODE_WHITESPACE + "]")


def normalized_words(text: str) -> list[str]:
    """The words of datatrove's `simplify_text` (lower case, digits → 0, punctuation → space, accents
    removed), split at whitespace. Gives the same words as `simplify_text(text).split()`, ~3× faster
    (one regex per rule; the accent pass runs only on non-ASCII text)."""
    text = PUNCT.sub(" ", NUMBERS_PATTERN.sub("0", text.lower()))
    if not text.isascii():
        text = MARKS.sub("", unicodedata.normalize("NFD", text))
    return text.split()


def normalized_bytes(text: str) -> bytes:
    """UTF-8 of `" ".join(normalized_words(text))`; see `normalized_batch`."""
    return normalized_batch([text])[0]


def normalized_batch(texts: list[str]) -> list[bytes]:
    """UTF-8 of `" ".join(normalized_words(text))` for each text, without building the word strings:
    ~3× faster on web text, which matters where every document is hashed (MinHash signatures).

    Mostly-ASCII texts (most web pages in Latin script: a few quotes, dashes or accented letters) are
    normalised as bytes by table, a batch at a time in NumPy; each run of non-ASCII characters between
    ASCII ones goes through the text rules on its own (cached: the same quotes and dashes come back on
    every page). Every rule but the numbers one works character by character, so the result is the same;
    a text with a non-ASCII digit or number separator, or mostly non-ASCII, takes the text path of
    `normalized_words`."""
    results: list[bytes] = [b""] * len(texts)
    batch = []  # (index, lower-cased UTF-8) of the texts normalised as bytes
    for i, text in enumerate(texts):
        text = text.lower()
        data = text.encode("utf-8", "surrogatepass")
        if len(data) - len(text) > len(text) // 4:  # mostly non-ASCII: one pass over the text is cheaper
            results[i] = _normalized_text_bytes(text)
        else:
            batch.append((i, data.replace(b"\0", b" ")))  # NUL is punctuation: a space either way
    if not batch:
        return results
    raw = np.frombuffer(b"\0".join(data for _, data in batch), dtype=np.uint8)
    keep = _number_mask(raw)
    out = BYTE_MAP[raw]  # punctuation and whitespace -> " ", digits -> "0", nothing -> NUL
    out[raw == 0] = 0  # keeps the joins between texts
    if keep is not None:
        out = out[keep]
    out, failed = _replace_non_ascii_runs(out)
    space = out == 32
    keep = ~space
    keep[1:] |= ~space[:-1]  # the first space after a word stays
    for j, ((i, _), piece) in enumerate(zip(batch, out[keep].tobytes().split(b"\0"))):
        results[i] = _normalized_text_bytes(texts[i].lower()) if j in failed else piece.strip(b" ")
    return results


def _normalized_text_bytes(text: str) -> bytes:
    text = PUNCT.sub(" ", NUMBERS_PATTERN.sub("0", text))
    if not text.isascii():
        text = MARKS.sub("", unicodedata.normalize("NFD", text))
    return " ".join(text.split()).encode("utf-8", "surrogatepass")


def _number_mask(raw: np.ndarray) -> np.ndarray | None:
    """NUMBERS_PATTERN on ASCII bytes: which bytes stay when every match ("2024", "3.5", "1,000") becomes
    one digit (BYTE_MAP then turns it into "0"). None when there is no digit."""
    digit = IS_DIGIT[raw]
    if not digit.any():
        return None
    starts = digit.copy()
    starts[1:] &= ~digit[:-1]
    keep = starts | ~digit  # one digit per run of digits
    # "3.5": a separator between two runs joins them into one match; matches go left to right, so in a
    # chain "1.2.3.4" the separators join runs pairwise ("1.2", "3.4"): every other separator of a chain
    joins = np.flatnonzero(IS_SEPARATOR[raw[1:-1]] & digit[:-2] & digit[2:]) + 1
    if len(joins):
        left_run = np.cumsum(starts)[joins - 1]
        chain_start = np.ones(len(joins), dtype=bool)
        chain_start[1:] = left_run[1:] != left_run[:-1] + 1
        index = np.arange(len(joins))
        first_of_chain = np.maximum.accumulate(np.where(chain_start, index, 0))
        joined = joins[(index - first_of_chain) % 2 == 0]
        keep[joined] = False  # the separator and the digit that starts the run it joins
        keep[joined + 1] = False
    return keep


def _replace_non_ascii_runs(out: np.ndarray) -> tuple[np.ndarray, set[int]]:
    """Each run of non-ASCII bytes normalised by `_normalize_run`; returns the new bytes and the positions
    (among the NUL-separated texts) of the texts with a run the numbers rule may involve."""
    high = np.concatenate(([False], out >= 128, [False]))
    edges = np.flatnonzero(high[1:] != high[:-1])
    if not len(edges):
        return out, set()
    data = out.tobytes()
    pieces, done, failed = [], 0, set()
    for start, end in zip(edges[::2].tolist(), edges[1::2].tolist()):
        normalized = _normalize_run(data[start:end])
        if normalized is None:
            failed.add(data.count(0, 0, start))
            normalized = data[start:end]
        pieces += (data[done:start], normalized)
        done = end
    pieces.append(data[done:])
    return np.frombuffer(b"".join(pieces), dtype=np.uint8), failed


@lru_cache(maxsize=1 << 16)
def _normalize_run(run: bytes) -> bytes | None:
    """A run of non-ASCII characters (lower case already) through the punctuation, accent and whitespace
    rules; None when it holds a digit or number separator (the numbers rule looks across runs)."""
    text = run.decode("utf-8", "surrogatepass")
    if NUMBER_PARTS.search(text):
        return None
    text = MARKS.sub("", unicodedata.normalize("NFD", PUNCT.sub(" ", text)))
    return OTHER_SPACE.sub(" ", text).encode("utf-8", "surrogatepass")


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


# files of the global dedup steps


def write_atomically(path: str, write) -> None:
    """`write(temporary path)`, then the file takes its name at once: a rerun never sees half a file."""
    write(path + ".tmp")
    os.replace(path + ".tmp", path)


def empty_folder(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)
