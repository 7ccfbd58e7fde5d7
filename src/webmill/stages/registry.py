"""The catalogue of recipe stages.

A stage is a name, a parameter dataclass and a `build` function that turns validated parameters into one
or more datatrove pipeline steps. The dataclass is the single source of truth for the parameter names,
types, defaults and help text: the recipe loader validates against it and `webmill stages` prints it.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Callable


def param(default: Any, help: str):
    """A stage parameter with its help text (lists get a fresh copy per recipe)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class BuildContext:
    """What a stage needs to know about the run besides its own parameters."""

    stage_index: int
    exclusion_writer_factory: Callable[[int, str], Any] | None = None
    work_dir: str = ""  # a folder of this stage's own for intermediate files (signatures, indexes)

    def exclusion_writer(self, stage_name: str):
        if self.exclusion_writer_factory is None:
            return None
        return self.exclusion_writer_factory(self.stage_index, stage_name)


@dataclass
class GlobalJob:
    """Steps that run between two phases on what the earlier phase wrote (e.g. dedup clustering)."""

    name: str
    steps: list
    tasks: int = 1


@dataclass
class Barrier:
    """Put inside a stage's list of steps: every task must finish what comes before it (and the global
    jobs must run) before any task starts what comes after it. The runner saves the documents at the
    barrier and reads them back afterwards, keyed by input file, so the result does not depend on tasks."""

    jobs: list[GlobalJob] = field(default_factory=list)


@dataclass
class StageSpec:
    name: str
    summary: str
    params: type
    build: Callable[[Any, BuildContext], Any]
    # typed Parquet columns this stage adds to each document (metadata key -> Arrow type name)
    columns: dict[str, str] = field(default_factory=dict)

    def param_fields(self) -> list[dataclasses.Field]:
        return list(dataclasses.fields(self.params))

    def param_types(self) -> dict[str, Any]:
        return typing.get_type_hints(self.params)


STAGES: dict[str, StageSpec] = {}


def register(name: str, params: type, summary: str, columns: dict[str, str] | None = None):
    """Decorator for a stage's build function."""

    def wrap(build):
        if name in STAGES:
            raise RuntimeError(f"stage {name!r} registered twice")
        STAGES[name] = StageSpec(name, summary, params, build, dict(columns or {}))
        return build

    return wrap


def all_stages() -> dict[str, StageSpec]:
    import webmill.stages.catalogue  # noqa: F401  (registers every stage)

    return STAGES
