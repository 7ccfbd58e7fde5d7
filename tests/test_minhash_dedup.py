"""MinHash near-dedup on the labelled near-duplicate set (real text from the sample pages, see
scripts/make_neardup_set.py): duplicates removed, hard negatives kept, one survivor per cluster, the same
Parquet for any task count, both engines agreeing, bounded signature memory."""

import gzip
import json
import os
import random
import sys
import tracemalloc

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from datatrove.data import Document

from conftest import REPO, assert_accounts_add_up, read_json, run, stage, write_recipe

sys.path.insert(0, str(REPO / "scripts"))
import make_neardup_set as neardup  # noqa: E402

from webmill.dedup.common import ASCII_WHITESPACE, UNICODE_WHITESPACE, normalized_batch  # noqa: E402
from webmill.dedup.datatrove_minhash import MinhashDedupBuckets  # noqa: E402
from webmill.dedup.components import CLUSTER_RECORD, cluster, connected_components  # noqa: E402
from webmill.dedup.minhash import (  # noqa: E402
    FindCandidates,
    MinHasher,
    MinhashSettings,
    MinhashSignatures,
    ngram_strings,
    normalized_words,
    shingle_hashes,
)

THRESHOLD = 0.72  # the stage's default duplicate threshold (verify_threshold)
FILES = 4


@pytest.fixture(scope="module")
def labelled():
    docs = neardup.build_set()
    return docs, neardup.true_clusters([d["text"] for d in docs], THRESHOLD)


def write_inputs(folder, docs, files=FILES):
    """Contiguous chunks, so corpus order = list order; returns each document's key (file index, position)."""
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-len(docs) // files)
    keys = {}
    for f in range(files):
        with gzip.open(folder / f"part-{f}.jsonl.gz", "wt") as out:
            for pos, doc in enumerate(docs[f * per:(f + 1) * per]):
                out.write(json.dumps({"id": doc["id"], "text": doc["text"]}) + "\n")
                keys[doc["id"]] = (f << 32) | pos
    return keys


def run_dedup(tmp, name, inputs, params=None, tasks=2, **kwargs):
    out = tmp / name
    recipe = write_recipe(tmp / f"{name}.yaml", [{"minhash_dedup": params or {}}], [inputs], out / "corpus",
                          executor={"tasks": tasks, "workers": 2})
    with_exclusions(recipe, out / "excluded")
    return out, run(recipe, **kwargs)


def with_exclusions(recipe, folder):
    raw = yaml.safe_load(recipe.read_text())
    raw["output"]["exclusions"] = str(folder)
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))


def all_documents(out) -> dict:
    """id -> (kept, cluster id, cluster size) for kept (Parquet) and dropped (exclusions) documents."""
    table = pq.read_table(out / "corpus" / "data")
    docs = {i: (True, c, s) for i, c, s in zip(table.column("id").to_pylist(),
                                                table.column("minhash_cluster_id").to_pylist(),
                                                table.column("minhash_cluster_size").to_pylist())}
    for path in (out / "excluded").rglob("*.jsonl.gz"):
        with gzip.open(path, "rt") as f:
            for line in f:
                row = json.loads(line)
                assert row["metadata"]["filter_reason"] == "near_duplicate"
                meta = row["metadata"]
                docs[row["id"]] = (False, meta["minhash_cluster_id"], meta["minhash_cluster_size"])
    return docs


@pytest.fixture(scope="module")
def engines(labelled, tmp_path_factory):
    docs, _truth = labelled
    tmp = tmp_path_factory.mktemp("minhash")
    keys = write_inputs(tmp / "in", docs)
    results = {}
    for engine in ("datatrove", "datasketch"):
        out, report = run_dedup(tmp, engine, tmp / "in", {"engine": engine}, tasks=4)
        results[engine] = (out, report, all_documents(out))
    return tmp, keys, results


def test_duplicates_above_threshold_are_removed_and_negatives_kept(labelled, engines):
    docs, truth = labelled
    _tmp, _keys, results = engines
    out, report, found = results["datatrove"]
    assert_accounts_add_up(report)
    assert len(found) == len(docs)
    predicted = [found[d["id"]][1] for d in docs]
    score = neardup.scores(predicted, truth)
    print(f"\nlabelled set ({len(docs)} documents, threshold {THRESHOLD:.3f}): {score}")
    assert score["pairs"]["precision"] >= 0.95 and score["removed"]["precision"] >= 0.95
    assert score["pairs"]["f1"] >= 0.95 and score["removed"]["f1"] >= 0.95
    assert stage(report, "minhash_dedup")["dropped"] == {"near_duplicate": score["removed"]["predicted"]}

    cluster = {d["id"]: found[d["id"]][1] for d in docs}
    originals = {d["family"]: d["id"] for d in docs if d["kind"] == "original"}
    variant_of = {d["id"]: originals[d["family"]] for d in docs}
    clear = [d for d in docs if d["kind"] not in ("original", "negative") and d["jaccard"] >= 0.85]
    caught = sum(cluster[d["id"]] == cluster[variant_of[d["id"]]] for d in clear)
    assert len(clear) > 150 and caught >= 0.98 * len(clear)  # clear duplicates: (almost) all caught
    far = [d for d in docs if d["kind"] == "edit_10"]  # Jaccard ~0.45 with their original
    assert all(cluster[d["id"]] != cluster[variant_of[d["id"]]] for d in far)
    for d in (d for d in docs if d["kind"] == "negative"):  # same boilerplate, another article: kept apart
        boilerplate = f"f{d['family']:03d}-boilerplate"
        assert found[d["id"]][0] and cluster[d["id"]] != cluster[boilerplate]


def test_one_survivor_per_cluster_and_no_cluster_without_one(engines):
    _tmp, keys, results = engines
    for engine, (out, _report, found) in results.items():
        members = {}
        for doc_id, (kept, cluster, size) in found.items():
            members.setdefault(cluster, []).append((keys[doc_id], kept, size))
        for cluster, group in members.items():
            survivors = [key for key, kept, _ in group if kept]
            assert survivors == [cluster], (engine, cluster, group)  # exactly one: the smallest key
            assert cluster == min(key for key, _, _ in group)
            assert all(size == len(group) for _, _, size in group), (engine, group)
        schema = pq.read_schema(next((out / "corpus" / "data").glob("*.parquet")))
        assert str(schema.field("minhash_cluster_id").type) == "int64"
        assert str(schema.field("minhash_cluster_size").type) == "int32"


def test_threshold_is_reported(engines):
    _tmp, _keys, results = engines
    for engine, (out, report, _found) in results.items():
        counters = stage(report, "minhash_dedup")["counters"]
        assert counters["jaccard_threshold_permille"] == 720  # verify_threshold
        assert counters["verified_pairs"] <= counters["candidate_pairs"]
        summary = read_json(out / "corpus" / "work" / "01_minhash_dedup" / "summary.json")
        assert summary["engine"] == engine and summary["jaccard_threshold"] == pytest.approx(0.72)
        assert summary["banding_threshold"] == pytest.approx(0.6070, abs=1e-4)  # (1/20)^(1/6)
        assert summary["num_buckets"] * summary["hashes_per_bucket"] <= summary["signature_hashes"] == 256


def test_engines_agree_on_the_labelled_set(labelled, engines):
    """Same signatures, two candidate searches (band files merged on disk vs datasketch's MinHashLSH in
    memory): the same clusters."""
    docs, _truth = labelled
    _tmp, _keys, results = engines
    ours = [results["datatrove"][2][d["id"]] for d in docs]
    theirs = [results["datasketch"][2][d["id"]] for d in docs]
    decisions = sum(a[0] != b[0] for a, b in zip(ours, theirs)) / len(docs)
    pairs = neardup.disagreement([a[1] for a in ours], [b[1] for b in theirs])
    print(f"\nengines: kept/dropped differs for {decisions:.1%} of documents, duplicate pairs differ: {pairs:.1%}")
    assert decisions == 0 and pairs == 0
    assert ours == theirs


def test_identical_parquet_for_1_and_4_tasks_and_after_a_rerun(labelled, engines):
    docs, _truth = labelled
    tmp, _keys, results = engines
    out4 = results["datatrove"][0]

    def corpus(out):
        return {p.name: p.read_bytes() for p in sorted((out / "corpus" / "data").glob("*.parquet"))}

    out1, report1 = run_dedup(tmp, "one_task", tmp / "in", {"engine": "datatrove"}, tasks=1)
    assert corpus(out1) == corpus(out4) and len(corpus(out4)) == FILES
    _out, again = run_dedup(tmp, "datatrove", tmp / "in", {"engine": "datatrove"}, tasks=4, overwrite=True)
    assert corpus(out4) == corpus(out1)
    assert again["stages"][1]["dropped"] == report1["stages"][1]["dropped"]
    _out, resumed = run_dedup(tmp, "datatrove", tmp / "in", {"engine": "datatrove"}, tasks=4)  # all complete
    assert resumed["stages"] == again["stages"] and corpus(out4) == corpus(out1)


def test_short_documents_are_singletons(tmp_path):
    rows = [{"id": f"s{i}", "text": "Too short to shingle."} for i in range(3)]
    rows.append({"id": "long", "text": " ".join(f"word{i}" for i in range(30))})
    (tmp_path / "in").mkdir()
    with gzip.open(tmp_path / "in" / "a.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    out, report = run_dedup(tmp_path, "short", tmp_path / "in", tasks=1)
    assert_accounts_add_up(report)
    found = all_documents(out)
    assert all(kept and size == 1 for kept, _c, size in found.values())
    assert sorted(c for _k, c, _s in found.values()) == [0, 1, 2, 3]  # own key: file 0, positions 0..3
    assert stage(report, "minhash_dedup")["counters"]["too_few_words"] == 3


# -- building blocks ---------------------------------------------------------------------------------------

def test_normalisation_matches_datatrove_simplify_text():
    from datatrove.utils.text import simplify_text

    sources = neardup.read_sources()
    texts = [s["text"] for s in sources["originals"] + sources["negatives"]]
    texts += ["Ça coûte 3,50 € — déjà vu? Ångström… naïve café", "ＡＢＣ １２３ fullwidth",
              "tab\there\u00a0nbsp"]
    for text in texts:
        assert normalized_words(text) == simplify_text(text).split()


def test_batched_byte_normalisation_gives_the_same_words():
    """`normalized_batch` (bytes, by table, many texts at once) == `normalized_words` joined, on real
    pages, 116 languages of UDHR, and random strings of the characters where the rules interact."""
    assert {c for c in map(chr, range(0x110000)) if c.isspace()} == set(ASCII_WHITESPACE + UNICODE_WHITESPACE)
    sources = neardup.read_sources()
    texts = [s["text"] for s in sources["originals"] + sources["negatives"]]
    texts += [p.read_text(encoding="utf-8") for p in sorted((REPO / "tests" / "data" / "udhr").glob("*.txt"))]
    texts += ["", "   ", "1.2.3 4,5,6 7..8 9.", "\t\nx\u3000y\xa0 z\x1c", "ÀÉ 1٫5 ١٢٣ x", "a\x00b 1\x002",
              "Ça coûte 3,50 € — déjà vu? Ångström… naïve café", "ＡＢＣ １２３ fullwidth", "\ud800 lone"]
    rng = random.Random(3)
    alphabet = "0123456789.,aB -é٫١\n’\x00\u037e"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16))) for _ in range(3000)]

    def expected(text):
        return " ".join(normalized_words(text)).encode("utf-8", "surrogatepass")

    for start in range(0, len(texts), 7):  # small batches: every kind of neighbour
        batch = texts[start:start + 7]
        assert normalized_batch(batch) == [expected(t) for t in batch], batch


def test_signatures_do_not_depend_on_the_batch():
    sources = neardup.read_sources()
    texts = [s["text"] for s in sources["originals"][:20]] + ["four words only here", ""]
    hasher = MinHasher(MinhashSettings())
    together, present = hasher.signatures(texts)
    assert present.tolist() == [True] * 20 + [False, False]
    for text, row in zip(texts[:20], together):
        assert np.array_equal(hasher.signature(text), row)
    assert hasher.signature("four words only here") is None


def test_one_permutation_signatures_estimate_jaccard():
    """Agreement of two signatures ≈ the true 5-gram Jaccard (one-permutation hashing with densification
    is unbiased; 256 values: sd ≈ 0.03), also for short texts where most bins borrow."""
    sources = neardup.read_sources()
    hasher = MinHasher(MinhashSettings())
    rng = random.Random(5)
    errors = []
    for item in sources["originals"][:30]:
        words = item["text"].split()
        for keep_words in (len(words), 12):  # whole article; a short text (8 shingles, 248 empty bins)
            a = words[:keep_words]
            b = [w if rng.random() > 0.05 else "edited" for w in a]
            grams_a, grams_b = (set(ngram_strings(normalized_words(" ".join(w)), 5)) for w in (a, b))
            estimate = float((hasher.signature(" ".join(a)) == hasher.signature(" ".join(b))).mean())
            errors.append(estimate - len(grams_a & grams_b) / len(grams_a | grams_b))
    assert abs(float(np.mean(errors))) < 0.03 and float(np.abs(errors).max()) < 0.2, errors


def test_numpy_band_merges_write_what_datatroves_merge_writes(tmp_path, labelled):
    docs, _ = labelled
    settings = MinhashSettings()
    step = MinhashSignatures(str(tmp_path), settings)
    for shard in range(3):
        part = [d for i, d in enumerate(docs) if i % 3 == shard]
        stream = (Document(text=d["text"], id=d["id"], metadata={"shard_index": shard}) for d in part)
        for _ in step.run(stream):
            pass
    outputs = {}
    for mode in ("one sort", "rounds", "datatrove"):
        for band in range(settings.num_buckets):
            step = FindCandidates(str(tmp_path), settings, buffer_mb=64)
            if mode == "rounds":  # no memory to spare: 64 records of each file at a time, many rounds
                step.buffer_mb = 0
                step.run(None, band, settings.num_buckets)
            elif mode == "datatrove":  # datatrove's own heap merge on the same files
                MinhashDedupBuckets.run(step, None, band, settings.num_buckets)
            else:
                step.run(None, band, settings.num_buckets)
        folder = tmp_path / "dups"
        outputs[mode] = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
        folder.rename(tmp_path / f"dups_{mode}")
    assert outputs["one sort"] == outputs["datatrove"] == outputs["rounds"]
    assert sum(len(b) for b in outputs["datatrove"].values()) > 1000  # the labelled set has candidates


def test_band_merge_in_rounds_with_long_runs_of_one_value(tmp_path):
    """Files whose chunks hold nothing but one band value (copies of a page) still merge like one sort."""
    settings = MinhashSettings()
    dtype = settings.band_dtype()
    rng = np.random.default_rng(5)
    folder = tmp_path / "sigs" / "bucket_000"
    folder.mkdir(parents=True)
    for file in range(3):
        records = np.zeros(700, dtype=dtype)
        records["h0"] = np.where(rng.random(700) < 0.5, 7, rng.integers(0, 20, 700))  # half: one value
        records["h1"] = rng.integers(0, 2, 700)
        records["doc"] = np.arange(700)
        records = np.sort(records, order=[f"h{i}" for i in range(6)] + ["doc"])
        records.tofile(folder / f"{file:06d}.minhash.sig")
    names = sorted(f.name for f in folder.iterdir())
    step = FindCandidates(str(tmp_path), settings)
    step._merge_in_memory(str(folder), names, str(tmp_path / "one_sort"))
    step._merge_in_rounds(str(folder), names, str(tmp_path / "rounds"), 64)
    assert (tmp_path / "rounds").read_bytes() == (tmp_path / "one_sort").read_bytes()
    assert (tmp_path / "rounds").stat().st_size > 16 * 1000


def test_shingle_hashes_identify_equal_shingles():
    sources = neardup.read_sources()
    seen = {}
    for item in sources["originals"]:
        words = normalized_words(item["text"])
        for gram, value in zip(ngram_strings(words, 5), shingle_hashes(words, 5).tolist()):
            assert seen.setdefault(gram, value) == value
    assert len(set(seen.values())) == len(seen) > 10_000  # no collisions among real shingles
    assert shingle_hashes(["only", "four", "words", "here"], 5).size == 0


def test_connected_components_pick_the_smallest_key():
    rng = random.Random(7)
    keys = sorted(rng.sample(range(1 << 40), 400))
    pairs = [(rng.choice(keys), rng.choice(keys)) for _ in range(300)]
    parent = {k: k for k in keys}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    u = np.array([a for a, _ in pairs], dtype=np.uint64)
    v = np.array([b for _, b in pairs], dtype=np.uint64)
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        chunks = [(u[:100], v[:100]), (u[100:], v[100:])]
        nodes, labels, passes = connected_components(chunks, os.path.join(scratch, "pairs"))
    expected = {k: find(k) for k in {x for pair in pairs for x in pair}}
    assert {int(n): int(nodes[label]) for n, label in zip(nodes, labels)} == expected
    assert passes >= 2


def duplicate_graph(seed: int, pairs: int, files: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Pairs among documents of a few input files: random pairs, long chains (paths of 200 documents,
    the worst case for label propagation) and stars (exact copies of one page)."""
    rng = np.random.default_rng(seed)
    keys = np.unique((rng.integers(0, files, 4 * pairs).astype(np.uint64) << np.uint64(32))
                     | rng.integers(0, 1 << 20, 4 * pairs).astype(np.uint64))
    rng.shuffle(keys)
    u, v = [rng.choice(keys, pairs // 2)], [rng.choice(keys, pairs // 2)]
    chain = keys[: pairs // 4]
    u.append(chain[:-1][np.arange(len(chain) - 1) % 200 != 199])
    v.append(chain[1:][np.arange(len(chain) - 1) % 200 != 199])
    hub = keys[pairs // 4: pairs // 4 + pairs // 4]
    u.append(np.repeat(hub[::50], 49)[: len(hub)])
    v.append(hub[: len(np.repeat(hub[::50], 49))])
    return np.concatenate(u), np.concatenate(v)


def cluster_files(work_dir) -> dict:
    return {f"{d}/{f}": open(os.path.join(work_dir, d, f), "rb").read()
            for d in ("clusters", "remove") for f in sorted(os.listdir(os.path.join(work_dir, d)))}


def test_clusters_on_disk_equal_clusters_in_memory(tmp_path):
    u, v = duplicate_graph(3, 20_000)
    chunks = [(u[i:i + 7000], v[i:i + 7000]) for i in range(0, len(u), 7000)]
    in_memory = cluster(chunks, str(tmp_path / "memory"), budget_bytes=64 << 20)
    on_disk = cluster(chunks, str(tmp_path / "disk"), budget_bytes=100_000)
    assert in_memory.pop("clustering") == "in memory" and on_disk.pop("clustering").startswith("on disk, 20")
    assert in_memory.pop("label_passes") >= 2 and on_disk.pop("label_passes") >= 2
    assert on_disk == in_memory and on_disk["largest_cluster"] >= 200
    assert cluster_files(tmp_path / "disk") == cluster_files(tmp_path / "memory")
    assert set(os.listdir(tmp_path / "disk")) == {"clusters", "remove"}  # no scratch files left behind

    nodes, labels, _ = connected_components(chunks, str(tmp_path / "check"))  # the survivor: smallest key
    records = {}
    for name in os.listdir(tmp_path / "disk" / "clusters"):
        shard = int(name.removesuffix(".bin"))
        for pos, size, root in np.fromfile(tmp_path / "disk" / "clusters" / name, dtype=CLUSTER_RECORD).tolist():
            records[(shard << 32) | pos] = (root, size)
    sizes = np.bincount(labels)
    assert records == {int(n): (int(nodes[label]), int(sizes[label])) for n, label in zip(nodes, labels)}


def test_clustering_memory_is_bounded_by_configuration(tmp_path):
    """Four times the pairs (in four times the input files), the same peak memory: the budget sets it,
    and the documents in clusters of one input file (written sorted at the end), not the corpus."""
    peaks = {}
    for pairs in (20_000, 80_000):
        u, v = duplicate_graph(pairs, pairs, files=pairs // 4000)
        chunks = [(u[i:i + 5000].copy(), v[i:i + 5000].copy()) for i in range(0, len(u), 5000)]
        tracemalloc.start()
        summary = cluster(iter(chunks), str(tmp_path / str(pairs)), budget_bytes=500_000)
        peaks[pairs] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert summary["clustering"].startswith("on disk")
    assert peaks[80_000] < 1.3 * peaks[20_000] and peaks[80_000] < 2_000_000, peaks


def synthetic_docs(count: int, vocabulary: list[str]):
    from datatrove.data import Document

    rng = random.Random(count)
    for i in range(count):
        yield Document(text=" ".join(rng.choices(vocabulary, k=60)), id=str(i), metadata={"shard_index": "000000"})


def signature_files(work_dir):
    return {os.path.relpath(os.path.join(d, f), work_dir): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(work_dir) for f in files}


def test_signature_memory_is_bounded_by_configuration(tmp_path):
    """Signatures of one input file are sorted in runs of `buffer_mb`; peak memory does not grow with
    the number of documents, and the merged runs equal an in-memory sort."""
    vocabulary = sorted({w for s in neardup.read_sources()["originals"] for w in s["text"].split()})
    settings = MinhashSettings()
    peaks = {}
    for _ in MinhashSignatures(str(tmp_path / "warm-up"), settings).run(synthetic_docs(100, vocabulary)):
        pass  # one-off allocations (hash tables, imports) are not what is measured
    for count in (2000, 8000):
        step = MinhashSignatures(str(tmp_path / f"small{count}"), settings, buffer_mb=1)
        step.buffer_rows = 500  # below 1 MB: both corpora are sorted in several runs
        tracemalloc.start()
        for _ in step.run(synthetic_docs(count, vocabulary)):
            pass
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[8000] < 1.2 * peaks[2000], peaks  # 4x the documents, the same memory
    whole = MinhashSignatures(str(tmp_path / "big"), settings, buffer_mb=64)
    for _ in whole.run(synthetic_docs(8000, vocabulary)):
        pass
    assert signature_files(tmp_path / "small8000") == signature_files(tmp_path / "big")
