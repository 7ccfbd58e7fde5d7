"""Clusters of near-duplicates: connected components of the verified pairs, within a memory budget.

Documents are keys (input index × 2^32 + position); each cluster's survivor is its smallest key. What a
clustering writes, per input file: `clusters/<index>.bin` (position, cluster size, survivor's key) for
each document in a cluster of two or more, and `remove/<index>.remove` (sorted positions of the others).

Two ways to the same files, chosen by the number of pairs:

* in memory (`connected_components`), while the documents that have a duplicate fit in the budget:
  16 bytes each, labels hooked and flattened by pointer jumping in a few passes over the pairs on disk;
* on disk (`_components_on_disk`) beyond that: every table (pairs, proposals, labels) is spread over
  files by a hash of its key, and each step reads one part at a time, so memory is set by the budget,
  not by the corpus. A round maps every node to its smallest neighbour, follows those pointers to their
  end, and rewrites the pairs between the labels found; at least half of the labels disappear in each
  round, so a few rounds suffice. The labels of all rounds are then composed, last round first.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable, Iterator

import numpy as np

from webmill.dedup.common import empty_folder, write_atomically

U64 = np.uint64
CLUSTER_RECORD = np.dtype([("pos", "<u4"), ("size", "<u4"), ("cluster", "<i8")])
INDEX_PAIR = np.dtype([("u", "<i8"), ("v", "<i8")])
# a pair of keys, or a table row (key, value): both kinds of table are spread by their field "a"
EDGE = np.dtype([("a", "<u8"), ("b", "<u8")])
MEMBER = np.dtype([("node", "<u8"), ("size", "<u4"), ("root", "<u8")])
CHUNK_ROWS = 1 << 20
# bytes per pair the in-memory way needs at most (two keys, their labels, sorting space), and the bytes
# per pair one part of the disk way holds at once (two proposals per pair, sorting space)
IN_MEMORY_BYTES_PER_PAIR = 96
ON_DISK_BYTES_PER_PAIR = 96


def cluster(pair_chunks: Iterable[tuple[np.ndarray, np.ndarray]], work_dir: str, budget_bytes: int) -> dict:
    """Write the cluster files of the verified pairs (chunks of key arrays u, v); returns a summary."""
    scratch = os.path.join(work_dir, "components")
    empty_folder(scratch)
    spooled = os.path.join(scratch, "pairs.bin")
    pairs = 0
    with open(spooled, "wb") as out:
        for u, v in pair_chunks:
            records = np.empty(len(u), dtype=EDGE)
            records["a"], records["b"] = u, v
            out.write(records[records["a"] != records["b"]].tobytes())
            pairs += len(u)
    cluster_dir, remove_dir = os.path.join(work_dir, "clusters"), os.path.join(work_dir, "remove")
    empty_folder(cluster_dir)
    empty_folder(remove_dir)
    if pairs * IN_MEMORY_BYTES_PER_PAIR <= budget_bytes:
        chunks = ((c["a"], c["b"]) for c in _read_chunks(spooled))
        nodes, labels, passes = connected_components(chunks, os.path.join(scratch, "pairs.idx"))
        summary = write_clusters(work_dir, nodes, labels)
        summary.update(label_passes=passes, clustering="in memory")
    else:
        parts = math.ceil(pairs * ON_DISK_BYTES_PER_PAIR / budget_bytes)
        chunk_rows = max(1024, budget_bytes // (8 * EDGE.itemsize))
        summary = _components_on_disk(spooled, scratch, parts, chunk_rows, cluster_dir, remove_dir)
        summary.update(clustering=f"on disk, {parts} parts")
    shutil.rmtree(scratch, ignore_errors=True)
    return summary


def _read_chunks(path: str, chunk_rows: int = CHUNK_ROWS, dtype: np.dtype = EDGE) -> Iterator[np.ndarray]:
    with open(path, "rb") as f:
        while chunk := f.read(chunk_rows * dtype.itemsize):
            yield np.frombuffer(chunk, dtype=dtype).copy()


def _write_shard(cluster_dir: str, remove_dir: str, shard: int, nodes, sizes, roots) -> None:
    """One input file's records; `nodes` sorted."""
    records = np.empty(len(nodes), dtype=CLUSTER_RECORD)
    records["pos"] = (nodes & U64(0xFFFFFFFF)).astype(np.uint32)
    records["size"] = sizes
    records["cluster"] = roots.astype(np.int64)
    write_atomically(os.path.join(cluster_dir, f"{shard:06d}.bin"), records.tofile)
    removed = records["pos"][roots != nodes]
    write_atomically(os.path.join(remove_dir, f"{shard:06d}.remove"), removed.astype("<u4").tofile)


# --------------------------------------------------------------------------------------------------------
# in memory


def connected_components(pair_chunks, scratch: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Components of the graph given as chunks of (key, key) arrays.

    Returns (nodes, labels, passes): `nodes` are the sorted keys of the documents in at least one pair,
    `labels[i]` is the index of the smallest node of node i's component. Memory: 16 bytes per such
    document (keys and labels) plus one chunk of pairs; documents in no pair cost nothing. The pairs are
    rewritten once as node indices to `scratch` and re-read from disk on each pass. A pass hooks the
    label of each side of every pair to the smaller one, then pointer jumping flattens the labels; passes
    repeat until no pair joins two labels (a few passes: the labels converge like union-find).
    """
    nodes = np.empty(0, dtype=U64)
    raw = scratch + ".keys"
    with open(raw, "wb") as out:
        for u, v in pair_chunks:
            if len(u):
                nodes = np.union1d(nodes, np.concatenate([u, v]))
                out.write(np.stack([u, v], axis=1).astype(U64).tobytes())
    with open(raw, "rb") as f, open(scratch, "wb") as out:
        while chunk := f.read(CHUNK_ROWS * 16):
            uv = np.frombuffer(chunk, dtype=U64).reshape(-1, 2)
            out.write(np.searchsorted(nodes, uv).astype(np.int64).tobytes())
    os.remove(raw)

    labels = np.arange(len(nodes), dtype=np.int64)
    passes = 0
    while len(nodes):
        passes += 1
        joined = False
        with open(scratch, "rb") as f:
            while chunk := f.read(CHUNK_ROWS * INDEX_PAIR.itemsize):
                pairs = np.frombuffer(chunk, dtype=np.int64).reshape(-1, 2)
                lu, lv = labels[pairs[:, 0]], labels[pairs[:, 1]]
                differ = lu != lv
                if not differ.any():
                    continue
                joined = True
                lu, lv = lu[differ], lv[differ]
                low = np.minimum(lu, lv)
                for target in (lu, lv, pairs[differ, 0], pairs[differ, 1]):
                    np.minimum.at(labels, target, low)
        while True:  # pointer jumping: every label points at its component's current root
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if not joined:
            break
    return nodes, labels, passes


def write_clusters(work_dir: str, nodes: np.ndarray, labels: np.ndarray) -> dict:
    """The cluster files of `connected_components`' result (the folders exist and are empty)."""
    if not len(nodes):
        return {"documents_in_clusters": 0, "clusters": 0, "near_duplicates": 0, "largest_cluster": 0}
    sizes = np.bincount(labels, minlength=len(nodes))
    survivors = nodes[labels]
    shards = (nodes >> U64(32)).astype(np.int64)
    cuts = np.flatnonzero(np.diff(shards)) + 1
    for start, end in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(nodes)]])):
        _write_shard(os.path.join(work_dir, "clusters"), os.path.join(work_dir, "remove"), int(shards[start]),
                     nodes[start:end], sizes[labels[start:end]], survivors[start:end])
    clusters = int(np.count_nonzero(sizes))
    return {"documents_in_clusters": int(len(nodes)), "clusters": clusters,
            "near_duplicates": int(len(nodes)) - clusters, "largest_cluster": int(sizes.max())}


# on disk
#
# Two kinds of files, both spread over `parts` files by a hash of their first field: *tables* with one
# row per key (node → label, root → size), whose parts are balanced, loaded whole and sorted by key; and
# *streams* of records (pairs, requests), read a chunk at a time, so a node with a million neighbours or a
# cluster of a million copies costs chunks, not memory.


class _Spread:
    """Records spread over `parts` files by a hash of their field "a"."""

    def __init__(self, folder: str, name: str, parts: int, chunk_rows: int, dtype: np.dtype = EDGE):
        self.parts, self.chunk_rows, self.dtype = parts, chunk_rows, dtype
        self.paths = [os.path.join(folder, f"{name}.{p:05d}") for p in range(parts)]
        for path in self.paths:
            open(path, "wb").close()

    def part_of(self, keys: np.ndarray) -> np.ndarray:
        return ((keys * U64(0x9E3779B97F4A7C15)) >> U64(32)) % U64(self.parts)

    def add(self, records: np.ndarray, parts: np.ndarray | None = None) -> None:
        """Append records to the parts of their keys (or to the given parts)."""
        part = self.part_of(records["a"]) if parts is None else parts.astype(U64)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self.parts + 1, dtype=U64))
        for p in np.flatnonzero(np.diff(bounds)):
            with open(self.paths[p], "ab") as out:
                out.write(records[order[bounds[p]:bounds[p + 1]]].tobytes())

    def load(self, part: int) -> np.ndarray:
        return np.fromfile(self.paths[part], dtype=self.dtype)

    def chunks(self, part: int) -> Iterator[np.ndarray]:
        with open(self.paths[part], "rb") as f:
            while chunk := f.read(self.chunk_rows * self.dtype.itemsize):
                yield np.frombuffer(chunk, dtype=self.dtype).copy()

    def replace(self, part: int, records: np.ndarray) -> None:
        records.tofile(self.paths[part])

    def sibling(self, folder: str, name: str) -> _Spread:
        return _Spread(folder, name, self.parts, self.chunk_rows)

    def delete(self) -> None:
        for path in self.paths:
            os.remove(path)


def _rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    records = np.empty(len(a), dtype=EDGE)
    records["a"], records["b"] = a, b
    return records


def _look_up(table: np.ndarray, keys: np.ndarray, missing_is_identity: bool = False) -> np.ndarray:
    """table["b"] where table["a"] == key (a table part, sorted); a key not in the table maps to itself
    where `missing_is_identity`, and is a bug otherwise."""
    if not len(table):
        assert missing_is_identity or not len(keys)
        return keys.copy()
    index = np.minimum(np.searchsorted(table["a"], keys), len(table) - 1)
    found = table["a"][index] == keys
    assert missing_is_identity or found.all()
    return np.where(found, table["b"][index], keys)


def _first_per_key(records: np.ndarray, reduce) -> np.ndarray:
    """One row per key: `reduce` (np.minimum or np.add) of the values of its rows, sorted by key."""
    if not len(records):
        return records
    records = np.sort(records, order="a")
    starts = np.flatnonzero(np.r_[True, records["a"][1:] != records["a"][:-1]])
    return _rows(records["a"][starts], reduce.reduceat(records["b"], starts))


def _table_of_stream(stream: _Spread, part: int, reduce) -> np.ndarray:
    """A table part from a stream part: one row per key, its values reduced chunk after chunk."""
    table = np.empty(0, dtype=EDGE)
    for chunk in stream.chunks(part):
        table = _first_per_key(np.concatenate([table, _first_per_key(chunk, reduce)]), reduce)
    return table


def _values_of_values(tables: _Spread, lookup: _Spread, folder: str, missing_is_identity: bool = False):
    """For every part of `tables`: the value each of its rows' values has in `lookup` (a table spread by
    key), as (part, array) pairs. Each part asks for its distinct values only, so a value shared by a
    million rows is asked for once per part."""
    requests = tables.sibling(folder, "requests")  # (value, asking part)
    for p in range(tables.parts):
        wanted = np.unique(tables.load(p)["b"])
        requests.add(_rows(wanted, np.full(len(wanted), p, dtype=U64)))
    answers = _Spread(folder, "answers", tables.parts, tables.chunk_rows)  # (value, its value), by asker
    for q in range(lookup.parts):
        table = lookup.load(q)
        for chunk in requests.chunks(q):
            answers.add(_rows(chunk["a"], _look_up(table, chunk["a"], missing_is_identity)), parts=chunk["b"])
    requests.delete()
    for p in range(tables.parts):
        found = np.sort(answers.load(p), order="a")
        yield p, _look_up(found, tables.load(p)["b"])
    answers.delete()


def _smallest_neighbours(edges: _Spread, folder: str, name: str) -> _Spread:
    """Every node of the pairs → min(itself, its neighbours): a table spread by node."""
    proposals = edges.sibling(folder, "proposals")
    for p in range(edges.parts):
        for chunk in edges.chunks(p):
            smaller = np.minimum(chunk["a"], chunk["b"])
            proposals.add(np.concatenate([_rows(chunk["a"], smaller), _rows(chunk["b"], smaller)]))
    labels = edges.sibling(folder, name)
    for p in range(edges.parts):
        labels.replace(p, _table_of_stream(proposals, p, np.minimum))
    proposals.delete()
    return labels


def _follow_pointers(labels: _Spread, folder: str) -> None:
    """label(x) ← label(label(x)) until nothing changes: every node then holds the end of its chain.
    Labels only decrease (label(x) <= x), so every chain ends; the chains halve at each pass."""
    while True:
        changed = False
        for p, jumped in _values_of_values(labels, labels, folder):  # a part is replaced after it is read
            table = labels.load(p)
            if (jumped != table["b"]).any():
                changed = True
                table["b"] = jumped
                labels.replace(p, table)
        if not changed:
            return


def _relabel(edges: _Spread, labels: _Spread, folder: str, name: str) -> tuple[_Spread, int]:
    """The pairs between the labels of their ends, without loops; spread by their first key."""
    halfway = edges.sibling(folder, "halfway")
    for p in range(edges.parts):  # a pair is in the part of its first key, as that key's label
        table = labels.load(p)
        for chunk in edges.chunks(p):
            halfway.add(_rows(chunk["b"], _look_up(table, chunk["a"])))
    relabelled, count = edges.sibling(folder, name), 0
    for p in range(edges.parts):
        table = labels.load(p)
        for chunk in halfway.chunks(p):
            a, b = chunk["b"], _look_up(table, chunk["a"])
            loop = a == b
            pairs = np.unique(_rows(np.minimum(a, b)[~loop], np.maximum(a, b)[~loop]))
            relabelled.add(pairs)
            count += len(pairs)
    halfway.delete()
    return relabelled, count


def _components_on_disk(spooled: str, folder: str, parts: int, chunk_rows: int, cluster_dir: str,
                        remove_dir: str) -> dict:
    edges = _Spread(folder, "edges.0", parts, chunk_rows)
    for chunk in _read_chunks(spooled, chunk_rows):
        edges.add(chunk)
    os.remove(spooled)
    rounds: list[_Spread] = []
    remaining = 1
    while remaining:
        labels = _smallest_neighbours(edges, folder, f"labels.{len(rounds)}")
        _follow_pointers(labels, folder)
        rounds.append(labels)
        following, remaining = _relabel(edges, labels, folder, f"edges.{len(rounds)}")
        edges.delete()
        edges = following
    edges.delete()

    # a node's root: its label in the first round, followed through the later rounds (a label that had
    # no pair left in a round is its own root from there on)
    passes = len(rounds)
    final = rounds.pop()
    while rounds:
        earlier = rounds.pop()
        for p, roots in _values_of_values(earlier, final, folder, missing_is_identity=True):
            table = earlier.load(p)
            table["b"] = roots
            earlier.replace(p, table)
        final.delete()
        final = earlier
    summary = _write_members(final, folder, cluster_dir, remove_dir)
    summary["label_passes"] = passes
    return summary


def _write_members(roots: _Spread, folder: str, cluster_dir: str, remove_dir: str) -> dict:
    """Cluster sizes per root, then the records of each input file, sorted by position."""
    counts = roots.sibling(folder, "counts")  # (root, members in one part)
    for p in range(roots.parts):
        part_roots = roots.load(p)["b"]
        counts.add(_first_per_key(_rows(part_roots, np.ones(len(part_roots), dtype=U64)), np.add))
    sizes = roots.sibling(folder, "sizes")
    summary = {"documents_in_clusters": 0, "clusters": 0, "near_duplicates": 0, "largest_cluster": 0}
    for p in range(roots.parts):
        table = _table_of_stream(counts, p, np.add)
        sizes.replace(p, table)
        summary["clusters"] += len(table)
        summary["largest_cluster"] = max(summary["largest_cluster"], int(table["b"].max(initial=0)))
    counts.delete()
    shard_files: dict[int, str] = {}
    for p, size in _values_of_values(roots, sizes, folder):
        table = roots.load(p)
        members = np.empty(len(table), dtype=MEMBER)
        members["node"], members["size"], members["root"] = table["a"], size, table["b"]
        summary["documents_in_clusters"] += len(table)
        shards = (members["node"] >> U64(32)).astype(np.int64)
        for shard in np.unique(shards):
            path = shard_files.setdefault(int(shard), os.path.join(folder, f"shard.{int(shard):06d}"))
            with open(path, "ab") as out:
                out.write(members[shards == shard].tobytes())
    for table in (roots, sizes):
        table.delete()
    for shard, path in sorted(shard_files.items()):  # one input file's documents in clusters at a time
        members = np.sort(np.fromfile(path, dtype=MEMBER), order="node")
        _write_shard(cluster_dir, remove_dir, shard, members["node"], members["size"], members["root"])
        os.remove(path)
    summary["near_duplicates"] = summary["documents_in_clusters"] - summary["clusters"]
    return summary
