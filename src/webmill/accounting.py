"""Per-stage accounting: read, kept, dropped by reason, changed — from datatrove's per-task stats.

Every step records `total` (read), `forwarded` (kept), `dropped` and `dropped_<reason>`. The totals are
summed over all task stat files (so a resumed run counts the tasks of earlier attempts too) and written
to `stats.json` beside the corpus. A drop without a reason shows as `unspecified`, so
read == kept + sum(dropped) holds for every stage.
"""

from __future__ import annotations

import json
from pathlib import Path


RESERVED = {"total", "forwarded", "dropped"}


def _number(value) -> float:
    # datatrove writes a plain count as a number and a distribution as {"total": ..., "mean": ...}
    return value.get("total", 0) if isinstance(value, dict) else value


def merge_task_stats(logs: Path) -> list[dict] | None:
    """Sum the per-task stat files, step by step: [{"name", "time", "counters"}, ...]."""
    files = sorted((logs / "stats").glob("*.json"))
    if not files:
        return None
    steps: list[dict] = []
    for file in files:
        for index, step in enumerate(json.loads(file.read_text())):
            if index == len(steps):
                steps.append({"name": step["name"], "time": 0.0, "counters": {}})
            merged = steps[index]
            merged["time"] += _number(step.get("time_stats", 0))
            for label, value in step.get("stats", {}).items():
                merged["counters"][label] = merged["counters"].get(label, 0) + int(_number(value))
    return steps


def stage_rows(steps: list[dict], labels: list[str]) -> list[dict]:
    """One row per recipe stage; a stage built from several datatrove steps is read at its first
    counting step and kept at its last, with the drops of all its steps."""
    groups: dict[str, list[dict]] = {}
    for label, step in zip(labels, steps):
        groups.setdefault(label, []).append(step)
    return [_stage_row(label, group) for label, group in groups.items()]


def _stage_row(label: str, steps: list[dict]) -> dict:
    counting = [s["counters"] for s in steps if "total" in s["counters"]] or [{}]
    read = counting[0].get("total", 0)
    dropped: dict[str, int] = {}
    extra: dict[str, int] = {}
    for step in steps:
        counters = step["counters"]
        reasons = {k.removeprefix("dropped_"): v for k, v in counters.items() if k.startswith("dropped_")}
        unexplained = counters.get("dropped", 0) - sum(reasons.values())
        if unexplained > 0:
            reasons["unspecified"] = unexplained
        for reason, n in reasons.items():
            dropped[reason] = dropped.get(reason, 0) + n
        for k, v in counters.items():
            if k not in RESERVED and not k.startswith("dropped_") and k not in ("doc_len", "doc_len_tokens"):
                extra[k] = extra.get(k, 0) + v
    is_writer = label.endswith("write (parquet)")
    return {
        "stage": label,
        "step": " + ".join(s["name"] for s in steps),
        "read": read,
        "kept": read if is_writer else counting[-1].get("forwarded", 0),
        "dropped": {} if is_writer else dict(sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))),
        "changed": extra.pop("changed", 0),
        "tokens": extra.pop("tokens_kept", None),  # None: not counted (HTML, or count_tokens: none)
        "time_s": round(sum(s["time"] for s in steps), 3),
        "counters": extra,
    }


def write_stats(path: Path, recipe_name: str, rows: list[dict], tasks: int, wall_s: float,
                tokenizer: str | None = None) -> dict:
    report = {
        "recipe": recipe_name,
        "tasks": tasks,
        "wall_time_s": round(wall_s, 2),
        "documents_in": rows[0]["read"] if rows else 0,
        "documents_out": rows[-1]["kept"] if rows else 0,
        "tokens_out": rows[-1].get("tokens") if rows else None,
        "tokenizer": tokenizer,
        "stages": rows,
    }
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def summary_table(report: dict) -> str:
    header = (f"{'stage':<28} {'read':>8} {'kept':>8} {'dropped':>8} {'tokens kept':>12} {'time s':>8}"
              "  top drop reasons")
    lines = [header, "-" * len(header)]
    for row in report["stages"]:
        dropped = sum(row["dropped"].values())
        reasons = ", ".join(f"{k} {v}" for k, v in list(row["dropped"].items())[:3])
        tokens = "—" if row.get("tokens") is None else f"{row['tokens']:,}"
        lines.append(f"{row['stage'][:28]:<28} {row['read']:>8} {row['kept']:>8} {dropped:>8} {tokens:>12} "
                     f"{row['time_s']:>8.1f}  {reasons}")
    tokens = "" if report.get("tokens_out") is None else f" ({report['tokens_out']:,} tokens)"
    lines.append(f"{report['documents_in']} records in, {report['documents_out']} documents out{tokens}, "
                 f"{report['wall_time_s']} s wall time")
    if report.get("tokenizer"):
        lines.append(f"tokens: {report['tokenizer']}")
    return "\n".join(lines)
