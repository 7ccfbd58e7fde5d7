"""The card's PNG plots (matplotlib, Agg backend: no display needed). Each function writes one file and
returns nothing; PNGs are written without a software tag so the same data gives the same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from webmill.errors import WebmillError

WIDTH, BAR_HEIGHT, DPI = 7.0, 0.32, 100


def number(value: float) -> str:
    """1,234,567 for large values, 4 significant digits below 1,000 (0.9213, 633.7)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise WebmillError("plots need matplotlib: pip install 'webmill[ablation]' (or pass --no-plots)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    fig.clear()
    _pyplot().close(fig)


def horizontal_bars(labels: list[str], values: list[float], title: str, xlabel: str, path: Path,
                    log: bool = False) -> None:
    """Bars top-down in the given order, each labelled with its value."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, 1.2 + BAR_HEIGHT * len(labels)))
    positions = np.arange(len(labels))
    ax.barh(positions, values, color="#4C72B0")
    ax.set_yticks(positions, labels=[label if len(label) <= 48 else label[:47] + "…" for label in labels])
    ax.invert_yaxis()
    if log and min(values, default=0) > 0:
        ax.set_xscale("log")
    for y, value in zip(positions, values):
        ax.text(value, y, f" {number(float(value))}",
                va="center", fontsize=8)
    ax.set_xlim(right=ax.get_xlim()[1] * (3 if log else 1.15))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    _save(fig, path)


def histogram(values: np.ndarray, title: str, xlabel: str, path: Path, bins: int = 40) -> None:
    """A histogram of documents; on a log axis when the values are positive and span > 2 decades."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6))
    values = values[np.isfinite(values)]
    logarithmic = len(values) > 0 and values.min() > 0 and values.max() / values.min() > 100
    if logarithmic:
        edges = np.logspace(np.log10(values.min()), np.log10(values.max()), bins + 1)
        ax.set_xscale("log")
    else:
        edges = bins
    ax.hist(values, bins=edges, color="#4C72B0", edgecolor="white", linewidth=0.4)
    if len(values):
        median = float(np.median(values))
        ax.axvline(median, color="#C44E52", linestyle="--", linewidth=1)
        ax.text(median, ax.get_ylim()[1] * 0.95, f" median {number(median)}", color="#C44E52", fontsize=8,
                va="top")
    ax.set_title(title)
    ax.set_xlabel(xlabel + (" (log scale)" if logarithmic else ""))
    ax.set_ylabel("documents")
    _save(fig, path)
