"""The labelled near-duplicate set of the MinHash tests and `bench/dedup.py`, from the shipped sample pages.

    python scripts/make_neardup_set.py            # rewrites tests/data/neardup/sources.jsonl.gz (~2 min)
    python scripts/make_neardup_set.py --summary  # prints the set built from the stored sources

Two parts, so the tests need not extract HTML:

1. `extract_sources()` (slow, run by hand): the real pages of data/samples/warc read with webmill's
   `ArchiveReader`, their main text extracted with webmill's `extract` step (trafilatura), and each page's
   own boilerplate lines (the text of its <nav>, <header>, <footer> and <aside> elements). Articles
   are picked deterministically (by a hash of the URL), 150-700 words, no two with a 5-gram Jaccard above
   0.1. Stored in tests/data/neardup/sources.jsonl.gz.
2. `build_set()` (fast, deterministic, run by the tests): for each original article a family of
   variants with controlled edits — real boilerplate lines of another site added around it, 1/3/5/10 %
   of its words edited (substituted, deleted or inserted), truncated to 90 % / 60 %, paragraphs
   shuffled, boilerplate plus 2 % edits — and one hard negative: a different article wrapped in the same
   boilerplate. Every document records its true 5-gram Jaccard with its original (for the negative:
   with the original's boilerplate variant), computed on the exact shingle sets.

The truth for scoring is `true_clusters`: connected components of "exact Jaccard >= threshold" over all
pairs of documents, with the first document of each component its survivor — the rule the dedup stage
applies to MinHash estimates.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = REPO / "tests" / "data" / "neardup" / "sources.jsonl.gz"
KINDS = ["original", "boilerplate", "edit_01", "edit_03", "edit_05", "edit_10", "truncate_90", "truncate_60",
         "shuffle", "boilerplate_edit_02"]


# -- 1. sources --------------------------------------------------------------------------------------------

def _boilerplate_lines(html: str) -> list[str]:
    import lxml.html

    try:
        tree = lxml.html.fromstring(html)
    except Exception:  # lxml refuses some pages (empty, encoding declarations): they have no boilerplate then
        return []
    lines, seen = [], set()
    for element in tree.xpath("//nav|//header|//footer|//aside"):
        for chunk in element.itertext():
            line = " ".join(chunk.split())
            if 2 <= len(line.split()) <= 15 and line not in seen:
                seen.add(line)
                lines.append(line)
    return lines


def extract_sources(originals: int = 60, negatives: int = 60, templates: int = 30) -> dict:
    sys.path.insert(0, str(REPO / "src"))
    from webmill.dedup.minhash import ngram_strings, normalized_words
    from webmill.stages.archive_reader import ArchiveReader
    from webmill.stages.extract import Extract, ExtractParams

    folder = REPO / "data" / "samples" / "warc"
    reader = ArchiveReader(str(folder))
    extract = Extract(ExtractParams(timeout_s=2.0))

    def pages():
        for name in sorted(os.listdir(folder)):
            for doc in reader.read_file(name):
                doc.metadata["boilerplate"] = _boilerplate_lines(doc.text)
                yield doc

    articles, blocks = [], []
    for doc in extract.run(pages()):
        url = doc.metadata.get("url") or doc.id
        order = hashlib.blake2b(url.encode(), digest_size=8).hexdigest()
        lines = [" ".join(line.split()) for line in doc.text.split("\n") if line.strip()]
        words = sum(len(line.split()) for line in lines)
        if 150 <= words <= 700 and len(lines) >= 4:
            articles.append((order, url, "\n".join(lines)))
        bp = doc.metadata["boilerplate"]
        if len(bp) >= 12:
            blocks.append((order, url, bp[:40]))
    articles.sort()
    blocks.sort()
    chosen, shingles = [], []
    for _order, url, text in articles:
        grams = set(ngram_strings(normalized_words(text), 5))
        if all(len(grams & other) / len(grams | other) <= 0.1 for other in shingles):
            chosen.append({"url": url, "text": text})
            shingles.append(grams)
        if len(chosen) == originals + negatives:
            break
    return {"originals": chosen[:originals], "negatives": chosen[originals:],
            "templates": [{"url": url, "lines": lines} for _order, url, lines in blocks[:templates]]}


def write_sources(sources: dict, path: Path = SOURCES) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as raw:
        for part in ("originals", "negatives", "templates"):
            for item in sources[part]:
                raw.write((json.dumps({"part": part, **item}, ensure_ascii=False, sort_keys=True) + "\n").encode())


def read_sources(path: Path = SOURCES) -> dict:
    sources = {"originals": [], "negatives": [], "templates": []}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            sources[item.pop("part")].append(item)
    return sources


# -- 2. the labelled set -----------------------------------------------------------------------------------

def shingles(text: str, n: int = 5) -> set[str]:
    from webmill.dedup.minhash import ngram_strings, normalized_words

    return set(ngram_strings(normalized_words(text), n))


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def edit_words(text: str, rate: float, rng: random.Random, vocabulary: list[str]) -> str:
    """Edit `rate` of the words: 60 % substituted by a real word from other articles, 20 % deleted,
    20 % followed by an inserted word. Line breaks are kept."""
    lines = [line.split() for line in text.split("\n")]
    slots = [(i, j) for i, words in enumerate(lines) for j in range(len(words))]
    chosen = rng.sample(slots, max(1, round(rate * len(slots))))
    for i, j in sorted(chosen, reverse=True):  # from the end, so earlier positions stay valid
        roll = rng.random()
        if roll < 0.6:
            lines[i][j] = rng.choice(vocabulary)
        elif roll < 0.8 and len(lines[i]) > 1:
            del lines[i][j]
        else:
            lines[i].insert(j + 1, rng.choice(vocabulary))
    return "\n".join(" ".join(words) for words in lines)


def truncate(text: str, keep: float) -> str:
    lines = text.split("\n")
    budget = round(keep * sum(len(line.split()) for line in lines))
    kept = []
    for line in lines:
        words = line.split()
        if budget <= 0:
            break
        kept.append(" ".join(words[:budget]))
        budget -= len(words)
    return "\n".join(kept)


def shuffle_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    order = list(range(len(lines)))
    while order == sorted(order):
        rng.shuffle(order)
    return "\n".join(lines[i] for i in order)


def wrap(text: str, block: list[str], article_words: int, share: float = 0.15) -> str:
    """Real boilerplate lines around the text: header lines then footer lines, about `share` of the
    article's word count in all."""
    taken, words = [], 0
    for line in block:
        if words >= share * article_words:
            break
        taken.append(line)
        words += len(line.split())
    half = (len(taken) + 1) // 2
    return "\n".join(taken[:half] + [text] + taken[half:])


def build_set(sources: dict | None = None, seed: int = 0) -> list[dict]:
    """The labelled documents, in corpus order: {"id", "family", "kind", "text", "jaccard"}."""
    sources = sources or read_sources()
    vocabulary = sorted({w for item in sources["negatives"] for w in item["text"].split() if w.isalpha()})
    docs = []
    for family, original in enumerate(sources["originals"]):
        rng = random.Random(f"{seed}:{family}")
        text = original["text"]
        n_words = len(text.split())
        block = sources["templates"][family % len(sources["templates"])]["lines"]
        variants = {
            "original": text,
            "boilerplate": wrap(text, block, n_words),
            "edit_01": edit_words(text, 0.01, rng, vocabulary),
            "edit_03": edit_words(text, 0.03, rng, vocabulary),
            "edit_05": edit_words(text, 0.05, rng, vocabulary),
            "edit_10": edit_words(text, 0.10, rng, vocabulary),
            "truncate_90": truncate(text, 0.9),
            "truncate_60": truncate(text, 0.6),
            "shuffle": shuffle_lines(text, rng),
            "boilerplate_edit_02": wrap(edit_words(text, 0.02, rng, vocabulary), block, n_words),
        }
        base = shingles(text)
        for kind in KINDS:
            docs.append({"id": f"f{family:03d}-{kind}", "family": family, "kind": kind, "text": variants[kind],
                         "jaccard": round(jaccard(base, shingles(variants[kind])), 4)})
        negative = sources["negatives"][family % len(sources["negatives"])]["text"]
        negative = wrap(negative, block, n_words)
        docs.append({"id": f"f{family:03d}-negative", "family": family, "kind": "negative", "text": negative,
                     "jaccard": round(jaccard(shingles(variants["boilerplate"]), shingles(negative)), 4)})
    random.Random(seed).shuffle(docs)  # originals are not always first in their family
    return docs


# -- truth and scores --------------------------------------------------------------------------------------

def true_clusters(texts: list[str], threshold: float, n: int = 5) -> list[int]:
    """For each document the index of the first document of its component in the graph of pairs whose
    exact n-gram Jaccard is >= threshold."""
    sets = [shingles(t, n) for t in texts]
    postings = defaultdict(list)
    for i, grams in enumerate(sets):
        for g in grams:
            postings[g].append(i)
    candidates = set()
    for members in postings.values():
        if len(members) > 1:
            candidates.update((a, b) for k, a in enumerate(members) for b in members[k + 1:])
    parent = list(range(len(texts)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in sorted(candidates):
        if sets[a] and sets[b] and jaccard(sets[a], sets[b]) >= threshold:
            ra, rb = find(a), find(b)
            parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(len(texts))]


def same_cluster_pairs(labels: list) -> set[tuple[int, int]]:
    groups = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    return {(a, b) for members in groups.values() for k, a in enumerate(members) for b in members[k + 1:]}


def scores(predicted: list, truth: list) -> dict:
    """Pairwise precision/recall/F1 of "in the same cluster", and the same for "removed"."""
    p, t = same_cluster_pairs(predicted), same_cluster_pairs(truth)
    first_p = {label: i for i, label in reversed(list(enumerate(predicted)))}
    first_t = {label: i for i, label in reversed(list(enumerate(truth)))}
    removed_p = {i for i, label in enumerate(predicted) if first_p[label] != i}
    removed_t = {i for i, label in enumerate(truth) if first_t[label] != i}

    def prf(pred, true):
        tp = len(pred & true)
        precision = tp / len(pred) if pred else 1.0
        recall = tp / len(true) if true else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                "predicted": len(pred), "true": len(true)}

    return {"pairs": prf(p, t), "removed": prf(removed_p, removed_t)}


def disagreement(a: list, b: list) -> float:
    """Share of the duplicate pairs (of either clustering) on which two clusterings disagree."""
    pa, pb = same_cluster_pairs(a), same_cluster_pairs(b)
    union = pa | pb
    return round(len(pa ^ pb) / len(union), 4) if union else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--summary", action="store_true", help="only print the set built from the stored sources")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    if not args.summary:
        write_sources(extract_sources())
        print(f"wrote {SOURCES.relative_to(REPO)} ({SOURCES.stat().st_size} bytes)")
    docs = build_set()
    by_kind = defaultdict(list)
    for doc in docs:
        by_kind[doc["kind"]].append(doc["jaccard"])
    print(f"{len(docs)} documents in {len(by_kind['original'])} families")
    for kind in KINDS + ["negative"]:
        values = sorted(by_kind[kind])
        print(f"  {kind:<20} Jaccard min {values[0]:.2f}  median {values[len(values) // 2]:.2f}  max {values[-1]:.2f}")


if __name__ == "__main__":
    main()
