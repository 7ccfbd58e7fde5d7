"""Load a quality model folder and score text: P(positive), the probability that a document reads like the
trusted reference text rather than like random web text.

A model folder holds `model.ftz` (quantised) or `model.bin`, and `manifest.json` (how it was trained,
its held-out metrics and the held-out score distribution of the web side, used to estimate a threshold
for a wanted top fraction).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from webmill.errors import WebmillError
from webmill.quality.normalize import LABEL_PREFIX, POSITIVE, normalize

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "quality"
MODEL_NAMES = ("model.ftz", "model.bin")
TRAIN_COMMAND = "webmill quality train --positive FILE... --negative FILE... --out DIR"


def model_file(folder: str | Path) -> Path:
    """The model file in `folder`, or a WebmillError naming the command that makes one."""
    folder = Path(folder)
    for name in MODEL_NAMES:
        if (folder / name).is_file():
            return folder / name
    what = "folder" if not folder.is_dir() else f"model ({' or '.join(MODEL_NAMES)}) in"
    raise WebmillError(f"quality classifier {what} {folder} not found; train one with `{TRAIN_COMMAND}`")


def positive_probability(fasttext_model, line: str) -> float:
    """P(positive) from a loaded fastText model for an already normalised line."""
    labels, probs = fasttext_model.predict(line, k=2)
    for label, prob in zip(labels, probs):
        if label == LABEL_PREFIX + POSITIVE:
            return float(min(max(prob, 0.0), 1.0))
    return 0.0


class QualityModel:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = model_file(self.folder)
        manifest = self.folder / "manifest.json"
        self.manifest: dict = json.loads(manifest.read_text()) if manifest.is_file() else {}
        self._model = None

    @property
    def language(self) -> str | None:
        return self.manifest.get("language")

    @property
    def model(self):
        if self._model is None:
            import fasttext

            fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence its load-time warning
            self._model = fasttext.load_model(str(self.path))
        return self._model

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None  # fastText models are not picklable; each worker loads its own
        return state

    def score(self, text: str) -> float:
        """P(positive) for one document."""
        return self.score_normalized(normalize(text))

    def score_normalized(self, line: str) -> float:
        return positive_probability(self.model, line)

    def threshold_for_top_fraction(self, fraction: float) -> float:
        """Estimated score threshold that keeps the best `fraction` of web documents, from the held-out
        web (negative) scores recorded at training time (an estimate: a corpus differs from that sample)."""
        if not 0.0 < fraction <= 1.0:
            raise WebmillError(f"top_fraction must be in (0, 1], got {fraction}")
        percentiles = self.manifest.get("heldout", {}).get("negative_score_percentiles")
        if not percentiles:
            raise WebmillError(f"{self.folder}/manifest.json has no held-out score distribution; retrain with "
                               f"`{TRAIN_COMMAND}` or give a threshold instead")
        return float(np.interp(100.0 * (1.0 - fraction), np.linspace(0, 100, len(percentiles)), percentiles))
