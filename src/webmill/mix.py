"""Mix corpora into one, The Pile's way: each source gets a share of the output *tokens*.

A mix recipe is a YAML file with a top-level `mix:` key (`pipelines/pile.yaml`):

    name: pile
    mix:
      seed: 0
      total_tokens: natural          # or a number of tokens
      tokenizer: sentencepiece       # or words
      sources:
        - {name: web, paths: [output/fineweb/data], weight: 0.5, made_by: webmill run pipelines/fineweb.yaml}
        - {name: wikipedia, paths: [data/samples/domains/wikipedia.jsonl.gz], epochs: 3}
    output: {dir: output/pile}

A source has either a `weight` (its share of the output tokens) or `epochs` (how many times its tokens
are used, as The Pile gives them). Epoch sources fix their own token count; weighted sources share the
total. The total is `natural` by default: with weights only, the largest total that needs no
down-sampling (the scarcest source relative to its weight is used exactly once); with epoch sources, the
total at which they make up exactly 1 - (sum of weights) of the output. A number is allowed for
weights-only mixes.

A source's target is reached with whole documents: whole passes over all of its documents (epoch 1, 2,
...), then a seeded random subset of documents for the fraction left (see `choose_documents`). The
deviation from the target is then at most one document, usually much less; the recipe's `tolerance`
(relative to the target) is checked and reported. The input is read once to count and once per epoch to
write, streamed: memory holds one integer per document, plus one set entry per document of a partial epoch.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import math
import os
import random
import shutil
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from webmill.errors import WebmillError
from webmill.parquet_output import ARROW_TYPES, BASE_COLUMNS, PARTIAL
from webmill.stages.registry import param
from webmill.tokens import TokenCounter
from webmill.validate import ParamError, build_params

OUTPUT_COLUMNS = {**BASE_COLUMNS, "source": "string", "epoch": "int32", "metadata": "string"}
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz")
TOP_LEVEL_KEYS = {"name", "description", "mix", "output"}


@dataclass
class SourceSettings:
    name: str = param("", "the source's name, written in the `source` column")
    paths: list[str] = param([], "files, folders or globs: Parquet with a text column, or JSONL(.gz)")
    format: Literal["auto", "parquet", "jsonl"] = param("auto", "auto decides from the file names")
    text_key: str = param("text", "the column (field) holding the text")
    id_key: str = param("id", "the column (field) holding the document id")
    weight: float | None = param(None, "share of the output tokens, in (0, 1]")
    epochs: float | None = param(None, "times the source's tokens are used (The Pile's style), > 0")
    made_by: str | None = param(None, "the command that makes this source, named when it is missing")

    def check(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ParamError("name", "each source needs a name (no '/', not starting with '.')")
        if not self.paths:
            raise ParamError("paths", "no paths given")
        if (self.weight is None) == (self.epochs is None):
            raise ParamError("weight", "give a source either a weight or epochs, not both or neither")
        if self.weight is not None and not 0 < self.weight <= 1:
            raise ParamError("weight", f"must be in (0, 1], got {self.weight}")
        if self.epochs is not None and not self.epochs > 0:
            raise ParamError("epochs", f"must be > 0, got {self.epochs}")


@dataclass
class MixSettings:
    seed: int = param(0, "seed of the down-sampling (same recipe + seed = byte-identical output)")
    total_tokens: int | Literal["natural"] = param("natural", "output size in tokens, or natural (see docs)")
    tokenizer: Literal["sentencepiece", "words"] = param(
        "sentencepiece", "how tokens are counted: SentencePiece pieces of the normalised text, or words")
    sp_model: str | None = param(None, "SentencePiece model for tokenizer: sentencepiece (default: shipped en)")
    tolerance: float = param(0.02, "allowed relative deviation of a source's tokens from its target")

    def check(self) -> None:
        if isinstance(self.total_tokens, int) and self.total_tokens < 1:
            raise ParamError("total_tokens", "must be a positive number of tokens or 'natural'")
        if not 0 <= self.tolerance < 1:
            raise ParamError("tolerance", "must be in [0, 1)")


@dataclass
class MixOutput:
    dir: str = param("output/mix", "where data/*.parquet and stats.json go")
    row_group_rows: int = param(100_000, "a row group is flushed at this many rows ...")
    row_group_mb: int = param(128, "... or at this many MB of text, whichever comes first")
    compression: Literal["zstd", "snappy", "gzip", "none"] = param("zstd", "Parquet compression codec")


@dataclass
class MixRecipe:
    name: str
    path: Path
    description: str
    mix: MixSettings
    sources: list[SourceSettings]
    output: MixOutput


# ---------------------------------------------------------------------------------------------- recipe


def read_yaml(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise WebmillError(f"{path}: recipe file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as err:
        raise WebmillError(f"{path}: YAML tags that construct objects are not allowed ({err.problem})") from None
    except yaml.YAMLError as err:
        raise WebmillError(f"{path}: not valid YAML: {err}") from None


def is_mix_recipe(path: str | os.PathLike) -> bool:
    """True for a readable YAML mapping with a top-level `mix:` key (`webmill run` dispatches on it)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False  # the pipeline loader reports the problem
    return isinstance(raw, dict) and "mix" in raw


def _located(path: Path, where: str, key: str | None, message: str) -> WebmillError:
    return WebmillError(f"{path}, {where}{f', key {key!r}' if key else ''}: {message}")


def load_mix_recipe(path: str | os.PathLike, output_dir: str | None = None) -> MixRecipe:
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict) or "mix" not in raw:
        raise WebmillError(f"{path}: a mix recipe is a YAML mapping with a top-level 'mix:' key")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            known = ", ".join(sorted(TOP_LEVEL_KEYS))
            raise WebmillError(f"{path}, key {key!r}: unknown top-level key (known: {known})")
    settings = dict(raw["mix"]) if isinstance(raw["mix"], dict) else raw["mix"]
    raw_sources = settings.pop("sources", None) if isinstance(settings, dict) else None
    try:
        mix = build_params(MixSettings, settings, what="mix setting")
    except ParamError as err:
        raise _located(path, "mix", err.key, str(err)) from None
    if not isinstance(raw_sources, list) or not raw_sources:
        raise _located(path, "mix", "sources", "a mix needs a list of sources")
    sources = []
    for position, entry in enumerate(raw_sources, start=1):
        named = isinstance(entry, dict) and entry.get("name")
        where = f"source #{position}" + (f" {entry['name']!r}" if named else "")
        if not isinstance(entry, dict):
            raise _located(path, where, None, "each source is a mapping {name: ..., paths: [...], weight: ...}")
        try:
            sources.append(build_params(SourceSettings, entry, what="source setting"))
        except ParamError as err:
            raise _located(path, where, err.key, str(err)) from None
    names = [s.name for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise _located(path, f"source {name!r}", "name", "two sources have the same name")
    check_weights(path, mix, sources)
    try:
        output = build_params(MixOutput, raw.get("output"), what="output setting")
    except ParamError as err:
        raise _located(path, "output", err.key, str(err)) from None
    if output_dir:
        output.dir = output_dir
    return MixRecipe(str(raw.get("name") or path.stem), path, str(raw.get("description") or ""), mix, sources, output)


def check_weights(path: Path, mix: MixSettings, sources: list[SourceSettings]) -> None:
    weights = sum(s.weight for s in sources if s.weight is not None)
    has_epochs = any(s.epochs is not None for s in sources)
    if has_epochs:
        if weights >= 1 - 1e-9:
            raise _located(path, "mix", "sources", f"the weights sum to {weights:g}: with epoch sources they must "
                           "sum to less than 1 (the epoch sources make up the rest)")
        if mix.total_tokens != "natural":
            raise _located(path, "mix", "total_tokens", "epoch sources fix the total; use 'natural' or give "
                           "every source a weight")
    elif abs(weights - 1) > 1e-6:
        raise _located(path, "mix", "sources", f"the weights sum to {weights:g}, not 1")


# ---------------------------------------------------------------------------------------------- reading


def source_files(recipe_path: Path, source: SourceSettings) -> tuple[list[Path], str]:
    """Sorted files of a source and their format; a missing source names the command that makes it."""
    files: set[Path] = set()
    for pattern in source.paths:
        expanded = os.path.expanduser(pattern)
        if os.path.isdir(expanded):
            matches = [p for p in Path(expanded).rglob("*") if p.is_file() and _format_of(p)
                       and not any(part.startswith(".") for part in p.relative_to(expanded).parts)]
        else:
            matches = [Path(m) for m in glob.glob(expanded, recursive=True) if os.path.isfile(m)]
        if not matches:
            hint = f"; make it with `{source.made_by}`" if source.made_by else ""
            raise _located(recipe_path, f"source {source.name!r}", "paths", f"no input found at '{pattern}'{hint}")
        files.update(Path(os.path.abspath(m)) for m in matches)
    if source.format != "auto":
        return sorted(files), source.format
    formats = {_format_of(f) for f in files}
    if None in formats or len(formats) != 1:
        raise _located(recipe_path, f"source {source.name!r}", "format",
                       "cannot tell the format from the file names (.parquet or .jsonl[.gz]); set format")
    return sorted(files), formats.pop()


def _format_of(path: Path) -> str | None:
    if path.name.endswith(".parquet"):
        return "parquet"
    if path.name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    return None


def read_records(files: list[Path], fmt: str) -> Iterator[dict]:
    """Every record of the source, in file order then row order, as a dict; streamed."""
    for file in files:
        try:
            if fmt == "parquet":
                for batch in pq.ParquetFile(file).iter_batches(batch_size=1000):
                    yield from batch.to_pylist()
            else:
                with (gzip.open(file, "rt", encoding="utf-8") if file.name.endswith(".gz")
                      else open(file, encoding="utf-8")) as f:
                    for number, line in enumerate(f, start=1):
                        if line.strip():
                            try:
                                yield json.loads(line)
                            except json.JSONDecodeError as err:
                                raise WebmillError(f"{file}, line {number}: not valid JSON ({err.msg})") from None
        except (OSError, pa.ArrowException) as err:
            raise WebmillError(f"cannot read {file}: {err}") from None


def text_of(record: Any, source: SourceSettings) -> str | None:
    text = record.get(source.text_key) if isinstance(record, dict) else None
    return text if isinstance(text, str) and text.strip() else None


def output_row(record: dict, source: SourceSettings, index: int, epoch: int) -> dict:
    """A record in the corpus schema: base columns from the record (or its `meta`/`metadata` mapping), the
    rest kept as JSON in `metadata`."""
    rest = {k: v for k, v in record.items() if k not in (source.text_key, source.id_key) and v is not None}
    nested = rest.pop("metadata", None)
    if isinstance(nested, str):  # webmill Parquet keeps extra fields as a JSON string
        try:
            nested = json.loads(nested)
        except json.JSONDecodeError:
            nested = {"metadata": nested}
    meta = rest.pop("meta", None)
    for extra in (nested, meta):
        if isinstance(extra, dict):
            rest = {**extra, **rest}
        elif extra is not None:
            rest["metadata" if extra is nested else "meta"] = extra
    row = {"id": str(record.get(source.id_key) or f"{source.name}:{index}"), "text": record[source.text_key]}
    for name, kind in BASE_COLUMNS.items():
        if name not in row:
            row[name] = _typed(rest.pop(name, None), kind)
    row["source"], row["epoch"] = source.name, epoch
    row["metadata"] = json.dumps(rest, ensure_ascii=False, sort_keys=True, default=str) if rest else None
    return row


def _typed(value, kind: str):
    if value is None:
        return None
    try:
        return str(value) if kind == "string" else int(value) if kind.startswith("int") else float(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- planning


@dataclass
class SourcePlan:
    source: SourceSettings
    files: list[Path]
    format: str
    tokens: array = field(default_factory=lambda: array("q"))  # per document position; 0 = skipped (no token)
    skipped: int = 0
    target: int = 0
    full_epochs: int = 0
    partial: set[int] = field(default_factory=set)  # documents of the last, partial epoch

    @property
    def available(self) -> int:
        return sum(self.tokens)

    @property
    def documents(self) -> int:
        return len(self.tokens) - self.skipped

    @property
    def written(self) -> int:
        return self.full_epochs * self.available + sum(self.tokens[i] for i in self.partial)

    def copies_by_epoch(self) -> dict[str, int]:
        copies = {str(e): self.documents for e in range(1, self.full_epochs + 1)}
        if self.partial:
            copies[str(self.full_epochs + 1)] = len(self.partial)
        return copies


def count_tokens(recipe: MixRecipe, counter: TokenCounter) -> list[SourcePlan]:
    plans = []
    for source in recipe.sources:
        files, fmt = source_files(recipe.path, source)
        plan = SourcePlan(source, files, fmt)
        for record in read_records(files, fmt):
            text = text_of(record, source)
            tokens = counter.count(text) if text is not None else 0
            plan.tokens.append(tokens)
            plan.skipped += tokens == 0
        if plan.available == 0:
            raise _located(recipe.path, f"source {source.name!r}", "paths",
                           f"no document with text (key {source.text_key!r}) in {len(files)} file(s)")
        plans.append(plan)
    return plans


def natural_total(plans: list[SourcePlan]) -> int:
    weighted = [p for p in plans if p.source.weight is not None]
    fixed = sum(p.source.epochs * p.available for p in plans if p.source.epochs is not None)
    if len(weighted) == len(plans):  # the scarcest source, relative to its weight, is used exactly once
        return math.floor(min(p.available / p.source.weight for p in weighted))
    return round(fixed / (1 - sum(p.source.weight for p in weighted)))


def plan_mix(plans: list[SourcePlan], mix: MixSettings) -> int:
    """Set each source's target and choose its documents; returns the total token target."""
    total = natural_total(plans) if mix.total_tokens == "natural" else mix.total_tokens
    for plan in plans:
        source = plan.source
        plan.target = round(source.epochs * plan.available if source.epochs is not None else source.weight * total)
        plan.full_epochs, remainder = divmod(plan.target, plan.available)
        plan.partial = choose_documents(plan.tokens, remainder, random.Random(f"{mix.seed}/{source.name}"))
    return total


def choose_documents(tokens, target: int, rng: random.Random) -> set[int]:
    """A seeded random subset of documents whose tokens sum close to `target`: documents are taken in a
    seeded random order while they fit under the target; then the one left out that brings the sum
    closest to the target, if any does. Only documents at the margin are picked for their length (those
    that still fit), so long and short documents are otherwise equally likely to be chosen."""
    order = [i for i in range(len(tokens)) if tokens[i] > 0]
    rng.shuffle(order)
    chosen, running = set(), 0
    for i in order:
        if running + tokens[i] <= target:
            chosen.add(i)
            running += tokens[i]
    gap = target - running
    closest = min((i for i in order if i not in chosen and tokens[i] - gap < gap),
                  key=lambda i: abs(tokens[i] - gap), default=None)
    if closest is not None:
        chosen.add(closest)
    return chosen


# ---------------------------------------------------------------------------------------------- writing


class RowGroupWriter:
    """One Parquet file, rows buffered into row groups bounded by rows and text bytes."""

    def __init__(self, path: Path, output: MixOutput):
        schema = pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in OUTPUT_COLUMNS.items()])
        compression = None if output.compression == "none" else output.compression
        self.writer = pq.ParquetWriter(path, schema, compression=compression)
        self.schema, self.output = schema, output
        self.rows: list[dict] = []
        self.text_bytes = 0

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.text_bytes += len(row["text"])
        if len(self.rows) >= self.output.row_group_rows or self.text_bytes >= self.output.row_group_mb << 20:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema),
                                    row_group_size=len(self.rows))
        self.rows, self.text_bytes = [], 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


def prepare_output(root: Path, overwrite: bool) -> None:
    if overwrite and root.exists():
        shutil.rmtree(root)
    elif root.exists() and any(p.is_file() for p in root.rglob("*")):
        raise WebmillError(f"{root} exists and is not empty; choose another --output or pass --overwrite")
    try:
        (root / "data" / PARTIAL).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WebmillError(f"cannot write to the output folder {root}: {err.strerror}") from None


def write_source(plan: SourcePlan, position: int, data: Path, output: MixOutput) -> str:
    """Epoch by epoch, the chosen documents in input order; written under .partial, then moved."""
    name = f"{position:03d}_{plan.source.name}.parquet"
    partial = data / PARTIAL / name
    writer = RowGroupWriter(partial, output)
    try:
        for epoch in range(1, plan.full_epochs + 2):
            last = epoch == plan.full_epochs + 1
            if last and not plan.partial:
                break
            for index, record in enumerate(read_records(plan.files, plan.format)):
                if plan.tokens[index] and (not last or index in plan.partial):
                    writer.add(output_row(record, plan.source, index, epoch))
    finally:
        writer.close()
    os.replace(partial, data / name)
    return name


# ---------------------------------------------------------------------------------------------- report


def source_report(plan: SourcePlan, total_target: int, written_total: int, tolerance: float) -> dict:
    source = plan.source
    deviation = abs(plan.written - plan.target) / plan.target if plan.target else 0.0
    return {
        "source": source.name,
        "paths": source.paths,
        "files": len(plan.files),
        "documents_available": plan.documents,
        "documents_skipped_no_text": plan.skipped,
        "tokens_available": plan.available,
        "weight": source.weight,
        "epochs_requested": source.epochs,
        "target_tokens": plan.target,
        "target_share": round(plan.target / total_target, 6) if total_target else 0.0,
        "tokens_written": plan.written,
        "share_written": round(plan.written / written_total, 6) if written_total else 0.0,
        "epochs": round(plan.written / plan.available, 4),
        "documents_written": sum(plan.copies_by_epoch().values()),
        "copies_by_epoch": plan.copies_by_epoch(),
        "deviation": round(deviation, 6),
        "within_tolerance": deviation <= tolerance,
    }


def build_report(recipe: MixRecipe, plans: list[SourcePlan], total: int, counter: TokenCounter,
                 wall_s: float, files: list[str] | None) -> dict:
    written_total = sum(p.written for p in plans)
    rows = [source_report(p, total, written_total, recipe.mix.tolerance) for p in plans]
    for row, name in zip(rows, files or [None] * len(rows)):
        row["output_file"] = name
    return {
        "recipe": recipe.name,
        "kind": "mix",
        "seed": recipe.mix.seed,
        "tokenizer": counter.describe(),
        "tolerance": recipe.mix.tolerance,
        "total_tokens": {"requested": recipe.mix.total_tokens, "target": total, "written": written_total},
        "documents_in": sum(r["documents_available"] for r in rows),
        "documents_out": sum(r["documents_written"] for r in rows),
        "wall_time_s": round(wall_s, 2),
        "sources": rows,
    }


def write_json_atomic(path: Path, data: dict) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    os.replace(partial, path)


def summary_table(report: dict) -> str:
    header = (f"{'source':<14} {'docs':>6} {'tokens':>10} {'asked':>10} {'target':>10} {'written':>10} "
              f"{'share':>13} {'epochs':>7} {'docs out':>8}")
    lines = [header, "-" * len(header)]
    for r in report["sources"]:
        asked = f"w {r['weight']:g}" if r["weight"] is not None else f"{r['epochs_requested']:g} ep"
        share = f"{r['target_share']:.3f}→{r['share_written']:.3f}"
        flag = "" if r["within_tolerance"] else f"  off target by {r['deviation']:.1%}"
        lines.append(f"{r['source'][:14]:<14} {r['documents_available']:>6} {r['tokens_available']:>10} {asked:>10} "
                     f"{r['target_tokens']:>10} {r['tokens_written']:>10} {share:>13} {r['epochs']:>7.2f} "
                     f"{r['documents_written']:>8}{flag}")
    total = report["total_tokens"]
    lines.append(f"{report['documents_out']} documents, {total['written']} tokens written (target {total['target']}, "
                 f"{total['requested']}); tokens: {report['tokenizer']}")
    return "\n".join(lines)


def run_mix(recipe: MixRecipe, overwrite: bool = False, dry_run: bool = False) -> dict:
    """Count, plan and (unless dry_run) write the mix; returns the stats report."""
    started = time.perf_counter()
    counter = TokenCounter(recipe.mix.tokenizer, recipe.mix.sp_model)
    plans = count_tokens(recipe, counter)
    total = plan_mix(plans, recipe.mix)
    if dry_run:
        return build_report(recipe, plans, total, counter, time.perf_counter() - started, None)
    root = Path(recipe.output.dir)
    for plan in plans:  # --overwrite would delete the input before it is read again to be written
        if any(file.resolve().is_relative_to(root.resolve()) for file in plan.files):
            raise WebmillError(f"the output folder {root} holds input of source {plan.source.name!r}; "
                               "choose another --output")
    prepare_output(root, overwrite)
    files = [write_source(plan, position, root / "data", recipe.output) for position, plan in enumerate(plans)]
    (root / "data" / PARTIAL).rmdir()
    report = build_report(recipe, plans, total, counter, time.perf_counter() - started, files)
    report["recipe_settings"] = {"mix": dataclasses.asdict(recipe.mix),
                                 "sources": [dataclasses.asdict(s) for s in recipe.sources]}
    write_json_atomic(root / "stats.json", report)
    return report
