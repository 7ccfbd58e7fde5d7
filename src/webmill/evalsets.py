"""webmill's shipped evaluation sets: held-out text per domain (for bits-per-byte) and zero-shot tasks.

Everything is read from `webmill/assets/eval/` (built by `scripts/make_eval_sets.py`; sources,
licences and split rules in `assets/eval/SOURCE.md`), so evaluation is offline and identical for every
corpus compared. The documents held out here are never part of webmill's training samples.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

from webmill.errors import WebmillError

DOMAINS = ("wikipedia", "books", "web", "science", "qa")
CHOICE_TASKS = ("piqa", "arc_easy", "copa", "winogrande")
CONTINUATION_TASKS = ("lambada",)
BLIMP_GROUP = "blimp"  # the name that stands for every shipped BLiMP paradigm


@dataclass(frozen=True)
class ChoiceItem:
    """One multiple-choice item. Each choice is scored by the log-likelihood the model gives it after
    `context`. When `suffix` is set (WinoGrande's partial scoring) the choices are alternative context
    endings instead, and each is scored by the log-likelihood of `suffix` after `context + choice`.
    A minimal pair (BLiMP) is `ChoiceItem("", [good, bad], 0)`."""

    context: str
    choices: list[str]
    gold: int
    suffix: str = ""


@dataclass(frozen=True)
class ContinuationItem:
    """A context and the exact text that should follow it (LAMBADA's last word, with its space)."""

    context: str
    target: str


def _rows(relative: str) -> list[dict]:
    path = resources.files("webmill") / "assets" / "eval" / relative
    if not path.is_file():
        raise WebmillError(f"evaluation set missing from the installation: webmill/assets/eval/{relative}")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@functools.cache
def _heldout() -> dict[str, tuple[str, ...]]:
    return {domain: tuple(row["text"] for row in _rows(f"heldout/{domain}.jsonl.gz")) for domain in DOMAINS}


def heldout_domains() -> dict[str, list[str]]:
    """Domain -> its held-out documents, in the shipped order (sources interleaved)."""
    return {domain: list(docs) for domain, docs in _heldout().items()}


@functools.cache
def _choice_tasks() -> dict[str, tuple[ChoiceItem, ...]]:
    tasks = {}
    for task in CHOICE_TASKS:
        tasks[task] = tuple(ChoiceItem(r["context"], list(r["choices"]), r["gold"], r.get("suffix", ""))
                            for r in _rows(f"tasks/{task}.jsonl.gz"))
    for row in _rows("tasks/blimp.jsonl.gz"):
        tasks.setdefault(f"blimp_{row['paradigm']}", ())
        tasks[f"blimp_{row['paradigm']}"] += (ChoiceItem("", [row["good"], row["bad"]], 0),)
    return tasks


def choice_tasks() -> dict[str, list[ChoiceItem]]:
    """Task -> items: piqa, arc_easy, copa, winogrande and one `blimp_<paradigm>` per BLiMP paradigm."""
    return {task: list(items) for task, items in _choice_tasks().items()}


@functools.cache
def _continuation_tasks() -> dict[str, tuple[ContinuationItem, ...]]:
    return {task: tuple(ContinuationItem(r["context"], r["target"]) for r in _rows(f"tasks/{task}.jsonl.gz"))
            for task in CONTINUATION_TASKS}


def continuation_tasks() -> dict[str, list[ContinuationItem]]:
    """Task -> items scored by exact greedy continuation (LAMBADA)."""
    return {task: list(items) for task, items in _continuation_tasks().items()}


def task_names() -> list[str]:
    """Every task name `evaluate_model` accepts (the group name `blimp` is accepted too)."""
    return [*_choice_tasks(), *CONTINUATION_TASKS]


def resolve_tasks(names: list[str] | None) -> list[str]:
    """Task names checked and expanded (`blimp` -> every paradigm); None means every task."""
    valid = task_names()
    if names is None:
        return valid
    blimp = [t for t in valid if t.startswith("blimp_")]
    out: list[str] = []
    for name in names:
        expanded = blimp if name == BLIMP_GROUP else [name]
        for task in expanded:
            if task not in valid:
                raise WebmillError(f"unknown evaluation task {name!r}; valid: {', '.join([BLIMP_GROUP, *valid])}")
            if task not in out:
                out.append(task)
    return out


def resolve_domains(names: list[str] | None) -> list[str]:
    """Domain names checked; None means every domain."""
    if names is None:
        return list(DOMAINS)
    for name in names:
        if name not in DOMAINS:
            raise WebmillError(f"unknown held-out domain {name!r}; valid: {', '.join(DOMAINS)}")
    return list(dict.fromkeys(names))


def iter_eval_texts() -> Iterator[tuple[str, str]]:
    """(eval-set name, text) for every shipped evaluation text, for decontaminating training data.

    Names: `heldout_<domain>` for held-out documents; the task name for task items, whose text is the
    context followed by one choice (and the suffix), once per distinct choice.
    """
    for domain, docs in _heldout().items():
        for doc in docs:
            yield f"heldout_{domain}", doc
    for task, items in _choice_tasks().items():
        for item in items:
            for choice in dict.fromkeys(item.choices):
                yield task, item.context + choice + item.suffix
    for task, continuation_items in _continuation_tasks().items():
        for item in continuation_items:
            yield task, item.context + item.target
