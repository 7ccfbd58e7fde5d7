"""DCLM-style model-based filtering: a fastText classifier (`webmill quality train`) scores each document
with P(positive) — how much it reads like trusted reference text rather than random web text — and
documents below a threshold are dropped.

A streaming stage cannot know the corpus-wide top fraction, so `top_fraction` is turned into a threshold
from the held-out web scores recorded in the model's manifest: an estimate, exact only if the corpus
scores like the model's own web sample. Documents whose `language` (from the `language` stage) differs
from the model's pass through unscored, counted as `other_language`.
"""

from __future__ import annotations

from dataclasses import dataclass

from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from webmill.errors import WebmillError
from webmill.quality.score import SHIPPED_MODEL, QualityModel
from webmill.stages.exclusions import ExclusionMixin
from webmill.stages.registry import BuildContext, param, register


@dataclass
class QualityClassifierParams:
    model: str | None = param(None, "folder with model.ftz/model.bin + manifest.json (webmill quality train); "
                                    "default: the shipped English model")
    threshold: float | None = param(None, "keep documents with P(positive) >= this; null: 0.5 unless top_fraction")
    top_fraction: float | None = param(None, "instead of threshold: keep about this share of web documents (threshold "
                                             "estimated from the model's held-out web scores)")


class QualityClassifier(ExclusionMixin, PipelineStep):
    type = "🔻 - FILTER"
    name = "🏅 quality classifier"

    def __init__(self, params: QualityClassifierParams, exclusion_writer=None):
        super().__init__()
        self.params = params
        self.exclusion_writer = exclusion_writer
        self.scorer = QualityModel(params.model if params.model else SHIPPED_MODEL)
        if params.threshold is not None and params.top_fraction is not None:
            raise WebmillError("quality_classifier: give threshold or top_fraction, not both")
        if params.top_fraction is not None:
            self.threshold = self.scorer.threshold_for_top_fraction(params.top_fraction)
        else:
            self.threshold = 0.5 if params.threshold is None else params.threshold
        if not 0.0 <= self.threshold <= 1.0:
            raise WebmillError(f"quality_classifier: threshold must be between 0 and 1, got {self.threshold}")

    def run(self, data, rank: int = 0, world_size: int = 1):
        language = self.scorer.language
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                doc_language = doc.metadata.get("language")
                if language and doc_language and doc_language != language:
                    self.stat_update("other_language")
                    yield from self.keep(doc)
                    continue
                with self.track_time():
                    score = self.scorer.score(doc.text)
                doc.metadata["quality_score"] = round(score, 4)
                self.stat_update("scored")
                if score < self.threshold:
                    self.drop(doc, "quality_score_too_low", rank)
                else:
                    yield from self.keep(doc)


@register("quality_classifier", QualityClassifierParams,
          "fastText quality classifier (DCLM-style): keep documents that read like trusted reference text",
          columns={"quality_score": "float32"})
def build_quality_classifier(params: QualityClassifierParams, ctx: BuildContext):
    return QualityClassifier(params, ctx.exclusion_writer("quality_classifier"))
