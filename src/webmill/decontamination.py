"""Evaluation-set contamination: which evaluation sets share a word n-gram (13 by default) with a text.

As in GPT-3's and the Pile's contamination analyses, texts are compared as sequences of normalised words
(lower case, punctuation removed: a word is a run of letters or digits), and a document is contaminated
by an evaluation set when one of its word n-grams occurs in one of that set's texts. An evaluation text
shorter than n words is used whole, as a single shorter n-gram, when it has at least `min_words` words
(8 by default: BLiMP sentences and short questions are kept, fragments such as "Question: dresser" are
not — they would match ordinary web text); shorter ones are left out and counted.

Memory: each distinct n-gram is a 64-bit hash (plus a 2-byte set id) in one sorted numpy array, so the
index costs ~10 bytes per evaluation n-gram whatever the text size; a document is looked up by binary
search, one document at a time. Hashes are stable across processes and runs (blake2b per word, combined
polynomially per n-gram); with 64 bits, a false match between two different n-grams is improbable
(~1e-7 for 10 million document n-grams against 1 million evaluation n-grams).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

import numpy as np

from webmill.errors import WebmillError

WORD = re.compile(r"[^\W_]+")
_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so the polynomial combination is invertible
_LENGTH_SALT = np.uint64(0x9E3779B97F4A7C15)
_WORD_CACHE_LIMIT = 500_000


def normalized_words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: punctuation, underscores and spacing are dropped."""
    return WORD.findall(text.lower())


class _WordHasher:
    """64-bit word hashes, cached per process (the cache is cleared when it grows past a bound)."""

    def __init__(self):
        self.cache: dict[str, int] = {}

    def __call__(self, words: list[str]) -> np.ndarray:
        cache = self.cache
        if len(cache) > _WORD_CACHE_LIMIT:
            cache.clear()
        out = np.empty(len(words), dtype=np.uint64)
        for i, word in enumerate(words):
            value = cache.get(word)
            if value is None:
                value = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
                cache[word] = value
            out[i] = value
        return out


_hash_words = _WordHasher()


def ngram_hashes(word_hashes: np.ndarray, k: int) -> np.ndarray:
    """Hashes of every k consecutive words (empty when there are fewer than k)."""
    count = len(word_hashes) - k + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        acc = np.zeros(count, dtype=np.uint64)
        for i in range(k):
            acc = acc * _MULTIPLIER + word_hashes[i:i + count]
        return acc ^ (np.uint64(k) * _LENGTH_SALT)  # a k-gram never equals an m-gram of the same words


def shipped_eval_texts() -> Iterator[tuple[str, str]]:
    try:
        from webmill.evalsets import iter_eval_texts
    except ImportError as err:
        raise WebmillError(f"the shipped evaluation sets are not available ({err}); pass texts explicitly") from err
    return iter_eval_texts()


def select_sets(available: Iterable[str], wanted: list[str] | None) -> set[str]:
    """`wanted` names match a set exactly or as a family prefix ("arc" → arc_easy, arc_challenge; "blimp"
    → blimp/…); an unknown name is an error listing what exists."""
    available = sorted(set(available))
    if wanted is None:
        return set(available)
    chosen = set()
    for name in wanted:
        hits = [s for s in available if s == name or s.startswith((f"{name}_", f"{name}/", f"{name}-"))]
        if not hits:
            raise WebmillError(f"unknown evaluation set {name!r}; available: {', '.join(available) or 'none'}")
        chosen.update(hits)
    return chosen


class EvalNgramIndex:
    """Word n-grams of evaluation texts, to find documents that contain evaluation text.

    `EvalNgramIndex(n=13)` indexes every shipped evaluation set (`webmill.evalsets.iter_eval_texts()`);
    `sets` restricts it to some of them; `texts` (pairs of set name and text) replaces the shipped ones.
    """

    def __init__(self, n: int = 13, sets: list[str] | None = None, *,
                 texts: Iterable[tuple[str, str]] | None = None, min_words: int = 8):
        if n < 1 or min_words < 1:
            raise WebmillError(f"n ({n}) and min_words ({min_words}) must be at least 1")
        self.n = n
        self.min_words = min(min_words, n)
        pairs = list(texts) if texts is not None else list(shipped_eval_texts())
        chosen = select_sets((name for name, _ in pairs), sets)
        self.names: list[str] = sorted(chosen)
        set_id = {name: i for i, name in enumerate(self.names)}
        self.stats: dict[str, dict[str, int]] = {name: {"texts": 0, "ngrams": 0, "short_texts": 0, "too_short": 0}
                                                 for name in self.names}
        per_set: dict[str, list[np.ndarray]] = {name: [] for name in self.names}
        lengths = {n}
        for name, text in pairs:
            if name not in set_id:
                continue
            words = normalized_words(text)
            stats = self.stats[name]
            stats["texts"] += 1
            k = n if len(words) >= n else len(words)
            if k < self.min_words:
                stats["too_short"] += 1
                continue
            if k < n:
                stats["short_texts"] += 1
                lengths.add(k)
            per_set[name].append(ngram_hashes(_hash_words(words), k))
        hashes, ids = [], []
        for name, chunks in per_set.items():
            unique = np.unique(np.concatenate(chunks)) if chunks else np.empty(0, dtype=np.uint64)
            self.stats[name]["ngrams"] = int(len(unique))
            hashes.append(unique)
            ids.append(np.full(len(unique), set_id[name], dtype=np.uint16))
        all_hashes = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
        order = np.argsort(all_hashes, kind="stable")
        self._hashes = all_hashes[order]
        self._set_ids = (np.concatenate(ids) if ids else np.empty(0, dtype=np.uint16))[order]
        self._lengths = sorted(lengths)

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def nbytes(self) -> int:
        return int(self._hashes.nbytes + self._set_ids.nbytes)

    def match_counts(self, text: str) -> dict[str, int]:
        """Evaluation set → how many distinct n-grams of `text` it shares (sets sharing none are absent)."""
        if not len(self._hashes):
            return {}
        words = normalized_words(text)
        if len(words) < self._lengths[0]:
            return {}
        word_hashes = _hash_words(words)
        query = np.unique(np.concatenate([ngram_hashes(word_hashes, k) for k in self._lengths]))
        positions = np.searchsorted(self._hashes, query)
        inside = positions < len(self._hashes)
        found = positions[inside][self._hashes[positions[inside]] == query[inside]]
        counts: dict[str, int] = {}
        for start in found.tolist():
            value, i = self._hashes[start], start
            while i < len(self._hashes) and self._hashes[i] == value:  # the same n-gram in several sets
                name = self.names[self._set_ids[i]]
                counts[name] = counts.get(name, 0) + 1
                i += 1
        return counts

    def matches(self, text: str) -> list[str]:
        """Names of the evaluation sets sharing at least one n-gram with `text`, sorted."""
        return sorted(self.match_counts(text))
