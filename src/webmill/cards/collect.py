"""Facts about a finished run, gathered for its data card: the accounting (`stats.json`), the recipe
(`logs/recipe.json`), datatrove's per-task statistics (characters after each stage) and the corpus itself.

The Parquet files are streamed in record batches, so memory does not grow with the corpus. Counts
(documents, characters, words, languages, low-cardinality columns) are exact over every row; the values
behind the histograms are a uniform random sample of at most `sample` rows (seeded, so a card is
reproducible); the domain counter is exact until it holds `MAX_DOMAINS` hosts, then it keeps the most
frequent half (the top of the ranking stays right, the tail is approximate).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from webmill.accounting import merge_task_stats
from webmill.errors import WebmillError

# Columns that are neither a signal nor a category: identifiers, positions, free text.
NOT_SIGNALS = {"id", "text", "url", "date", "warc_file", "metadata"}
ALWAYS_COUNTED = {"language", "source"}  # counted exactly, however many values they take
MAX_CATEGORIES = 50  # a string or integer column with more distinct values is not shown as categories
MAX_CATEGORY_INT = 1000  # an integer column with larger values is shown as a histogram
MAX_DOMAINS = 200_000
BATCH_ROWS = 8192


@dataclass
class CategoryCounts:
    documents: Counter = field(default_factory=Counter)
    characters: Counter = field(default_factory=Counter)


@dataclass
class CorpusFacts:
    root: Path
    stats: dict
    recipe: dict | None
    partitions: dict[str, list[Path]]  # "" → data/*.parquet; "<lang>" → data/<lang>/*.parquet
    schema: dict[str, str] = field(default_factory=dict)
    documents: int = 0
    characters: int = 0
    words: int = 0
    bytes_on_disk: int = 0
    sample_rate: float = 1.0
    text_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0))
    signals: dict[str, np.ndarray] = field(default_factory=dict)  # sampled values of numeric columns
    categories: dict[str, CategoryCounts] = field(default_factory=dict)
    domains: Counter = field(default_factory=Counter)
    domains_exact: bool = True
    stage_characters: dict[str, int] = field(default_factory=dict)  # stage label → characters it kept

    @property
    def stage_rows(self) -> list[dict]:
        stages = self.stats.get("stages")
        if isinstance(stages, list) and all(isinstance(r, dict) and {"stage", "read", "kept"} <= r.keys()
                                            and isinstance(r.get("dropped", {}), dict) for r in stages):
            return stages
        return []

    @property
    def languages(self) -> Counter:
        if "language" in self.categories:
            return Counter({k: v for k, v in self.categories["language"].documents.items() if k})
        return Counter({name: 0 for name in self.partitions if name})

    @property
    def data_files(self) -> list[Path]:
        return [f for files in self.partitions.values() for f in files]


def find_partitions(data: Path) -> dict[str, list[Path]]:
    """data/*.parquet (one partition, "") and/or data/<lang>/*.parquet (one per folder); dot-folders
    such as data/.partial hold unfinished files and are skipped."""
    partitions: dict[str, list[Path]] = {}
    flat = sorted(data.glob("*.parquet"))
    if flat:
        partitions[""] = flat
    for folder in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(folder.glob("*.parquet"))
        if files:
            partitions[folder.name] = files
    return partitions


def load_run(root: Path) -> tuple[dict, dict | None]:
    stats_path = root / "stats.json"
    if not root.is_dir():
        raise WebmillError(f"{root} is not a folder (give the output folder of a webmill run)")
    if not stats_path.is_file():
        raise WebmillError(f"{root} has no stats.json: not a finished webmill output (run it to the end first; "
                           "running the same command again resumes it)")
    try:
        stats = json.loads(stats_path.read_text())
    except (OSError, ValueError) as err:
        raise WebmillError(f"{stats_path} cannot be read as JSON ({err})") from None
    if not isinstance(stats, dict):
        raise WebmillError(f"{stats_path} is not a JSON object")
    recipe_path = root / "logs" / "recipe.json"
    try:
        recipe = json.loads(recipe_path.read_text()) if recipe_path.is_file() else None
    except ValueError:
        recipe = None  # the card says the recipe is unknown rather than failing
    return stats, recipe


def collect(root: Path | str, sample: int = 100_000, seed: int = 0) -> CorpusFacts:
    root = Path(root)
    stats, recipe = load_run(root)
    data = root / "data"
    facts = CorpusFacts(root, stats, recipe, find_partitions(data) if data.is_dir() else {})
    facts.stage_characters = stage_characters(root / "logs", facts.stage_rows)
    _scan(facts, sample, seed)
    return facts


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    return str(arrow_type)


def _scan(facts: CorpusFacts, sample: int, seed: int) -> None:
    files = facts.data_files
    if not files:
        return
    metas = []
    for path in files:
        try:
            metas.append(pq.ParquetFile(path))
        except (OSError, pa.ArrowException) as err:
            raise WebmillError(f"{path} is not a readable Parquet file ({err})") from None
    facts.bytes_on_disk = sum(p.stat().st_size for p in files)
    total_rows = sum(m.metadata.num_rows for m in metas)
    facts.sample_rate = min(1.0, sample / total_rows) if total_rows else 1.0
    rng = np.random.default_rng(seed)
    sampled_lengths: list[np.ndarray] = []
    sampled: dict[str, list[np.ndarray]] = {}
    too_many: set[str] = set()
    for path, meta in zip(files, metas):
        schema = meta.schema_arrow
        for name in schema.names:
            facts.schema.setdefault(name, _kind(schema.field(name).type))
        wanted = [n for n in schema.names if n not in ("id", "date", "warc_file", "metadata")]
        for batch in meta.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            _scan_batch(facts, batch, rng, sampled_lengths, sampled, too_many)
    facts.text_lengths = np.concatenate(sampled_lengths) if sampled_lengths else np.zeros(0)
    facts.signals = {name: np.concatenate(parts) for name, parts in sampled.items()}
    for name in too_many:
        facts.categories.pop(name, None)


def _scan_batch(facts, batch: pa.RecordBatch, rng, sampled_lengths, sampled, too_many) -> None:
    rows = batch.num_rows
    facts.documents += rows
    keep = rng.random(rows) < facts.sample_rate
    lengths = None
    if "text" in batch.schema.names:
        text = batch.column("text")
        lengths = pc.fill_null(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False)
        facts.characters += int(lengths.sum())
        words = pc.list_value_length(pc.utf8_split_whitespace(text))
        facts.words += int(pc.sum(words).as_py() or 0)
        sampled_lengths.append(lengths[keep])
    if "url" in batch.schema.names:
        _count_domains(facts, batch.column("url").to_pylist())
    for name in batch.schema.names:
        if name in NOT_SIGNALS or name.endswith("_id") or name.endswith("offset"):
            continue
        column = batch.column(name)
        kind = _kind(column.type)
        if kind == "float" or kind == "int":
            values = column.to_numpy(zero_copy_only=False).astype(float)
            values = values[keep]
            sampled.setdefault(name, []).append(values[~np.isnan(values)])
        if kind == "int" and name not in ALWAYS_COUNTED and (pc.max(column).as_py() or 0) > MAX_CATEGORY_INT:
            too_many.add(name)  # sizes and counts of this range are a distribution, not categories
        if (kind == "string" or kind == "int") and name not in too_many:
            _count_categories(facts, name, column.to_pylist(), lengths, too_many)


def _count_categories(facts, name, values, lengths, too_many) -> None:
    counts = facts.categories.setdefault(name, CategoryCounts())
    for index, value in enumerate(values):
        counts.documents[value] += 1
        if lengths is not None:
            counts.characters[value] += int(lengths[index])
    if name not in ALWAYS_COUNTED and len(counts.documents) > MAX_CATEGORIES:
        too_many.add(name)


def domain_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


def _count_domains(facts: CorpusFacts, urls: list) -> None:
    counter = facts.domains
    for url in urls:
        host = domain_of(url)
        if host:
            counter[host] += 1
    if len(counter) > MAX_DOMAINS:
        facts.domains = Counter(dict(counter.most_common(MAX_DOMAINS // 2)))
        facts.domains_exact = False


def stage_characters(logs: Path, rows: list[dict]) -> dict[str, int]:
    """Characters of the documents each stage kept, from datatrove's per-task `doc_len` statistics.

    `stats.json` names each stage's datatrove steps in order; the phase folders under `logs/` hold
    the same steps, phase by phase. The phases are put back in order by matching their step names
    against that sequence; where that is ambiguous, or a stage's last step keeps no `doc_len`, the
    stage's characters are unknown and left out (never guessed)."""
    if not rows or not logs.is_dir():
        return {}
    sequence = [(row["stage"], name) for row in rows for name in str(row.get("step", "")).split(" + ")]
    phases = {}
    for folder in sorted(p for p in logs.iterdir() if (p / "stats").is_dir()):
        merged = merge_task_stats(folder)
        if merged:
            phases[folder.name] = merged
    position, matched = 0, []
    while position < len(sequence):
        names = [name for _, name in sequence[position:]]
        candidates = [key for key, steps in phases.items()
                      if [s["name"] for s in steps] == names[:len(steps)]]
        if len(candidates) != 1:
            return {}
        steps = phases.pop(candidates[0])
        matched.extend(steps)
        position += len(steps)
    result = {}
    for (label, _), step, following in zip(sequence, matched, sequence[1:] + [(None, None)]):
        if following[0] != label and "doc_len" in step["counters"]:  # the stage's last step
            result[label] = int(step["counters"]["doc_len"])
    return result


LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]+)*$")


def language_codes(facts: CorpusFacts) -> list[str]:
    """The language codes seen, most frequent first; values that are not codes are left out."""
    ordered = [code for code, _ in sorted(facts.languages.items(), key=lambda kv: (-kv[1], kv[0]))]
    return [code for code in ordered if isinstance(code, str) and LANGUAGE_CODE.match(code)]
