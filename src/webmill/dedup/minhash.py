"""Near-duplicate documents with MinHash LSH: on disk, deterministic whatever the task count.

A document is a set of word n-grams (shingles). Two documents whose sets have Jaccard similarity J agree
on one MinHash value with probability J; the first `bands` × `rows` values of the signature are cut into
bands, and two documents that agree on every value of at least one band become candidates. The chance of
that is 1 - (1 - J^rows)^bands, an S-curve that rises around (1/bands)^(1/rows): 0.607 for the default
20 × 6, so that pairs at the duplicate threshold (`verify_threshold`, 0.72) are found with P = 0.95 (0.98
at 0.75). Candidates are then checked on the whole signature (`signature_hashes`, 256 values: the estimate
of J has a standard deviation of about 0.028 there, against 0.04 with 112 values).

Steps (around a `Barrier`, see `webmill.stages.minhash_dedup`):

1. `MinhashSignatures` (every task): one signature per document (`MinHasher`: one-permutation hashing,
   256 documents at a time), written per *input file* as datatrove's bucket files `sigs/bucket_BBB/<input index>.minhash.sig` (records: the band's values + the document's
   position in its input file, sorted), and in position order to `full/<input index>.sig`. Memory: the
   signatures of at most `buffer_mb` MB of documents; larger input files are sorted in runs and merged
   on disk.
2. `FindCandidates` (one task per band), writing what datatrove's `MinhashDedupBuckets` writes: a merge
   of the sorted files of its band, in NumPy (one sort when the band fits in a quarter of `buffer_mb`,
   else rounds of one chunk per file); equal band values give candidate pairs `dups/BBBBB_00.dups`.
3. `ClusterDuplicates` (one task): each candidate pair is verified on the full signatures (share of equal
   values = estimated Jaccard >= `verify_threshold`; banding alone lets most pairs at J = 0.65 through),
   then connected components of the verified pairs. Each
   cluster's survivor is its smallest (input file, position); every member gets `minhash_cluster_id`
   (the survivor's key, input index × 2^32 + position) and `minhash_cluster_size`. Written per input
   file: `clusters/<input index>.bin` and `remove/<input index>.remove` (positions to drop, sorted).
   Memory: at most `buffer_mb` (see `webmill.dedup.components`: in memory while the documents that
   have a duplicate fit, else in parts on disk).
4. `ApplyClusters` (every task, after the barrier): adds the cluster columns to every document (a
   singleton is its own cluster of size 1) and drops the non-survivors (`near_duplicate`).

`engine: datasketch` replaces step 2 and the candidate search of step 3 by `SketchLSH`: the same signatures
in datasketch's in-memory `MinHashLSH`, in one process, for small corpora (no band files). Verification,
clustering and filtering are shared, so both engines give the same clusters (the tests check it).

Why not datatrove's signature and cluster steps: its signature step tokenises with spaCy (~10 ms per
document here) and hashes each shingle in Python, writes one file per *task* (so document ids depend on
the task count), and its cluster step holds a Python dict per duplicate document and keeps the member
that wins a union-by-size, which again depends on ids. See `batch_shingle_hashes` and `ClusterDuplicates`.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger
from datatrove.utils.typeshelper import StatHints

from webmill.dedup.common import (  # noqa: F401
    ShardPositions,
    doc_key,
    empty_folder,
    ngram_strings,
    normalized_batch,
    normalized_words,
    write_atomically,
)
from webmill.dedup.components import CLUSTER_RECORD, cluster
from webmill.dedup.datatrove_minhash import MinhashConfig, MinhashDedupBuckets
from webmill.stages.exclusions import ExclusionMixin

# --------------------------------------------------------------------------------------------------------
# text → words → shingle hashes → signature

U64 = np.uint64
_BASE = U64(0x100000001B3)  # odd, so invertible modulo 2^64
_BASE_INV = U64(pow(int(_BASE), -1, 1 << 64))
_LENGTH_MIX = U64(0x9E3779B97F4A7C15)
_POWERS: list[np.ndarray] = [np.ones(1, U64), np.ones(1, U64)]  # _BASE^i and _BASE^-i, grown on demand


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    if len(_POWERS[0]) <= length:
        size = max(length + 1, 2 * len(_POWERS[0]), 1 << 14)
        for slot, base in ((0, _BASE), (1, _BASE_INV)):
            factors = np.full(size, base, dtype=U64)
            factors[0] = 1
            _POWERS[slot] = np.cumprod(factors, dtype=U64)
    return _POWERS[0], _POWERS[1]


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: an avalanching bijection (arithmetic wraps modulo 2^64)."""
    h = h ^ (h >> U64(33))
    h = h * U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> U64(33))
    h = h * U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> U64(33))


def shingle_hashes(words: list[str], n: int) -> np.ndarray:
    """64-bit hashes of `ngram_strings(words, n)`; see `batch_shingle_hashes`."""
    return batch_shingle_hashes([" ".join(words).encode("utf-8", "surrogatepass")], n)[0]


def batch_shingle_hashes(texts: list[bytes], n: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the word n-grams of several normalised texts (`normalized_bytes`: words separated
    by single spaces), all at once in NumPy: (hashes, index of the text each belongs to).

    Each shingle is the byte span "w1 w2 … wn"; its hash is the polynomial sum of its bytes modulo 2^64,
    read off prefix sums (so a shingle costs O(1) whatever n, and its hash does not depend on where it
    is), mixed with its length and finalised with `fmix64`. The texts are joined by spaces and shingles
    across a join are dropped. datatrove's `get_shingles` hashes one joined string per shingle in Python
    (and its default xxhash function rejects `str` with the xxhash release installed here): ~1.4 ms per
    5 kB page against ~0.01 ms here.
    """
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    data = np.frombuffer(b" ".join(texts), dtype=np.uint8)
    joins = np.cumsum(lengths + 1)[:-1] - 1  # the spaces between two texts
    spaces = np.flatnonzero(data == 32)
    word_starts = np.concatenate(([0], spaces + 1))
    word_ends = np.concatenate((spaces, [len(data)]))
    owner = np.searchsorted(joins, word_starts)  # a word starting after k joins is in text k
    nonempty = word_ends > word_starts  # an empty text leaves an empty "word" between two joins
    word_starts, word_ends, owner = word_starts[nonempty], word_ends[nonempty], owner[nonempty]
    first = np.flatnonzero(owner[:len(owner) - n + 1] == owner[n - 1:]) if len(owner) >= n else np.empty(0, int)
    if not len(first):
        return np.empty(0, dtype=U64), np.empty(0, dtype=np.int64)
    starts, ends = word_starts[first], word_ends[first + n - 1]
    powers, inverse = _powers(len(data))
    prefix = np.empty(len(data) + 1, dtype=U64)
    prefix[0] = 0
    np.cumsum(data * powers[: len(data)], out=prefix[1:])
    spans = (prefix[ends] - prefix[starts]) * inverse[starts] + (ends - starts).astype(U64) * _LENGTH_MIX
    return fmix64(spans), owner[first]


@dataclass(frozen=True)
class MinhashSettings:
    """What every MinHash step must agree on."""

    n_grams: int = 5
    num_buckets: int = 20  # bands
    hashes_per_bucket: int = 6  # rows per band
    hash_bits: int = 32
    seed: int = 1
    signature_hashes: int = 256  # values per signature; the first bands × rows form the bands, all verify

    @property
    def num_hashes(self) -> int:
        return max(self.num_buckets * self.hashes_per_bucket, self.signature_hashes)

    @property
    def threshold(self) -> float:
        """The Jaccard similarity where the candidate probability rises fastest: (1/bands)^(1/rows)."""
        return jaccard_threshold(self.num_buckets, self.hashes_per_bucket)

    @property
    def dtype(self):
        return np.uint32 if self.hash_bits == 32 else np.uint64

    def datatrove_config(self) -> MinhashConfig:
        from datatrove.utils.hashing import HashConfig

        return MinhashConfig(n_grams=self.n_grams, num_buckets=self.num_buckets,
                             hashes_per_bucket=self.hashes_per_bucket, seed=self.seed,
                             hash_config=HashConfig(precision=self.hash_bits, hash_fc="sha1"))  # hash_fc unused

    def band_dtype(self) -> np.dtype:
        """A record of datatrove's bucket files: the band's values, then the document id (uint32)."""
        kind = "<u4" if self.hash_bits == 32 else "<u8"
        return np.dtype([(f"h{i}", kind) for i in range(self.hashes_per_bucket)] + [("doc", "<u4")])


def jaccard_threshold(bands: int, rows: int) -> float:
    return (1.0 / bands) ** (1.0 / rows)


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    return 1.0 - (1.0 - jaccard ** rows) ** bands


class MinHasher:
    """Signatures by one-permutation hashing with optimal densification (Li, Owen & Zhang 2012;
    Shrivastava 2017): the shingle hashes (salted with the seed) are split by their top bits into
    `num_hashes` bins, and value i of the signature is the smallest hash in bin i (its low `hash_bits`
    bits: the bin is set by the top bits, the low ones identify the shingle). Two documents agree on a bin
    with probability equal to their Jaccard similarity, as with `num_hashes` independent permutations,
    but each shingle is hashed once instead of `num_hashes` times.

    A bin no shingle falls into (short documents) borrows the value of another bin: bin i tries the bins
    `_targets(i, …)` — the same sequence for every document — and takes the first non-empty one. That
    keeps the agreement probability equal to the Jaccard similarity (the "optimal densification" of
    Shrivastava 2017; simpler schemes such as "take the next bin" make it vary).

    Documents are hashed in batches: a handful of NumPy calls per batch instead of per document (a call
    costs ~1-2 µs here, as much as the arithmetic of a 5 kB page)."""

    TRIES = 32  # attempts per round of the densification search; more rounds only for very short documents

    def __init__(self, settings: MinhashSettings):
        self.settings = settings
        self.bins = settings.num_hashes
        self.salt = fmix64(np.array([settings.seed], dtype=U64) * _LENGTH_MIX + U64(1))[0]
        self.first_targets = self._targets(np.arange(self.bins), 0)

    def _targets(self, bins: np.ndarray, round_: int) -> np.ndarray:
        """For each bin, the bins it tries in densification round `round_` (TRIES of them)."""
        tries = np.arange(round_ * self.TRIES, (round_ + 1) * self.TRIES, dtype=U64)
        mixed = fmix64(((bins.astype(U64)[:, None] << U64(32)) | tries[None, :]) ^ self.salt)
        return ((mixed >> U64(32)) * U64(self.bins) >> U64(32)).astype(np.intp)

    def words(self, text: str) -> list[str]:
        return normalized_words(text)

    def signatures(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(signatures, has_signature): one row of num_hashes values per text; a text with fewer than
        n_grams words has none (its row is all ones, to be ignored)."""
        hashes, owners = batch_shingle_hashes(normalized_batch(texts), self.settings.n_grams)
        return self.signatures_of_hashes(hashes, owners, len(texts))

    def signatures_of_hashes(self, hashes: np.ndarray, owners: np.ndarray, count: int):
        k = self.bins
        mixed = fmix64(hashes ^ self.salt)
        slots = owners * k + ((mixed >> U64(32)) * U64(k) >> U64(32)).astype(np.int64)
        smallest = np.full(count * k, np.iinfo(U64).max, dtype=U64)
        np.minimum.at(smallest, slots, mixed)
        filled = np.zeros(count * k, dtype=bool)
        filled[slots] = True
        present = np.zeros(count, dtype=bool)
        present[owners] = True
        signatures = smallest.astype(self.settings.dtype)
        empty = np.flatnonzero(~filled & np.repeat(present, k))
        if len(empty):
            signatures[empty] = signatures[self._donors(empty, filled)]
        return signatures.reshape(count, k), present

    def _donors(self, empty: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """For each empty slot (document × k + bin), the first slot of its document that its bin's
        sequence hits and that holds a value."""
        k = self.bins
        donors = np.empty(len(empty), dtype=np.intp)
        pending = np.arange(len(empty))
        round_ = 0
        while len(pending):
            row, bins = divmod(empty[pending], k)
            targets = self.first_targets[bins] if round_ == 0 else self._targets(bins, round_)
            targets = targets + (row * k)[:, None]
            hit = filled[targets]
            found = hit.any(axis=1)
            first_hit = hit.argmax(axis=1)
            donors[pending[found]] = targets[found, first_hit[found]]
            pending = pending[~found]
            round_ += 1
        return donors

    def signature(self, text: str) -> np.ndarray | None:
        """The document's signature (num_hashes values), or None when it has fewer than n_grams words."""
        signatures, present = self.signatures([text])
        return signatures[0] if present[0] else None


# --------------------------------------------------------------------------------------------------------
# step 1: signatures, written per input file and band, sorted

def _sort_records(records: np.ndarray) -> np.ndarray:
    order = np.lexsort([records[name] for name in reversed(records.dtype.names)])
    return records[order]


def _stream_records(path: str, dtype: np.dtype, chunk_rows: int = 1 << 15) -> Iterator[tuple]:
    with open(path, "rb") as f:
        while chunk := f.read(chunk_rows * dtype.itemsize):
            yield from np.frombuffer(chunk, dtype=dtype).tolist()


class _ShardSignatureWriter:
    """Collects the signatures of one input file; at the end writes one sorted file per band. More than
    `buffer_rows` signatures are sorted in runs on disk and merged, so memory stays bounded."""

    def __init__(self, folder: str, shard: int, settings: MinhashSettings, buffer_rows: int, bands: bool = True):
        self.folder, self.shard, self.settings, self.bands = folder, shard, settings, bands
        self.buffer_rows = max(1, buffer_rows) if bands else 1
        self.dtype = settings.band_dtype()
        self.values = np.empty((self.buffer_rows, settings.num_hashes), dtype=settings.dtype)
        self.docs = np.empty(self.buffer_rows, dtype=np.uint32)
        self.rows = 0
        self.runs = 0
        self.run_dir = os.path.join(folder, "tmp", f"{shard:06d}")
        self.full_path = os.path.join(folder, "full", f"{shard:06d}.sig")
        os.makedirs(os.path.dirname(self.full_path), exist_ok=True)
        self.full = open(self.full_path + ".tmp", "wb")
        self.missing = np.full(settings.num_hashes, np.iinfo(settings.dtype).max, dtype=settings.dtype).tobytes()
        self.next_pos = 0

    def add(self, pos: int, signature: np.ndarray | None) -> None:
        """Every document, in order: the full signatures (row = position) are kept to verify candidates."""
        assert pos == self.next_pos, (pos, self.next_pos)
        self.next_pos += 1
        self.full.write(self.missing if signature is None else signature.tobytes())
        if signature is None or not self.bands:
            return
        self.values[self.rows] = signature
        self.docs[self.rows] = pos
        self.rows += 1
        if self.rows == self.buffer_rows:
            self._spill()

    def _band_records(self, band: int) -> np.ndarray:
        r = self.settings.hashes_per_bucket
        records = np.empty(self.rows, dtype=self.dtype)
        for i in range(r):
            records[f"h{i}"] = self.values[: self.rows, band * r + i]
        records["doc"] = self.docs[: self.rows]
        return _sort_records(records)

    def _band_path(self, band: int) -> str:
        return os.path.join(self.folder, "sigs", f"bucket_{band:03d}", f"{self.shard:06d}.minhash.sig")

    def _spill(self) -> None:
        os.makedirs(self.run_dir, exist_ok=True)
        for band in range(self.settings.num_buckets):
            self._band_records(band).tofile(os.path.join(self.run_dir, f"{band:03d}_{self.runs:05d}.run"))
        self.runs += 1
        self.rows = 0

    def close(self) -> None:
        self.full.close()
        os.replace(self.full_path + ".tmp", self.full_path)
        if not self.bands:
            return
        if self.runs and self.rows:
            self._spill()
        for band in range(self.settings.num_buckets):
            path = self._band_path(band)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not self.runs:
                write_atomically(path, self._band_records(band).tofile)
                continue
            runs = [os.path.join(self.run_dir, f"{band:03d}_{i:05d}.run") for i in range(self.runs)]
            write_atomically(path, lambda target: self._merge(runs, target))
        if self.runs:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _merge(self, runs: list[str], target: str) -> None:
        # the runs' read buffers (as Python tuples, ~0.5 kB a record) share the memory of one run
        budget = self.buffer_rows * self.settings.num_hashes * self.settings.hash_bits // 8
        rows = max(16, budget // (512 * (len(runs) + 1)))
        with open(target, "wb") as out:
            batch = []
            for record in heapq.merge(*(_stream_records(p, self.dtype, rows) for p in runs)):
                batch.append(record)
                if len(batch) == rows:
                    out.write(np.array(batch, dtype=self.dtype).tobytes())
                    batch = []
            if batch:
                out.write(np.array(batch, dtype=self.dtype).tobytes())


class MinhashSignatures(PipelineStep):
    """Step 1 (every task): signatures per input file, in position order (`full/`) and, unless `bands` is
    false (engine datasketch), per band in datatrove's bucket-file format (`sigs/`)."""

    type = "🫂 - DEDUP"
    name = "🎯 minhash signatures"

    def __init__(self, work_dir: str, settings: MinhashSettings, buffer_mb: int = 64, bands: bool = True):
        super().__init__()
        self.work_dir = work_dir
        self.settings = settings
        self.bands = bands
        row_bytes = settings.num_hashes * settings.hash_bits // 8 + 4
        self.buffer_rows = max(1, (buffer_mb << 20) // row_bytes)

    BATCH_DOCS = 256
    BATCH_CHARS = 1 << 19  # a batch's text; the hashing's temporary arrays take ~60 bytes a character

    def run(self, data, rank: int = 0, world_size: int = 1):
        hasher = MinHasher(self.settings)
        positions = ShardPositions()
        writer, batch, chars = None, [], 0
        for doc in data:
            self.stat_update(StatHints.total, StatHints.forwarded)
            shard, pos, new_shard = positions.next(doc)
            if new_shard:
                yield from self._flush(hasher, writer, batch)
                batch, chars = [], 0
                if writer is not None:
                    writer.close()
                writer = _ShardSignatureWriter(self.work_dir, shard, self.settings, self.buffer_rows, self.bands)
            batch.append((pos, doc))
            chars += len(doc.text)
            if len(batch) == self.BATCH_DOCS or chars >= self.BATCH_CHARS:
                yield from self._flush(hasher, writer, batch)
                batch, chars = [], 0
        yield from self._flush(hasher, writer, batch)
        if writer is not None:
            writer.close()

    def _flush(self, hasher: MinHasher, writer, batch: list):
        if not batch:
            return
        with self.track_time():
            signatures, present = hasher.signatures([doc.text for _, doc in batch])
            for (pos, _), signature, ok in zip(batch, signatures, present.tolist()):
                if not ok:
                    self.stat_update("too_few_words")
                writer.add(pos, signature if ok else None)
        for _, doc in batch:
            yield doc


# --------------------------------------------------------------------------------------------------------
# step 2: candidate pairs from datatrove's bucket merge

class FindCandidates(MinhashDedupBuckets):
    """datatrove's `MinhashDedupBuckets` (one task per band) on webmill's per-input-file signature files.

    datatrove's heap merge handles a record at a time in Python (~5 µs each); webmill merges with NumPy
    and writes the same file, byte for byte (records ordered by band values, input file, position; one
    pair per two neighbours with equal values). A band whose files fit in a quarter of `buffer_mb` is
    merged with one sort; a larger one in rounds: every file's next chunk is read (together at most a
    quarter of `buffer_mb`), the records below the smallest last value of a file not yet finished are
    sorted and written, the rest wait for the next round. datatrove's own merge remains for a band split
    over several tasks. The band folders are created so an empty corpus works."""

    def __init__(self, work_dir: str, settings: MinhashSettings, buffer_mb: int = 64):
        super().__init__(os.path.join(work_dir, "sigs"), os.path.join(work_dir, "dups"),
                         config=settings.datatrove_config())
        self.work_dir = work_dir
        self.settings = settings
        self.buffer_mb = buffer_mb

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        band_dir = os.path.join(self.work_dir, "sigs", f"bucket_{rank:03d}")
        os.makedirs(band_dir, exist_ok=True)
        os.makedirs(os.path.join(self.work_dir, "dups"), exist_ok=True)
        names = sorted(f for f in os.listdir(band_dir) if f.endswith(".minhash.sig"))
        size = sum(os.path.getsize(os.path.join(band_dir, name)) for name in names)
        if world_size != self.settings.num_buckets:
            self.lines_to_buffer = int(min(1 << 14, max(16, (self.buffer_mb << 20) // max(1, len(names))
                                                        // self.settings.band_dtype().itemsize)))
            return super().run(data, rank, world_size)
        target = os.path.join(self.work_dir, "dups", f"{rank:05d}_00.dups")
        with self.track_time():
            if size <= (self.buffer_mb << 20) // 4:
                write_atomically(target, lambda path: self._merge_in_memory(band_dir, names, path))
            else:
                rows = (self.buffer_mb << 20) // 4 // len(names) // self.settings.band_dtype().itemsize
                write_atomically(target, lambda path: self._merge_in_rounds(band_dir, names, path, rows))

    def _pairs(self, records: np.ndarray, files: np.ndarray) -> np.ndarray:
        """The candidate pairs of a set of records holding every record of its band values."""
        values = [records[f"h{i}"] for i in range(self.settings.hashes_per_bucket)]
        order = np.lexsort([records["doc"], files] + values[::-1])
        values = [v[order] for v in values]
        files, docs = files[order], records["doc"][order]
        same = np.ones(max(0, len(order) - 1), dtype=bool)
        for v in values:
            same &= v[1:] == v[:-1]
        first = np.flatnonzero(same)
        pairs = np.empty(len(first), dtype=DUP_PAIR)
        pairs["f1"], pairs["d1"] = files[first], docs[first]
        pairs["f2"], pairs["d2"] = files[first + 1], docs[first + 1]
        self.stat_update("total_matches", value=len(first))
        return pairs

    def _merge_in_memory(self, band_dir: str, names: list[str], path: str) -> None:
        dtype = self.settings.band_dtype()
        parts = [np.fromfile(os.path.join(band_dir, name), dtype=dtype) for name in names]
        records = np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
        files = np.repeat(np.array([int(n.removesuffix(".minhash.sig")) for n in names], dtype=np.uint32),
                          [len(part) for part in parts])
        self._pairs(records, files).tofile(path)

    def _merge_in_rounds(self, band_dir: str, names: list[str], path: str, chunk_rows: int) -> None:
        dtype = self.settings.band_dtype()
        key = [f"h{i}" for i in range(self.settings.hashes_per_bucket)]
        key_dtype = np.dtype([(name, dtype[name]) for name in key])
        chunk_rows = max(64, chunk_rows)
        sources = [open(os.path.join(band_dir, name), "rb") for name in names]
        ids = [int(n.removesuffix(".minhash.sig")) for n in names]
        waiting = [np.empty(0, dtype=dtype) for _ in names]
        finished = [False] * len(names)

        def read_more(i: int) -> None:
            chunk = np.frombuffer(sources[i].read(chunk_rows * dtype.itemsize), dtype=dtype)
            finished[i] = len(chunk) < chunk_rows
            waiting[i] = np.concatenate([waiting[i], chunk])

        try:
            with open(path, "wb") as out:
                for i in range(len(names)):
                    read_more(i)
                while any(len(w) for w in waiting):
                    open_ends = [waiting[i][key][-1].item() for i in range(len(names))
                                 if not finished[i] and len(waiting[i])]
                    bound = np.array([min(open_ends)], dtype=key_dtype)[0] if open_ends else None
                    # records below the bound: every record with the same values is among them
                    counts = [len(w) if bound is None else int(np.searchsorted(w[key], bound)) for w in waiting]
                    if not sum(counts):  # a whole chunk of one value: read on in the files that end with it
                        for i in range(len(names)):
                            if not finished[i] and len(waiting[i]) and waiting[i][key][-1] == bound:
                                read_more(i)
                        continue
                    records = np.concatenate([w[:n] for w, n in zip(waiting, counts)])
                    files = np.repeat(np.array(ids, dtype=np.uint32), counts)
                    out.write(self._pairs(records, files).tobytes())
                    for i, n in enumerate(counts):
                        waiting[i] = waiting[i][n:]
                        if not len(waiting[i]) and not finished[i]:
                            read_more(i)
        finally:
            for source in sources:
                source.close()


DUP_PAIR = np.dtype([("f1", "<u4"), ("d1", "<u4"), ("f2", "<u4"), ("d2", "<u4")])


def _candidate_groups(folder: str, chunk_rows: int = 1 << 20):
    """The candidate groups of datatrove's `.dups` files, a chunk at a time.

    datatrove writes, per band, one pair per two *consecutive* documents with equal band values, so a
    group of k such documents is a chain of k - 1 pairs. Yields (u, v, groups): the groups of exactly two
    as key arrays u, v (most of them, handled in bulk) and the larger groups as key arrays in order."""
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".dups")):
        carry = None  # the last group of a chunk may go on in the next one
        with open(os.path.join(folder, name), "rb") as f:
            while chunk := f.read(chunk_rows * DUP_PAIR.itemsize):
                pairs = np.frombuffer(chunk, dtype=DUP_PAIR)
                u = (pairs["f1"].astype(U64) << U64(32)) | pairs["d1"].astype(U64)
                v = (pairs["f2"].astype(U64) << U64(32)) | pairs["d2"].astype(U64)
                starts = np.flatnonzero(np.concatenate(([True], u[1:] != v[:-1])))
                ends = np.append(starts[1:], len(u))
                groups = []
                if carry is not None and carry[-1] != u[0]:
                    groups.append(carry)
                    carry = None
                simple = ends - starts == 1
                simple[0] = simple[0] and carry is None
                simple[-1] = False
                for s, e in zip(starts[~simple], ends[~simple]):
                    members = np.concatenate((u[s:s + 1], v[s:e]))
                    if s == 0 and carry is not None:
                        members = np.concatenate((carry, v[s:e]))
                        carry = None
                    groups.append(members)
                carry = groups.pop()
                yield u[starts[simple]], v[starts[simple]], groups
        if carry is not None:
            yield np.empty(0, dtype=U64), np.empty(0, dtype=U64), [carry]


# --------------------------------------------------------------------------------------------------------
# step 3: clusters

class SignatureStore:
    """Random access to the full signatures (`full/<input index>.sig`, row = position), memory-mapped.
    The kernel maps pages around each one read, so the callers `release()` (unmap) after every small
    batch: resident memory stays at about batch × 2 × 64 kB instead of growing to the whole files."""

    def __init__(self, folder: str, settings: MinhashSettings):
        self.folder, self.settings = folder, settings
        self.maps: dict[int, np.ndarray] = {}

    def _map(self, shard: int) -> np.ndarray:
        if shard not in self.maps:
            path = os.path.join(self.folder, f"{shard:06d}.sig")
            self.maps[shard] = np.memmap(path, dtype=self.settings.dtype, mode="r").reshape(
                -1, self.settings.num_hashes)
        return self.maps[shard]

    def get(self, keys: np.ndarray) -> np.ndarray:
        out = np.empty((len(keys), self.settings.num_hashes), dtype=self.settings.dtype)
        shards = (keys >> U64(32)).astype(np.int64)
        positions = (keys & U64(0xFFFFFFFF)).astype(np.int64)
        for shard in np.unique(shards):
            mask = shards == shard
            out[mask] = self._map(int(shard))[positions[mask]]
        return out

    def release(self) -> None:
        self.maps.clear()


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of equal MinHash values, row by row: an unbiased estimate of the Jaccard similarity."""
    return (a == b).mean(axis=1)


ALL_PAIRS = 64
VERIFY_BATCH = 512  # pairs verified between two `release()`s of the signature maps


def _group_edges(group: np.ndarray, store: SignatureStore, threshold: float, all_pairs: int = ALL_PAIRS,
                 max_leaders: int = 256, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Verified edges inside one band group (estimated Jaccard >= threshold). Groups of up to `all_pairs`
    documents: every pair, as datasketch's LSH query gives. Larger groups (mostly exact copies), in
    document order: each member is joined to every earlier "leader" it resembles, one that resembles none
    becomes a leader; exact-duplicate groups have one leader, so the cost is linear, and signatures are
    read `block` at a time."""
    if len(group) <= all_pairs:
        sigs = store.get(group)
        similar = (sigs[:, None, :] == sigs[None, :, :]).mean(axis=2) >= threshold
        first, second = np.nonzero(np.triu(similar, k=1))
        return group[first], group[second]
    leaders, leader_sigs, us, vs = [0], None, [], []
    for start in range(0, len(group), block):
        sigs = store.get(group[start:start + block])
        if leader_sigs is None:
            leader_sigs = sigs[:1]
        for offset in range(1 if start == 0 else 0, len(sigs)):
            hits = np.flatnonzero((leader_sigs == sigs[offset]).mean(axis=1) >= threshold)
            if hits.size:
                us.extend(group[np.asarray(leaders)[hits]].tolist())
                vs.extend([int(group[start + offset])] * hits.size)
            elif len(leaders) < max_leaders:
                leaders.append(start + offset)
                leader_sigs = np.vstack([leader_sigs, sigs[offset:offset + 1]])
    return np.array(us, dtype=U64), np.array(vs, dtype=U64)


def verified_pairs(folder: str, store: SignatureStore, threshold: float, step: PipelineStep):
    """The candidate pairs whose estimated Jaccard (all num_hashes values, not only the band that matched)
    reaches `threshold`, as chunks of (key, key) arrays. Banding alone lets a third of the pairs at
    J = 0.65 through; with 112 values the estimate's standard deviation is about 0.04, so the cut-off is
    much sharper. Threshold 0: every candidate, as datatrove's own clustering does."""
    for u, v, groups in _candidate_groups(folder):
        if threshold <= 0:
            step.stat_update("candidate_pairs", value=len(u) + sum(len(g) - 1 for g in groups))
            u = np.concatenate([u] + [g[:-1] for g in groups])
            v = np.concatenate([v] + [g[1:] for g in groups])
        else:
            compared = sum(len(g) * (len(g) - 1) // 2 if len(g) <= ALL_PAIRS else len(g) - 1 for g in groups)
            step.stat_update("candidate_pairs", value=len(u) + compared)
            if len(u):  # in slices: two signatures of 112 values per pair would otherwise be ~1 kB a pair
                keep = []
                for i in range(0, len(u), VERIFY_BATCH):
                    keep.append(estimated_jaccard(store.get(u[i:i + VERIFY_BATCH]),
                                                  store.get(v[i:i + VERIFY_BATCH])) >= threshold)
                    store.release()
                keep = np.concatenate(keep)
                u, v = u[keep], v[keep]
            edges = []
            for n, group in enumerate(groups):
                edges.append(_group_edges(group, store, threshold))
                if n % 64 == 63:
                    store.release()
            store.release()
            u = np.concatenate([u] + [a for a, _ in edges])
            v = np.concatenate([v] + [b for _, b in edges])
        step.stat_update("verified_pairs", value=len(u))
        yield u, v


def _report(step: PipelineStep, work_dir: str, settings: MinhashSettings, engine: str, summary: dict,
            verify_threshold: float) -> None:
    # the duplicate threshold is the verification's; with verification off, banding alone decides
    threshold = verify_threshold if verify_threshold > 0 else settings.threshold
    for name, value in summary.items():
        if value and isinstance(value, int):
            step.stat_update(name, value=value)
    step.stat_update("jaccard_threshold_permille", value=round(1000 * threshold))
    summary = {"engine": engine, **asdict(settings), "jaccard_threshold": round(threshold, 4),
               "banding_threshold": round(settings.threshold, 4), **summary}
    with open(os.path.join(work_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    logger.info(f"minhash_dedup: {settings.num_buckets} bands x {settings.hashes_per_bucket} rows of "
                f"{settings.n_grams}-gram MinHash, verified on {settings.num_hashes} values at Jaccard "
                f"{threshold:.3f}: {summary['near_duplicates']} near-duplicates in {summary['clusters']} clusters")


class GlobalMinhashStep(PipelineStep):
    """A one-task step between the document phases, working on the stage's signature files."""

    type = "🫂 - DEDUP"

    def __init__(self, work_dir: str, settings: MinhashSettings, verify_threshold: float = 0.0,
                 buffer_mb: int = 64):
        super().__init__()
        self.work_dir = work_dir
        self.settings = settings
        self.verify_threshold = verify_threshold
        self.buffer_mb = buffer_mb  # the clustering's memory budget (see `webmill.dedup.components`)


class ClusterDuplicates(GlobalMinhashStep):
    """Step 3 (one task): clusters from the candidate pairs; the smallest (input file, position) survives."""

    name = "🎯 minhash clusters"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        dups = os.path.join(self.work_dir, "dups")
        os.makedirs(dups, exist_ok=True)
        store = SignatureStore(os.path.join(self.work_dir, "full"), self.settings)
        with self.track_time():
            pairs = verified_pairs(dups, store, self.verify_threshold, self)
            summary = cluster(pairs, self.work_dir, self.buffer_mb << 20)
        _report(self, self.work_dir, self.settings, "datatrove", summary, self.verify_threshold)


# --------------------------------------------------------------------------------------------------------
# engine "datasketch": the same signatures in datasketch's in-memory MinHashLSH, for small corpora

class SketchLSH(GlobalMinhashStep):
    """One task, instead of the band merge: every signature (`full/`, written by `MinhashSignatures` with
    `bands=False`) goes into one datasketch `MinHashLSH` with the same bands × rows, input files in order;
    each document's candidates are the earlier documents sharing a band, verified like the disk engine's.
    Memory: the whole index (signatures and band tables) — for small corpora. With the same signatures
    both engines find the same clusters; `bench/dedup.py` also compares datasketch's own hashing."""

    name = "🎯 datasketch LSH"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from datasketch import LeanMinHash, MinHashLSH

        s = self.settings
        scheme = "affine32" if s.hash_bits == 32 else "affine64"
        folder = os.path.join(self.work_dir, "full")
        os.makedirs(folder, exist_ok=True)
        missing = np.iinfo(s.dtype).max
        with self.track_time():
            lsh = MinHashLSH(num_perm=s.num_hashes, params=(s.num_buckets, s.hashes_per_bucket))
            us, vs, sketches = [], [], {}
            for name in sorted(f for f in os.listdir(folder) if f.endswith(".sig")):
                shard = int(name.removesuffix(".sig"))
                signatures = np.fromfile(os.path.join(folder, name), dtype=s.dtype).reshape(-1, s.num_hashes)
                for pos, values in enumerate(signatures):
                    if (values == missing).all():  # fewer than n_grams words
                        continue
                    key = doc_key(shard, pos)
                    sketch = LeanMinHash(seed=s.seed, hashvalues=values, scheme=scheme)
                    for other in sorted(lsh.query(sketch)):
                        self.stat_update("candidate_pairs")
                        if sketch.jaccard(sketches[other]) >= self.verify_threshold:
                            us.append(other)
                            vs.append(key)
                    lsh.insert(key, sketch, check_duplication=False)
                    sketches[key] = sketch
            self.stat_update("verified_pairs", value=len(us))
            pairs = [(np.array(us, dtype=U64), np.array(vs, dtype=U64))]
            summary = cluster(pairs, self.work_dir, self.buffer_mb << 20)
        _report(self, self.work_dir, s, "datasketch", summary, self.verify_threshold)


# --------------------------------------------------------------------------------------------------------
# step 4: filter

class _ClusterFile:
    """Streams one input file's cluster records in position order."""

    def __init__(self, path: str, chunk_rows: int = 1 << 14):
        self.records = _stream_records(path, CLUSTER_RECORD, chunk_rows) if os.path.exists(path) else iter(())
        self.current = next(self.records, None)

    def lookup(self, pos: int) -> tuple[int, int] | None:
        while self.current is not None and self.current[0] < pos:
            self.current = next(self.records, None)
        if self.current is not None and self.current[0] == pos:
            return self.current[2], self.current[1]
        return None


class ApplyClusters(ExclusionMixin, PipelineStep):
    """Step 4 (every task): `minhash_cluster_id` / `minhash_cluster_size` on every document; documents
    that are not their cluster's survivor are dropped as `near_duplicate`."""

    type = "🫂 - DEDUP"
    name = "🎯 minhash filter"

    def __init__(self, work_dir: str, exclusion_writer=None):
        super().__init__()
        self.work_dir = work_dir
        self.exclusion_writer = exclusion_writer

    def run(self, data, rank: int = 0, world_size: int = 1):
        positions, clusters = ShardPositions(), None
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                shard, pos, new_shard = positions.next(doc)
                if new_shard:
                    clusters = _ClusterFile(os.path.join(self.work_dir, "clusters", f"{shard:06d}.bin"))
                key = doc_key(shard, pos)
                cluster, size = clusters.lookup(pos) or (key, 1)
                doc.metadata["minhash_cluster_id"] = cluster
                doc.metadata["minhash_cluster_size"] = size
                if cluster != key:
                    self.drop(doc, "near_duplicate", rank)
                else:
                    yield from self.keep(doc)
