"""The report of an ablation study, rendered from `results.json` alone (so it can be re-rendered any time):
`report.md` (setup, BPB and task tables with mean ± sd over seeds, pairwise comparisons) and PNG plots
(loss curves, per-domain BPB, task scores).

A difference between two labels is called only when |mean_a − mean_b| > 2 × max(sd_a, sd_b), with the
sample standard deviation over seeds; otherwise it is "within noise". With one seed nothing is called.

    python -m webmill.ablation.report reports/<study>     # re-render report.md and the plots
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
from pathlib import Path

from webmill.errors import WebmillError

NOISE_FACTOR = 2.0
HEADLINE_METRICS = ("bpb macro", "accuracy, mean over tasks")  # every pair shown; other metrics: called ones


def tiny_scale_note(parameters: int | None, budget_tokens: int) -> str:
    size = f"{parameters / 1e6:.2f}M parameters" if parameters else "small"
    return (f"These models are tiny ({size}, {budget_tokens / 1e6:.2f}M training tokens each). Their ranking "
            "is a relative signal about the data (or the architecture) under identical conditions; it is not a "
            "prediction of the ranking at 1B-parameter scale, where differences can shrink, grow or reverse.")


# ---------------------------------------------------------------- statistics (stored in results.json)


def stat(values: list[float]) -> dict:
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not values:
        return {"mean": None, "sd": None, "n": 0, "values": []}
    sd = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "sd": sd, "n": len(values), "values": values}


TASK_METRICS = ("accuracy", "accuracy_tie_aware", "margin")
GROUPED_PREFIXES = ("blimp_",)  # many small paradigms: shown as one task (their mean), kept whole in results


def task_view(scores: dict) -> dict[str, dict]:
    """One run's task scores as shown: BLiMP paradigms folded into `blimp` (the mean over paradigms)."""
    shown = {t: v for t, v in scores.items() if not t.startswith(GROUPED_PREFIXES)}
    for prefix in GROUPED_PREFIXES:
        members = [v for t, v in scores.items() if t.startswith(prefix)]
        if members:
            shown[prefix.rstrip("_")] = {m: statistics.fmean(v[m] for v in members) if all(
                v.get(m) is not None for v in members) else None for m in TASK_METRICS}
            shown[prefix.rstrip("_")]["n"] = sum(v.get("n", 0) for v in members)
            shown[prefix.rstrip("_")]["paradigms"] = len(members)
    return shown


def summarise(document: dict) -> dict:
    """Per label: mean ± sd over seeds of every score."""
    summary = {}
    for label in document["labels"]:
        runs = [r for r in document["runs"] if r["label"] == label]
        domains = sorted({d for r in runs for d in r["eval"].get("bpb", {})}, key=lambda d: (d == "macro", d))
        views = [task_view(r["eval"].get("tasks", {})) for r in runs]
        tasks = sorted({t for v in views for t in v})
        raw_tasks = sorted({t for r in runs for t in r["eval"].get("tasks", {})})
        summary[label] = {
            "seeds": [r["seed"] for r in runs],
            "parameters": runs[0]["model"]["parameters"] if runs else None,
            "bpb": {d: stat([r["eval"]["bpb"].get(d) for r in runs]) for d in domains},
            "tasks": {t: {m: stat([v.get(t, {}).get(m) for v in views]) for m in TASK_METRICS} for t in tasks},
            "tasks_all": {t: {m: stat([r["eval"]["tasks"].get(t, {}).get(m) for r in runs]) for m in TASK_METRICS}
                          for t in raw_tasks},
            "task_items": {t: max((v.get(t, {}).get("n") or 0) for v in views) for t in tasks},
            "tasks_mean_accuracy": stat([statistics.fmean(v[t]["accuracy"] for t in tasks) for v in views
                                         if tasks and all(v.get(t, {}).get("accuracy") is not None for t in tasks)]),
            "final_loss": stat([r["final_loss"] for r in runs]),
            "epochs": stat([r["corpus"]["epochs"] for r in runs]),
            "tokens_per_s": stat([r["tokens_per_s"] for r in runs]),
            "wall_s": stat([r["wall_s"] + r.get("eval_wall_s", 0.0) for r in runs]),
            "skipped_documents": stat([r["corpus"].get("skipped_documents", 0) for r in runs]),
        }
    return summary


def metrics(summary: dict) -> list[tuple[str, tuple, bool]]:
    """(metric name, path into a label's summary, lower is better) of everything compared pairwise."""
    first = next(iter(summary.values()))
    found = [(f"bpb {d}", ("bpb", d), True) for d in first["bpb"]]
    if first["tasks_mean_accuracy"]["n"]:
        found.append(("accuracy, mean over tasks", ("tasks_mean_accuracy",), False))
    found += [(f"{t} accuracy", ("tasks", t, "accuracy"), False) for t in first["tasks"]]
    return found


def _get(entry: dict, path: tuple) -> dict:
    for key in path:
        entry = entry.get(key, {})
    return entry


def call_difference(a: dict, b: dict, lower_is_better: bool) -> dict:
    """The noise rule on two stats; `better` is 'a', 'b' or None (within noise / cannot tell)."""
    if a.get("mean") is None or b.get("mean") is None:
        return {"diff": None, "threshold": None, "better": None, "verdict": "missing"}
    diff = a["mean"] - b["mean"]
    if a["sd"] is None or b["sd"] is None:
        return {"diff": diff, "threshold": None, "better": None, "verdict": "one seed: cannot tell"}
    threshold = NOISE_FACTOR * max(a["sd"], b["sd"])
    if abs(diff) <= threshold:
        return {"diff": diff, "threshold": threshold, "better": None, "verdict": "within noise"}
    a_better = diff < 0 if lower_is_better else diff > 0
    return {"diff": diff, "threshold": threshold, "better": "a" if a_better else "b", "verdict": "called"}


def compare(summary: dict) -> list[dict]:
    comparisons = []
    if len(summary) < 2:
        return comparisons
    for name, path, lower in metrics(summary):
        for a, b in itertools.combinations(summary, 2):
            call = call_difference(_get(summary[a], path), _get(summary[b], path), lower)
            winner = {"a": a, "b": b}.get(call.pop("better"))
            comparisons.append({"metric": name, "a": a, "b": b, "better": winner, **call})
    return comparisons


# ---------------------------------------------------------------- rendering


def load_results(folder: str | Path) -> dict:
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise WebmillError(f"{path} not found; run `webmill ablate STUDY.yaml` first")
    return json.loads(path.read_text())


def write_report(folder: str | Path) -> Path:
    """Render report.md and the plots of `folder` from its results.json; returns report.md's path."""
    folder = Path(folder)
    document = load_results(folder)
    plots = write_plots(document, folder)
    out = folder / "report.md"
    out.write_text(render_markdown(document, plots), encoding="utf-8")
    return out


def fmt(entry: dict, digits: int = 3) -> str:
    if not entry or entry.get("mean") is None:
        return "–"
    if entry.get("sd") is None:
        return f"{entry['mean']:.{digits}f}"
    return f"{entry['mean']:.{digits}f} ± {entry['sd']:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _best(summary: dict, path: tuple, lower: bool) -> set[str]:
    """Labels with the best mean on a metric (bolded in tables)."""
    means = {label: _get(entry, path).get("mean") for label, entry in summary.items()}
    means = {label: m for label, m in means.items() if m is not None}
    if len(means) < 2:
        return set()
    best = min(means.values()) if lower else max(means.values())
    return {label for label, m in means.items() if m == best}


def render_markdown(document: dict, plots: dict[str, str]) -> str:
    summary, config = document["summary"], document["config"]
    labels = document["labels"]
    first = config["labels"][labels[0]]
    model, train = first["model"], first["train"]
    seeds = document["seeds"]
    what = "corpora" if document["kind"] == "corpora" else "architecture variants"
    tokenizer = document["tokenizer"]
    decon = document["decontamination"]
    lines = [f"# Ablation study: {document['study']}", ""]
    if document.get("description"):
        lines += [document["description"], ""]
    lines += [
        f"> {tiny_scale_note(summary[labels[0]]['parameters'], train['budget_tokens'])}",
        "",
        "## Setup",
        "",
        f"- Compared {what}: {', '.join(f'`{label}`' for label in labels)}; seeds {seeds} "
        f"({len(labels) * len(seeds)} runs, device {document['device']}).",
        f"- Tokenizer (shared by every run): {tokenizer['name']}, {tokenizer['vocab_size']} ids"
        + (f", BPE trained once on {tokenizer['trained_on']['documents']} documents "
           f"({tokenizer['trained_on']['characters']:,} characters), an equal share from each corpus"
           if tokenizer.get("kind") == "bpe" else "") + ".",
        f"- Model ({first['preset']}): {model['n_layer']} layers, {model['n_head']} heads, width {model['n_embd']}, "
        f"context {model['block_size']}, pos {model['pos']}, mlp {model['mlp']}, attention {model['attention']}, "
        f"emb_norm {model['emb_norm']}; {summary[labels[0]]['parameters']:,} parameters.",
        f"- Training: {train['budget_tokens']:,} tokens per run, batch {train['batch_size']}, lr {train['lr']} → "
        f"{train['min_lr']} (warm-up {train['warmup_steps']} steps), weight decay {train['weight_decay']}, "
        f"trainer {train['trainer']}.",
        f"- Evaluation: bits per byte on held-out domains (at most {config['eval']['max_docs_per_domain']} documents "
        f"each, cut to {config['eval']['max_bytes_per_doc']} bytes); choice tasks scored by likelihood (at most "
        f"{config['eval']['max_items_per_task']} items each).",
        "- Decontamination: " + (
            "training documents sharing a 13-gram with any eval set were skipped."
            if decon["applied"] else
            "**not applied** " + ("(switched off in the study)." if not decon["requested"] else
                                  "(no decontamination index available in this installation).")),
    ]
    varying = _varying_settings(config["labels"])
    if varying:
        lines += ["", "Settings that differ between labels:", ""]
        keys = sorted(varying)
        lines += _table(["label"] + keys, [[f"`{label}`"] + [str(varying[k][label]) for k in keys]
                                           for label in labels])

    lines += ["", "## Training", ""]
    rows = []
    for label in labels:
        s = summary[label]
        rows.append([f"`{label}`", fmt(s["final_loss"]), fmt(s["epochs"], 2), fmt(s["tokens_per_s"], 0),
                     fmt(s["wall_s"], 0), fmt(s["skipped_documents"], 0)])
    lines += _table(["label", "final train loss", "epochs of the corpus", "tokens/s", "seconds per run",
                     "documents skipped (contaminated)"], rows)
    lines += ["", "The final train loss is the mean of the last 5 % of steps. More than one epoch means the "
                  "corpus was smaller than the budget and was repeated.", ""]
    if "loss" in plots:
        lines += [f"![loss curves]({plots['loss']})", ""]

    domains = list(summary[labels[0]]["bpb"])
    lines += ["## Bits per byte on held-out text (lower is better)", ""]
    best = {d: _best(summary, ("bpb", d), True) for d in domains}
    lines += _table(["label"] + domains, [[f"`{label}`"] + [_bold(fmt(summary[label]["bpb"][d]), label in best[d])
                                                           for d in domains] for label in labels])
    lines += ["", "Mean ± sd over seeds; the best mean per column in bold. `macro` is the unweighted mean over "
                  "domains.", ""]
    if "bpb" in plots:
        lines += [f"![bits per byte]({plots['bpb']})", ""]

    tasks = list(summary[labels[0]]["tasks"])
    if tasks:
        lines += ["## Tasks (higher is better)", ""]
        items = summary[labels[0]]["task_items"]
        for metric, title in (("accuracy", "Accuracy"), ("accuracy_tie_aware", "Tie-aware accuracy"),
                              ("margin", "Margin (mean of p(gold) − max p(other), softmax over the choices)")):
            rows = []
            for t in tasks:
                best = _best(summary, ("tasks", t, metric), False)
                rows.append([f"{t} ({items.get(t, '?')})"] + [_bold(fmt(summary[label]["tasks"][t][metric]),
                                                                      label in best) for label in labels])
            lines += [f"**{title}**", ""]
            lines += _table(["task (items)"] + [f"`{label}`" for label in labels], rows)
            lines += [""]
        lines += ["Mean ± sd over seeds, the best mean per row in bold. `blimp` is the mean over the BLiMP "
                  "paradigms evaluated (each paradigm's scores are in results.json). Tie-aware accuracy counts "
                  "a tie between the gold choice and others as a fraction of a point instead of a win; with "
                  "models this small, ties are common and it is the fairer number.", ""]
        if "tasks" in plots:
            lines += [f"![task scores]({plots['tasks']})", ""]

    lines += _comparison_section(document)
    lines += ["## Reproduce", "", "```", f"webmill ablate {document['study_file']} --device {document['device']}",
              "```", "",
              f"Versions: {', '.join(f'{k} {v}' for k, v in document['versions'].items() if k != 'platform')}; "
              f"{document['versions'].get('platform', '')}. Written {document['created']}.", ""]
    return "\n".join(lines)


def _bold(text: str, bold: bool) -> str:
    return f"**{text}**" if bold and text != "–" else text


def _varying_settings(per_label: dict) -> dict[str, dict[str, object]]:
    """model/train settings whose value is not the same for every label (architecture studies)."""
    varying = {}
    for section in ("model", "train"):
        keys = set().union(*(entry[section] for entry in per_label.values()))
        for key in keys:
            values = {label: entry[section].get(key) for label, entry in per_label.items()}
            if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
                varying[key] = values
    return varying


def _comparison_section(document: dict) -> list[str]:
    comparisons = document["comparisons"]
    lines = ["## Pairwise comparisons", "",
             f"A difference is called only when |mean_a − mean_b| > {NOISE_FACTOR:g} × max(sd_a, sd_b) (sample "
             "standard deviation over seeds); otherwise it is *within noise*. With one seed nothing can be called.",
             ""]
    if not comparisons:
        return lines + ["Only one label: nothing to compare.", ""]
    called = [c for c in comparisons if c["verdict"] == "called"]
    lines += [f"{len(called)} of {len(comparisons)} pairwise differences pass the rule (all of them, with their "
              "numbers, are in results.json under `comparisons`).", ""]
    headline = [c for c in comparisons if c["metric"] in HEADLINE_METRICS]
    others = [c for c in called if c["metric"] not in HEADLINE_METRICS]
    if headline:
        lines += ["Headline metrics, every pair:", ""] + _comparison_table(headline) + [""]
    if others:
        lines += ["Per domain and per task, the differences that pass the rule:", ""]
        lines += _comparison_table(others) + [""]
    elif headline:
        lines += ["Per domain and per task: no difference passes the rule.", ""]
    return lines


def _comparison_table(comparisons: list[dict]) -> list[str]:
    rows = []
    for c in comparisons:
        diff = "–" if c["diff"] is None else f"{c['diff']:+.4f}"
        threshold = "–" if c["threshold"] is None else f"{c['threshold']:.4f}"
        verdict = f"**`{c['better']}` better**" if c["verdict"] == "called" else c["verdict"]
        rows.append([c["metric"], f"`{c['a']}` vs `{c['b']}`", diff, threshold, verdict])
    return _table(["metric", "pair", "mean a − mean b", "2 × max sd", "verdict"], rows)


# ---------------------------------------------------------------- plots


def mean_curve(runs: list[dict]) -> tuple[list[int], list[float], list[float]]:
    """Mean and sd of the loss over seeds at each logged step (runs of one label log the same steps)."""
    length = min(len(r["losses"]) for r in runs)
    tokens, means, sds = [], [], []
    for i in range(length):
        values = [r["losses"][i][2] for r in runs]
        tokens.append(runs[0]["losses"][i][1])
        means.append(statistics.fmean(values))
        sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    return tokens, means, sds


def _smooth(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def write_plots(document: dict, folder: Path) -> dict[str, str]:
    """loss.png, bpb.png, tasks.png in `folder`; returns {plot: file name} of those written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, summary = document["labels"], document["summary"]
    written = {}
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label in labels:
        runs = [r for r in document["runs"] if r["label"] == label and r["losses"]]
        if not runs:
            continue
        tokens, means, sds = mean_curve(runs)
        window = max(1, len(means) // 40)
        mean_s, sd_s = _smooth(means, window), _smooth(sds, window)
        ax.plot(tokens, mean_s, label=f"{label} (n={len(runs)})", color=colours[label], linewidth=1.4)
        ax.fill_between(tokens, [m - s for m, s in zip(mean_s, sd_s)], [m + s for m, s in zip(mean_s, sd_s)],
                        color=colours[label], alpha=0.15, linewidth=0)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("train loss (nats/token), mean over seeds")
    ax.set_title(f"{document['study']}: training loss (band: ± sd over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "loss.png", dpi=110)
    plt.close(fig)
    written["loss"] = "loss.png"

    domains = list(summary[labels[0]]["bpb"])
    if domains:
        written["bpb"] = _bar_plot(plt, folder / "bpb.png", labels, colours, domains,
                                   lambda label, d: summary[label]["bpb"][d],
                                   "bits per byte (lower is better)", f"{document['study']}: held-out bits per byte",
                                   zoom=True)
    tasks = list(summary[labels[0]]["tasks"])
    if tasks:
        written["tasks"] = _bar_plot(plt, folder / "tasks.png", labels, colours, tasks,
                                     lambda label, t: summary[label]["tasks"][t]["accuracy_tie_aware"],
                                     "tie-aware accuracy (higher is better)", f"{document['study']}: tasks")
    return written


def _bar_plot(plt, path: Path, labels, colours, groups, get, ylabel: str, title: str, zoom: bool = False) -> str:
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(labels) / 2) + 2), 4.2))
    for i, label in enumerate(labels):
        entries = [get(label, g) for g in groups]
        means = [e["mean"] if e["mean"] is not None else 0.0 for e in entries]
        errors = [e["sd"] or 0.0 for e in entries]
        xs = [g + (i - (len(labels) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, means, width, yerr=errors, capsize=2, label=label, color=colours[label])
    if zoom:  # differences between corpora are a few % of the value: start the axis near the smallest bar
        lows = [e["mean"] - (e["sd"] or 0.0) for label in labels for e in (get(label, g) for g in groups)
                if e["mean"] is not None]
        if lows:
            ax.set_ylim(bottom=0.9 * min(lows))
            title += ", axis not from 0"
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title + " (error bars: sd over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m webmill.ablation.report reports/<study>", file=sys.stderr)
        return 2
    try:
        print(f"webmill: report in {write_report(argv[0])}")
    except WebmillError as err:
        print(f"webmill: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
