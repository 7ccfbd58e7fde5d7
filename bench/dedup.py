"""MinHash near-dedup: quality on the labelled set, speed and memory against datasketch's MinHashLSH.

    python bench/dedup.py                                   # full run (~15 min on 2 cores), bench/results/dedup.json
    python bench/dedup.py --sizes 10000 --datasketch-max 10000   # quick
    python bench/dedup.py --parts clustering                 # one part; the others in the results stay

1. Quality: the labelled near-duplicate set (scripts/make_neardup_set.py: 60 real articles, 9 controlled
   variants each, 60 hard negatives) through the `minhash_dedup` stage (default parameters, both engines)
   and through plain datasketch (its own MinHash — SHA-1, affine permutations — and MinHashLSH with the
   same bands and permutations, no verification, as it is usually run). Truth: exact 5-gram Jaccard >= the
   stage's duplicate threshold (`verify_threshold`, 0.72), transitively (see `make_neardup_set.true_clusters`). Scores: pairs in the same cluster, and
   documents removed.
2. Speed and memory: synthetic corpora of 10k, 100k, 1M documents built deterministically from real
   paragraphs (the sample pages' articles and boilerplate, wikitext-2): 4-10 paragraphs each, 10 % of the
   documents near-copies of an earlier one (2 % of words edited). Stored as JSONL files of 10k documents.
   - webmill: the stage's four steps run as in a recipe with 2 workers — signatures (2 processes, half of
     the input files each), band merge (one task per band over 2 processes), clusters (1 process), filter
     (2 processes) — each process a fresh interpreter reporting its wall time and peak RSS.
   - datasketch: one process reads the same files, builds MinHash + MinHashLSH (query, then insert) and
     clusters the candidate pairs; it cannot use a second core without a second index.
   docs/s = documents / wall seconds of all steps (reading the JSONL included on both sides).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import platform
import random
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
WORK = ROOT / "bench" / "work" / "dedup"
RESULTS = ROOT / "bench" / "results" / "dedup.json"
FILE_DOCS = 10_000
WORKERS = 2
VERIFY = 0.72  # the minhash_dedup stage's default verify_threshold


# -- synthetic corpora from real paragraphs ----------------------------------------------------------------

def paragraph_pool() -> list[str]:
    import make_neardup_set as neardup

    sources = neardup.read_sources()
    pool = [line for item in sources["originals"] + sources["negatives"] for line in item["text"].split("\n")]
    pool += [line for item in sources["templates"] for line in item["lines"]]
    with gzip.open(ROOT / "data" / "samples" / "text" / "wikitext-2-valid.txt.gz", "rt", encoding="utf-8") as f:
        pool += [line.strip() for line in f if len(line.split()) >= 20 and not line.strip().startswith("=")]
    return [p for p in pool if len(p.split()) >= 5]


def make_doc(index: int, pool: list[str], vocabulary: list[str]) -> str:
    rng = random.Random(index * 2654435761 % (1 << 32))
    if index > 0 and rng.random() < 0.1:  # a near-copy of an earlier document
        source = make_doc(rng.randrange(index), pool, vocabulary)
        words = source.split(" ")
        for _ in range(max(1, len(words) // 50)):
            words[rng.randrange(len(words))] = rng.choice(vocabulary)
        return " ".join(words)
    return "\n".join(rng.sample(pool, rng.randint(4, 10)))


def write_file(args) -> None:
    path, start, count = args
    pool = paragraph_pool()
    vocabulary = sorted({w for p in pool[:2000] for w in p.split() if w.isalpha()})
    with open(str(path) + ".tmp", "w", encoding="utf-8") as out:
        for i in range(start, start + count):
            out.write(json.dumps({"id": str(i), "text": make_doc(i, pool, vocabulary)}, ensure_ascii=False) + "\n")
    os.replace(str(path) + ".tmp", path)


def make_corpus(size: int) -> list[Path]:
    folder = WORK / f"corpus_{size}"
    folder.mkdir(parents=True, exist_ok=True)
    per = min(FILE_DOCS, max(1, size // 4))
    jobs = [(folder / f"{n:06d}.jsonl", start, min(per, size - start))
            for n, start in enumerate(range(0, size, per))]
    missing = [job for job in jobs if not job[0].exists()]
    if missing:
        with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
            pool.map(write_file, missing)
    return [job[0] for job in jobs]


def read_docs(path: Path, shard: int):
    from datatrove.data import Document

    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            yield Document(text=row["text"], id=row["id"], metadata={"shard_index": f"{shard:06d}"})


# -- measured steps (each in a fresh process) --------------------------------------------------------------

def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its interpreter (VmHWM; `ru_maxrss` would
    include the parent's memory copied before exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def step_signatures(args):
    from webmill.dedup.minhash import MinhashSettings, MinhashSignatures

    work, files = args
    started = time.perf_counter()
    step = MinhashSignatures(work, MinhashSettings())
    for shard, path in files:
        for _ in step.run(read_docs(Path(path), shard)):
            pass
    return time.perf_counter() - started, peak_rss_mb()


def step_buckets(args):
    from webmill.dedup.minhash import FindCandidates, MinhashSettings

    work, bands = args
    started = time.perf_counter()
    settings = MinhashSettings()
    for band in bands:
        FindCandidates(work, settings).run(None, band, settings.num_buckets)
    return time.perf_counter() - started, peak_rss_mb()


def step_clusters(work):
    from webmill.dedup.minhash import ClusterDuplicates, MinhashSettings

    started = time.perf_counter()
    settings = MinhashSettings()
    step = ClusterDuplicates(work, settings, VERIFY)
    step.run()
    summary = json.loads((Path(work) / "summary.json").read_text())
    return time.perf_counter() - started, peak_rss_mb(), summary


def step_filter(args):
    from webmill.dedup.minhash import ApplyClusters

    work, files = args
    started = time.perf_counter()
    kept = 0
    for shard, path in files:
        kept += sum(1 for _ in ApplyClusters(work).run(read_docs(Path(path), shard)))
    return time.perf_counter() - started, peak_rss_mb(), kept


def shingle_bytes(texts: list[str], n: int = 5) -> list[list[bytes]]:
    """datasketch's input: the word n-grams of each text as UTF-8, from the same normaliser as webmill's
    (`normalized_batch`, 256 texts a call), so the comparison is about hashing and indexing."""
    from webmill.dedup.common import normalized_batch

    result = []
    for start in range(0, len(texts), 256):
        for text in normalized_batch(texts[start:start + 256]):
            words = text.split(b" ") if text else []
            result.append([b" ".join(words[i:i + n]) for i in range(len(words) - n + 1)])
    return result


def run_datasketch(files):
    """Plain datasketch, as usually run: MinHash(SHA-1 of each shingle) + MinHashLSH query/insert."""
    from datasketch import MinHash, MinHashLSH

    from webmill.dedup.minhash import MinhashSettings

    started = time.perf_counter()
    s = MinhashSettings()
    lsh = MinHashLSH(num_perm=s.num_hashes, params=(s.num_buckets, s.hashes_per_bucket))
    template = MinHash(num_perm=s.num_hashes, seed=1)
    parent = {}

    def find(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    removed_keys = 0
    for shard, path in files:
        docs = read_docs(Path(path), shard)
        chunks = iter(lambda: [doc.text for _, doc in zip(range(256), docs)], [])
        for pos, shingles in enumerate(s for chunk in chunks for s in shingle_bytes(chunk)):
            if not shingles:
                continue
            sketch = MinHash(num_perm=s.num_hashes, seed=1, permutations=template.permutations, scheme="affine32")
            sketch.update_batch(shingles)
            key = (shard << 32) | pos
            for other in lsh.query(sketch):
                a, b = find(other), find(key)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            lsh.insert(key, sketch, check_duplication=False)
    removed_keys = sum(1 for k in parent if find(k) != k)
    return time.perf_counter() - started, peak_rss_mb(), removed_keys


def in_processes(function, jobs):
    """Run jobs in fresh interpreters, at most WORKERS at once: (wall seconds including process start and
    imports, the jobs' results — each starting with its own seconds of work)."""
    with multiprocessing.get_context("spawn").Pool(min(WORKERS, len(jobs)), maxtasksperchild=1) as pool:
        started = time.perf_counter()
        results = pool.map(function, jobs, chunksize=1)
        return time.perf_counter() - started, results


def record(wall, runs) -> dict:
    return {"wall_s": round(wall, 2), "work_s": round(max(r[0] for r in runs), 2),
            "peak_rss_mb": max(r[1] for r in runs)}


def bench_size(size: int, with_datasketch: bool) -> dict:
    from webmill.dedup.minhash import MinhashSettings

    files = make_corpus(size)
    indexed = [(i, str(p)) for i, p in enumerate(files)]
    work = WORK / f"work_{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    halves = [indexed[w::WORKERS] for w in range(WORKERS)]
    result = {"documents": size, "input_files": len(files), "steps": {}}
    wall, runs = in_processes(step_signatures, [(str(work), h) for h in halves if h])
    result["steps"]["signatures"] = record(wall, runs)
    bands = [list(range(w, MinhashSettings().num_buckets, WORKERS)) for w in range(WORKERS)]
    wall, runs = in_processes(step_buckets, [(str(work), b) for b in bands])
    result["steps"]["band_merge"] = record(wall, runs)
    wall, runs = in_processes(step_clusters, [str(work)])
    result["steps"]["clusters"] = record(wall, runs)
    result["clusters"] = runs[0][2]
    wall, runs = in_processes(step_filter, [(str(work), h) for h in halves if h])
    result["steps"]["filter"] = record(wall, runs)
    kept = sum(r[2] for r in runs)
    wall = sum(s["wall_s"] for s in result["steps"].values())
    work_s = sum(s["work_s"] for s in result["steps"].values())
    result["webmill"] = {"wall_s": round(wall, 2), "docs_per_s": round(size / wall),
                         "docs_per_s_without_process_start": round(size / work_s), "removed": size - kept}
    if with_datasketch:
        wall, runs = in_processes(run_datasketch, [indexed])
        seconds, rss, removed = runs[0]
        result["datasketch"] = {"wall_s": round(wall, 2), "docs_per_s": round(size / wall),
                                "docs_per_s_without_process_start": round(size / seconds),
                                "peak_rss_mb": rss, "removed": removed}
        result["speedup"] = round(result["webmill"]["docs_per_s"] / result["datasketch"]["docs_per_s"], 2)
        result["speedup_without_process_start"] = round(
            result["webmill"]["docs_per_s_without_process_start"]
            / result["datasketch"]["docs_per_s_without_process_start"], 2)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result), flush=True)
    return result


# -- quality on the labelled set ---------------------------------------------------------------------------

def stage_clusters(docs, engine: str, tmp: Path, params: dict | None = None) -> list[int]:
    """Cluster id of each document through the recipe runner (4 input files, 2 tasks)."""
    import pyarrow.parquet as pq
    import yaml

    from webmill.recipe import load_recipe
    from webmill.runner import run_recipe

    inputs = tmp / "in"
    if not inputs.exists():
        inputs.mkdir(parents=True)
        per = -(-len(docs) // 4)
        for f in range(4):
            with gzip.open(inputs / f"part-{f}.jsonl.gz", "wt") as out:
                out.writelines(json.dumps({"id": d["id"], "text": d["text"]}) + "\n"
                               for d in docs[f * per:(f + 1) * per])
    out = tmp / f"out_{engine}_{len(params or {})}"
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "bench", "input": {"paths": [str(inputs)]},
        "output": {"dir": str(out), "exclusions": str(out / "excluded")},
        "executor": {"tasks": 2, "workers": 2}, "stages": [{"minhash_dedup": {"engine": engine, **(params or {})}}]}))
    run_recipe(load_recipe(recipe), overwrite=True, progress=False)
    table = pq.read_table(out / "data")
    cluster = dict(zip(table.column("id").to_pylist(), table.column("minhash_cluster_id").to_pylist()))
    for path in (out / "excluded").rglob("*.jsonl.gz"):
        with gzip.open(path, "rt") as f:
            for line in f:
                row = json.loads(line)
                cluster[row["id"]] = row["metadata"]["minhash_cluster_id"]
    return [cluster[d["id"]] for d in docs]


def datasketch_clusters(docs) -> list[int]:
    from datasketch import MinHash, MinHashLSH

    from webmill.dedup.minhash import MinhashSettings

    s = MinhashSettings()
    lsh = MinHashLSH(num_perm=s.num_hashes, params=(s.num_buckets, s.hashes_per_bucket))
    parent = list(range(len(docs)))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for i, shingles in enumerate(shingle_bytes([doc["text"] for doc in docs])):
        if not shingles:
            continue
        sketch = MinHash(num_perm=s.num_hashes, seed=1)
        sketch.update_batch(shingles)
        for other in lsh.query(sketch):
            a, b = find(other), find(i)
            parent[max(a, b)] = min(a, b)
        lsh.insert(i, sketch)
    return [find(i) for i in range(len(docs))]


def detection_by_jaccard(docs, clusters) -> list[dict]:
    """Share of variants put in their original's cluster, by true Jaccard with the original."""
    originals = {d["family"]: i for i, d in enumerate(docs) if d["kind"] == "original"}
    bins = [(0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.75), (0.75, 0.8), (0.8, 0.9), (0.9, 1.01)]
    rows = []
    for lo, hi in bins:
        members = [i for i, d in enumerate(docs)
                   if d["kind"] not in ("original", "negative") and lo <= d["jaccard"] < hi]
        if members:
            hit = sum(clusters[i] == clusters[originals[docs[i]["family"]]] for i in members)
            rows.append({"jaccard": f"[{lo:.2f}, {min(hi, 1.0):.2f})", "variants": len(members),
                         "detected": round(hit / len(members), 3)})
    return rows


def bench_quality() -> dict:
    import make_neardup_set as neardup

    from webmill.dedup.minhash import MinhashSettings, candidate_probability

    settings = MinhashSettings()
    docs = neardup.build_set()
    truth = neardup.true_clusters([d["text"] for d in docs], VERIFY)
    tmp = WORK / "labelled"
    shutil.rmtree(tmp, ignore_errors=True)
    runs = {
        "webmill (engine datatrove)": stage_clusters(docs, "datatrove", tmp),
        "webmill (engine datasketch)": stage_clusters(docs, "datasketch", tmp),
        "webmill without verification": stage_clusters(docs, "datatrove", tmp, {"verify_threshold": 0.0}),
        "datasketch MinHashLSH": datasketch_clusters(docs),
    }
    ours = runs["webmill (engine datatrove)"]
    result = {
        "documents": len(docs), "families": len({d["family"] for d in docs}),
        "threshold": VERIFY, "bands": settings.num_buckets, "rows": settings.hashes_per_bucket,
        "signature_hashes": settings.num_hashes, "banding_threshold": round(settings.threshold, 4),
        "candidate_probability": {str(j): round(candidate_probability(j, settings.num_buckets,
                                                                      settings.hashes_per_bucket), 3)
                                  for j in (0.5, 0.6, 0.7, 0.72, 0.8, 0.9)},
        "scores": {name: neardup.scores(c, truth) for name, c in runs.items()},
        "detection_by_true_jaccard": {name: detection_by_jaccard(docs, c) for name, c in runs.items()},
        "disagreement_with_webmill": {
            name: {"pairs": neardup.disagreement(ours, c),
                   "kept_or_dropped": round(sum(a != b for a, b in zip(_removed(ours), _removed(c))) / len(docs), 4)}
            for name, c in runs.items() if c is not ours},
    }
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result["scores"], indent=1), flush=True)
    return result


def _removed(clusters) -> list[bool]:
    first = {}
    return [first.setdefault(c, i) != i for i, c in enumerate(clusters)]


def signature_microbench() -> dict:
    """Per-document cost of a signature on the real article texts, one process: webmill (a batch of texts
    at a time, as the stage does), datasketch (same normaliser), datatrove's own `MinhashDedupSignature`
    (spaCy words, SHA-1 shingles)."""
    import make_neardup_set as neardup
    from datasketch import MinHash

    from webmill.dedup.datatrove_minhash import MinhashConfig
    from webmill.dedup.minhash import MinHasher, MinhashSettings

    sources = neardup.read_sources()
    texts = [s["text"] for s in sources["originals"] + sources["negatives"]]
    hasher = MinHasher(MinhashSettings())

    def timed(function, repeat=3, per_text=True):
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            if per_text:
                for text in texts:
                    function(text)
            else:
                function(texts)
            best = min(best, time.perf_counter() - started)
        return round(len(texts) / best)

    def sketches(batch):
        for shingles in shingle_bytes(batch):
            MinHash(num_perm=hasher.settings.num_hashes, seed=1).update_batch(shingles)

    result = {"texts": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts)),
              "webmill_docs_per_s": timed(hasher.signatures, per_text=False),
              "datasketch_docs_per_s": timed(sketches, per_text=False)}
    try:
        from datatrove.utils.hashing import HashConfig

        from webmill.dedup import datatrove_minhash

        stock = datatrove_minhash.MinhashDedupSignature(
            str(WORK / "stock"), MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1")))
        result["datatrove_docs_per_s"] = timed(lambda t: stock.get_signature(stock.get_shingles(t)), repeat=1)
    except Exception as err:  # noqa: BLE001 - reported, not fatal
        result["datatrove_error"] = f"{type(err).__name__}: {err}"
    return result


# -- clustering beyond memory ------------------------------------------------------------------------------

def write_duplicate_graph(path: Path, pairs: int, seed: int = 0) -> None:
    """Verified pairs as the cluster step meets them, in input-file order: clusters of Zipf-distributed
    sizes (most of two or three documents, a few of thousands), each either a star (copies of one page,
    joined to the first) or a chain (each version joined to the previous); members spread over input
    files of 10k documents. Written as raw (u, v) uint64 pairs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(2.0, pairs) + 1, 100_000)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes - 1), pairs) + 1]
    documents = int(sizes.sum()) * 3  # a third of the corpus has a duplicate
    members = rng.permutation(documents)[: sizes.sum()].astype(np.uint64)
    keys = ((members // np.uint64(10_000)) << np.uint64(32)) | (members % np.uint64(10_000))
    ends = np.cumsum(sizes)
    starts = ends - sizes
    star = rng.random(len(sizes)) < 0.5
    owner = np.repeat(np.arange(len(sizes)), sizes - 1)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(sizes - 1) - (sizes - 1), sizes - 1)
    u_index = np.where(star[owner], starts[owner], starts[owner] + offset)
    v_index = starts[owner] + offset + 1
    uv = np.stack([keys[u_index], keys[v_index]], axis=1)[:pairs]
    uv.tofile(path)


def step_cluster_graph(args):
    import numpy as np

    from webmill.dedup.components import cluster

    path, work, budget_mb = args

    def chunks():
        with open(path, "rb") as f:
            while chunk := f.read(100_000 * 16):
                uv = np.frombuffer(chunk, dtype=np.uint64).reshape(-1, 2)
                yield uv[:, 0].copy(), uv[:, 1].copy()

    started = time.perf_counter()
    summary = cluster(chunks(), work, budget_mb << 20)
    return time.perf_counter() - started, peak_rss_mb(), summary


def bench_clustering(sizes=(1_000_000, 4_000_000, 16_000_000), budget_mb: int = 64) -> list[dict]:
    """The cluster step alone on graphs of growing size: in memory (budget large enough) and on disk
    (the default 64 MB budget, which the larger graphs exceed), each in a fresh process."""
    rows = []
    for pairs in sizes:
        graph = WORK / f"graph_{pairs}.bin"
        write_duplicate_graph(graph, pairs)
        row = {"pairs": pairs}
        for mode, budget in (("in_memory", 1 << 16), ("budget", budget_mb)):
            work = WORK / f"components_{pairs}_{mode}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            _, ((seconds, rss, summary),) = in_processes(step_cluster_graph, [(str(graph), str(work), budget)])
            row[mode] = {"budget_mb": budget, "seconds": round(seconds, 1), "peak_rss_mb": rss,
                         "clustering": summary["clustering"], "label_passes": summary["label_passes"],
                         "documents_in_clusters": summary["documents_in_clusters"],
                         "clusters": summary["clusters"], "largest_cluster": summary["largest_cluster"]}
            shutil.rmtree(work, ignore_errors=True)
        graph.unlink()
        assert {k: v for k, v in row["in_memory"].items() if k in ("documents_in_clusters", "clusters")} == \
               {k: v for k, v in row["budget"].items() if k in ("documents_in_clusters", "clusters")}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--datasketch-max", type=int, default=100_000,
                        help="largest corpus datasketch is run on (it runs at ~600 docs/s in one process)")
    parser.add_argument("--keep-corpora", action="store_true", help="keep the generated JSONL files")
    parser.add_argument("--parts", default="microbench,quality,scale,clustering",
                        help="what to run; the other parts of an existing results file are kept")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "workers": WORKERS}
    if "microbench" in parts:
        report["signature_microbench"] = signature_microbench()
        print(json.dumps(report["signature_microbench"]), flush=True)
    if "quality" in parts:
        report["quality"] = bench_quality()
    if "scale" in parts:
        report["scale"] = [bench_size(int(s), int(s) <= args.datasketch_max) for s in args.sizes.split(",")]
    if "clustering" in parts:
        report["clustering"] = bench_clustering()
    report["bench_wall_s"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    if not args.keep_corpora:
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"wrote {RESULTS.relative_to(ROOT)} in {report['bench_wall_s']} s")


if __name__ == "__main__":
    main()
