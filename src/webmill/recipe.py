"""Recipes: a YAML file → a validated `Recipe` → a list of datatrove pipeline steps.

A recipe is data, not code: it is parsed with `yaml.safe_load` (tags that would build Python objects are
rejected) and every key is checked against a dataclass. Errors name the file, the stage and the key.

    name: refinedweb
    input:    {paths: [data/samples/warc/*.warc.gz]}
    output:   {dir: output/refinedweb}
    executor: {kind: local, tasks: 4, workers: 2}
    stages:
      - url_filter
      - extract: {timeout_s: 1.0}
      - language: {languages: [en], min_score: 0.65}

Relative paths are resolved against the current working directory, as for any command-line tool.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from webmill.errors import RecipeError
from webmill.stages.registry import StageSpec, all_stages, param
from webmill.validate import ParamError, build_params

ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz", ".warc.wet.gz")
TEXT_SUFFIXES = {"jsonl": (".jsonl", ".jsonl.gz", ".json.gz", ".jsonl.zst"), "parquet": (".parquet",)}


@dataclass
class InputSettings:
    paths: list[str] = param([], "files, folders or glob patterns to read")
    format: Literal["auto", "warc", "jsonl", "parquet"] = param(
        "auto", "warc covers WARC, ARC and WET; auto decides from the file names"
    )
    text_key: str = param("text", "jsonl/parquet: the column holding the text")
    id_key: str = param("id", "jsonl/parquet: the column holding the document id")
    max_record_mb: float = param(20.0, "warc: records with a larger payload are skipped (counted)")


@dataclass
class OutputSettings:
    dir: str = param("output", "where the Parquet corpus, stats.json and logs go")
    max_file_mb: int = param(1024, "start a new Parquet file once one reaches this size")
    row_group_rows: int = param(100_000, "a row group is flushed at this many rows ...")
    row_group_mb: int = param(128, "... or at this many MB of buffered text, whichever comes first")
    compression: Literal["zstd", "snappy", "gzip", "none"] = param("zstd", "Parquet compression codec")
    exclusions: str | None = param(None, "folder for dropped documents with their reason (JSONL)")
    route_by_language: bool = param(False, "write each language to its own folder: data/<lang>/ (und: unknown)")
    count_tokens: Literal["sentencepiece", "words", "none"] = param(
        "sentencepiece", "tokens kept after each stage, in stats.json and the card: shipped SentencePiece "
        "model, whitespace-separated words, or none (saves the counting time)")


@dataclass
class ExecutorSettings:
    kind: Literal["local", "ray", "slurm"] = param("local", "datatrove executor to run on")
    tasks: int = param(1, "number of shards the input files are split into")
    workers: int = param(-1, "tasks run at once (local); -1 = all")
    partition: str | None = param(None, "slurm: partition")
    time: str = param("24:00:00", "slurm: time limit per job")
    cpus_per_task: int = param(1, "slurm/ray: CPUs per task")
    mem_per_cpu_gb: float = param(2.0, "slurm/ray: memory per CPU")
    ray_address: str | None = param(None, "ray: cluster address (default: RAY_ADDRESS or a local cluster)")


@dataclass
class StageConfig:
    spec: StageSpec
    params: Any
    label: str  # "3:extract" — position and name, as shown in errors and stats


@dataclass
class Recipe:
    name: str
    path: Path
    description: str
    input: InputSettings
    output: OutputSettings
    executor: ExecutorSettings
    stages: list[StageConfig]
    input_files: list[str] = field(default_factory=list)
    input_format: str = "warc"


TOP_LEVEL_KEYS = {"name", "description", "input", "output", "executor", "stages"}


def load_recipe(path: str | os.PathLike, overrides: dict | None = None) -> Recipe:
    """Read, validate and resolve a recipe. `overrides` are CLI values: input paths, output dir, tasks…"""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(path, "recipe file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as err:
        raise RecipeError(path, f"YAML tags that construct objects are not allowed ({err.problem})") from None
    except yaml.YAMLError as err:
        raise RecipeError(path, f"not valid YAML: {err}") from None
    return parse_recipe(raw, path, overrides or {})


def parse_recipe(raw: Any, path: Path, overrides: dict) -> Recipe:
    if not isinstance(raw, dict):
        raise RecipeError(path, "a recipe must be a YAML mapping")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise RecipeError(path, f"unknown top-level key (known: {', '.join(sorted(TOP_LEVEL_KEYS))})", key=key)

    sections = {}
    for section, cls in (("input", InputSettings), ("output", OutputSettings), ("executor", ExecutorSettings)):
        values = dict(raw.get(section) or {})
        values.update({k: v for k, v in overrides.get(section, {}).items() if v is not None})
        try:
            sections[section] = build_params(cls, values, what=f"{section} setting")
        except ParamError as err:
            raise RecipeError(path, str(err), stage=section, key=err.key) from None

    recipe = Recipe(
        name=str(raw.get("name") or path.stem),
        path=path,
        description=str(raw.get("description") or ""),
        input=sections["input"],
        output=sections["output"],
        executor=sections["executor"],
        stages=parse_stages(raw.get("stages"), path),
    )
    check_executor(recipe)
    recipe.input_files, recipe.input_format = resolve_inputs(recipe.input, path)
    return recipe


def parse_stages(raw_stages: Any, path: Path) -> list[StageConfig]:
    if raw_stages is None:
        raw_stages = []
    if not isinstance(raw_stages, list):
        raise RecipeError(path, "'stages' must be a list", key="stages")
    catalogue = all_stages()
    stages = []
    for position, entry in enumerate(raw_stages, start=1):
        if isinstance(entry, str):
            name, raw_params = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            ((name, raw_params),) = entry.items()
        else:
            raise RecipeError(path, "each stage is a name or a one-key mapping {name: {params}}", stage=f"#{position}")
        label = f"#{position} '{name}'"
        if name not in catalogue:
            import difflib

            close = difflib.get_close_matches(str(name), list(catalogue), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "; run `webmill stages` for the list"
            raise RecipeError(path, f"unknown stage{hint}", stage=label)
        spec = catalogue[name]
        try:
            params = build_params(spec.params, raw_params)
        except ParamError as err:
            raise RecipeError(path, str(err), stage=label, key=err.key) from None
        stages.append(StageConfig(spec, params, f"{position}:{name}"))
    return stages


def check_executor(recipe: Recipe) -> None:
    ex = recipe.executor
    if ex.tasks < 1:
        raise RecipeError(recipe.path, "must be at least 1", stage="executor", key="tasks")
    if ex.workers == 0 or ex.workers < -1:
        raise RecipeError(recipe.path, "must be -1 (all) or at least 1", stage="executor", key="workers")


def resolve_inputs(settings: InputSettings, path: Path) -> tuple[list[str], str]:
    """Expand globs and folders into a sorted file list and decide the reader."""
    if not settings.paths:
        raise RecipeError(path, "no input paths given (set input.paths or pass --input)", stage="input", key="paths")
    files: set[str] = set()
    for pattern in settings.paths:
        expanded = os.path.expanduser(pattern)
        if os.path.isdir(expanded):
            matches = [str(p) for p in Path(expanded).rglob("*") if p.is_file() and guess_format(str(p))]
        else:
            matches = [m for m in glob.glob(expanded, recursive=True) if os.path.isfile(m)]
        if not matches:
            raise RecipeError(path, f"no input file matches '{pattern}'", stage="input", key="paths")
        files.update(os.path.abspath(m) for m in matches)
    formats = {guess_format(f) for f in files}
    if settings.format != "auto":
        return sorted(files), settings.format
    formats.discard(None)
    if len(formats) != 1:
        found = ", ".join(sorted(formats)) or "none recognised"
        raise RecipeError(
            path, f"cannot tell the input format from the file names ({found}); set input.format",
            stage="input", key="format",
        )
    return sorted(files), formats.pop()


def guess_format(filename: str) -> str | None:
    name = filename.lower()
    if name.endswith(ARCHIVE_SUFFIXES):
        return "warc"
    for fmt, suffixes in TEXT_SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None
