"""Near-duplicate removal with MinHash LSH (the algorithm and its files: `webmill.dedup.minhash`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from datatrove.utils.logging import logger

from webmill.dedup import minhash  # a module reference: webmill.dedup.minhash may be importing this package
from webmill.stages.registry import Barrier, BuildContext, GlobalJob, param, register
from webmill.validate import ParamError


@dataclass
class MinhashDedupParams:
    engine: Literal["datatrove", "datasketch"] = param(
        "datatrove", "datatrove: band files merged on disk (any corpus size); datasketch: the same signatures "
                     "in an in-memory MinHashLSH in one process (small corpora)")
    n_grams: int = param(5, "words per shingle (after lower-casing, digits → 0, punctuation and accents removed)")
    num_buckets: int = param(20, "LSH bands: two documents are candidates when all values of one band agree")
    hashes_per_bucket: int = param(6, "MinHash values per band; candidates rise around (1/bands)^(1/rows)")
    signature_hashes: int = param(
        256, "MinHash values per document (at least bands × rows); candidates are verified on all of them")
    hash_bits: Literal[32, 64] = param(32, "width of each MinHash value")
    seed: int = param(1, "seed of the hash permutations")
    verify_threshold: float | None = param(
        0.72, "the duplicate threshold: candidates whose estimated Jaccard (share of equal MinHash values) is "
              "lower are not duplicates; null: the banding threshold (1/bands)^(1/rows); 0: keep every "
              "candidate (datatrove's behaviour)")
    buffer_mb: int = param(64, "memory per task for signatures, band merges and clustering before they go to disk")

    def check(self):
        for key in ("n_grams", "num_buckets", "hashes_per_bucket", "signature_hashes", "buffer_mb"):
            if getattr(self, key) < 1:
                raise ParamError(key, "must be at least 1")
        if self.verify_threshold is not None and not 0.0 <= self.verify_threshold <= 1.0:
            raise ParamError("verify_threshold", "must be between 0 and 1")

    def settings(self) -> minhash.MinhashSettings:
        return minhash.MinhashSettings(n_grams=self.n_grams, num_buckets=self.num_buckets,
                                       hashes_per_bucket=self.hashes_per_bucket, hash_bits=self.hash_bits,
                                       seed=self.seed, signature_hashes=self.signature_hashes)


@register("minhash_dedup", MinhashDedupParams,
          "drop near-duplicate documents (MinHash LSH); one survivor per cluster: the first by input order",
          columns={"minhash_cluster_id": "int64", "minhash_cluster_size": "int32"})
def build_minhash_dedup(params: MinhashDedupParams, ctx: BuildContext):
    settings = params.settings()
    b, r = settings.num_buckets, settings.hashes_per_bucket
    curve = ", ".join(f"{minhash.candidate_probability(j, b, r):.2f} at {j}" for j in (0.5, 0.6, 0.7, 0.8, 0.9))
    verify = settings.threshold if params.verify_threshold is None else params.verify_threshold
    logger.info(f"minhash_dedup: {b} bands x {r} rows of {settings.n_grams}-gram MinHash: candidates around "
                f"(1/{b})^(1/{r}) = {settings.threshold:.3f} (probability {curve}); duplicates at estimated "
                f"Jaccard >= {verify:.3f} over {settings.num_hashes} values")
    if params.engine == "datasketch":
        signatures = minhash.MinhashSignatures(ctx.work_dir, settings, buffer_mb=params.buffer_mb, bands=False)
        jobs = [GlobalJob("lsh", [minhash.SketchLSH(ctx.work_dir, settings, verify, params.buffer_mb)], tasks=1)]
    else:
        signatures = minhash.MinhashSignatures(ctx.work_dir, settings, buffer_mb=params.buffer_mb)
        candidates = minhash.FindCandidates(ctx.work_dir, settings, buffer_mb=params.buffer_mb)
        clusters = minhash.ClusterDuplicates(ctx.work_dir, settings, verify, params.buffer_mb)
        jobs = [GlobalJob("buckets", [candidates], tasks=b), GlobalJob("clusters", [clusters], tasks=1)]
    return [signatures, Barrier(jobs), minhash.ApplyClusters(ctx.work_dir, ctx.exclusion_writer("minhash_dedup"))]
