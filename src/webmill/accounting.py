"""Per-stage accounting: read, kept, dropped by reason, changed — from datatrove's per-task stats.

Every step records `total` (read), `forwarded` (kept), `dropped` and `dropped_<reason>`. The totals are
summed over all task stat files (so a resumed run counts the tasks of earlier attempts too) and written
to `stats.json` beside the corpus. A drop without a reason shows as `unspecified`, so
read == kept + sum(dropped) holds for every stage.
"""

from __future__ import annotations

import json
from pathlib import Path

from datatrove.utils.stats import PipelineStats

RESERVED = {"total", "forwarded", "dropped"}


def _count(stats, label: str) -> int:
    value = stats.stats.get(label) if hasattr(stats.stats, "get") else None
    return int(value.total) if value is not None else 0


def merge_task_stats(logs: Path) -> PipelineStats | None:
    files = sorted((logs / "stats").glob("*.json"))
    if not files:
        return None
    merged = PipelineStats()
    for file in files:
        merged += PipelineStats.from_json(json.loads(file.read_text()))
    return merged


def stage_rows(merged: PipelineStats, labels: list[str]) -> list[dict]:
    rows = []
    for label, stats in zip(labels, merged.stats):
        counters = {name: int(metric.total) for name, metric in stats.stats.items()}
        read = counters.get("total", 0)
        if label.endswith("write (parquet)"):
            kept, dropped = read, {}
        else:
            kept = counters.get("forwarded", 0)
            dropped = {k.removeprefix("dropped_"): v for k, v in counters.items() if k.startswith("dropped_")}
            unexplained = counters.get("dropped", 0) - sum(dropped.values())
            if unexplained > 0:
                dropped["unspecified"] = unexplained
        extra = {k: v for k, v in counters.items()
                 if k not in RESERVED and not k.startswith("dropped_") and k not in ("doc_len", "doc_len_tokens")}
        rows.append({
            "stage": label,
            "step": stats.name,
            "read": read,
            "kept": kept,
            "dropped": dict(sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))),
            "changed": counters.get("changed", 0),
            "time_s": round(stats.time_stats.total, 3),
            "counters": extra,
        })
    return rows


def write_stats(path: Path, recipe_name: str, rows: list[dict], tasks: int, wall_s: float) -> dict:
    report = {
        "recipe": recipe_name,
        "tasks": tasks,
        "wall_time_s": round(wall_s, 2),
        "documents_in": rows[0]["read"] if rows else 0,
        "documents_out": rows[-1]["kept"] if rows else 0,
        "stages": rows,
    }
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def summary_table(report: dict) -> str:
    header = f"{'stage':<28} {'read':>8} {'kept':>8} {'dropped':>8} {'time s':>8}  top drop reasons"
    lines = [header, "-" * len(header)]
    for row in report["stages"]:
        dropped = sum(row["dropped"].values())
        reasons = ", ".join(f"{k} {v}" for k, v in list(row["dropped"].items())[:3])
        lines.append(f"{row['stage'][:28]:<28} {row['read']:>8} {row['kept']:>8} {dropped:>8} "
                     f"{row['time_s']:>8.1f}  {reasons}")
    lines.append(f"{report['documents_in']} records in, {report['documents_out']} documents out, "
                 f"{report['wall_time_s']} s wall time")
    return "\n".join(lines)
