"""Data cards: a finished run's statistics and data → a Hugging Face dataset card with plots.

`collect` gathers the facts (streaming the Parquet files), `plots` draws the PNGs, `render` writes the
card. `make_card` does all three.
"""

from __future__ import annotations

from pathlib import Path

from webmill.cards.collect import collect
from webmill.cards.render import ASSETS, write_card


def make_card(output_dir: Path | str, out: Path | str | None = None, license_id: str = "other",
              sample: int = 100_000, with_plots: bool = True) -> Path:
    """Write README.md (+ card_assets/*.png) for the run in output_dir, into out (default: output_dir)."""
    output_dir = Path(output_dir)
    facts = collect(output_dir, sample=sample)
    return write_card(facts, Path(out) if out else output_dir, license_id=license_id, with_plots=with_plots)


__all__ = ["ASSETS", "collect", "make_card", "write_card"]
