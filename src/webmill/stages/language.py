"""Language identification with the fastText `lid.176.ftz` model shipped in the package (offline).

datatrove's `LanguageFilter` downloads `lid.176.bin` at run time; webmill never downloads anything.
Every document gets `language` and `language_score`; the filter keeps an allow-list above a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.filters.base_filter import BaseFilter

from webmill.errors import WebmillError
from webmill.stages.registry import BuildContext, param, register

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "lid.176.ftz"


def load_fasttext(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise WebmillError(f"fastText model not found: {path}")
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence its load-time warning
    return fasttext.load_model(str(path))


@dataclass
class LanguageParams:
    languages: list[str] | None = param(None, "ISO 639 codes to keep (e.g. [en, de]); null keeps every language")
    min_score: float = param(0.65, "drop documents whose top language scores below this")
    model: str | None = param(None, "path to a fastText LID model; default: the shipped lid.176.ftz")


class LanguageID(BaseFilter):
    name = "🌍 language id"

    def __init__(self, params: LanguageParams, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.params = params
        self.model_path = Path(params.model) if params.model else SHIPPED_MODEL
        if not self.model_path.is_file():
            raise WebmillError(f"fastText language-ID model not found: {self.model_path}")
        self.allowed = set(params.languages) if params.languages else None
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = load_fasttext(self.model_path)
        return self._model

    def predict(self, text: str) -> tuple[str, float]:
        labels, scores = self.model.predict(" ".join(text.split()), k=1)
        if not labels:
            return "unknown", 0.0
        return labels[0].removeprefix("__label__"), min(float(scores[0]), 1.0)

    def filter(self, doc):
        language, score = self.predict(doc.text)
        doc.metadata["language"] = language
        doc.metadata["language_score"] = round(score, 4)
        if self.allowed is not None and language not in self.allowed:
            return False, "language_not_allowed"
        if score < self.params.min_score:
            return False, "language_score_too_low"
        return True


@register("language", LanguageParams, "fastText language ID (shipped lid.176 model), allow-list + threshold",
          columns={"language": "string", "language_score": "float32"})
def build_language(params: LanguageParams, ctx: BuildContext):
    return LanguageID(params, ctx.exclusion_writer("language"))
