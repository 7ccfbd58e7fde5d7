"""Line-level language identification, as OSCAR's ungoliant pipeline does it (Abadji et al., 2022).

Web pages mix languages: a Russian article with an English menu, a bilingual notice. Instead of one
label per page, every line long enough to be identified gets its own fastText label; the document's
language is the one holding the most bytes among its identified lines, and only the lines in that
language are kept. Lines shorter than `min_line_chars` (ungoliant: 100 characters) and lines whose best
label scores below `min_line_score` are removed, as they cannot be identified reliably.

Each kept document gets `language` (the majority language), `language_score` (the byte-weighted mean
score of its kept lines), `lid_lines_removed`, and `language_shares` in its metadata: each identified
language's share of the identified bytes, before removal. A document with no line left is dropped
(`no_lines_left`); one whose language is not in `languages` is dropped (`language_not_allowed`).
Uses the same shipped `lid.176.ftz` model as the `language` stage (offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from webmill.errors import WebmillError
from webmill.stages.exclusions import ExclusionMixin
from webmill.stages.language import SHIPPED_MODEL, load_fasttext
from webmill.stages.registry import BuildContext, param, register


@dataclass
class LineLanguageParams:
    languages: list[str] | None = param(None, "keep documents whose majority language is one of these; null: all")
    min_line_chars: int = param(100, "lines shorter than this many characters are removed (ungoliant: 100)")
    min_line_score: float = param(0.8, "a line whose top label scores below this is unidentified and removed")
    model: str | None = param(None, "path to a fastText LID model; default: the shipped lid.176.ftz")


@dataclass
class LineVerdict:
    """What line-level identification decided for one document."""

    language: str | None
    score: float
    text: str
    shares: dict[str, float]
    removed: dict[str, int]  # reason -> lines


class LineLanguageID(ExclusionMixin, PipelineStep):
    type = "🌍 - LID"
    name = "🌍 line language id"

    def __init__(self, params: LineLanguageParams, exclusion_writer=None):
        super().__init__()
        if params.min_line_chars < 1:
            raise WebmillError(f"line_language: min_line_chars must be at least 1 (got {params.min_line_chars})")
        if not 0.0 <= params.min_line_score <= 1.0:
            raise WebmillError(f"line_language: min_line_score must be between 0 and 1 (got {params.min_line_score})")
        self.params = params
        self.model_path = Path(params.model) if params.model else SHIPPED_MODEL
        if not self.model_path.is_file():
            raise WebmillError(f"fastText language-ID model not found: {self.model_path}")
        self.allowed = set(params.languages) if params.languages else None
        self.exclusion_writer = exclusion_writer
        self._model = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None  # fastText models are not picklable; each worker loads its own
        return state

    @property
    def model(self):
        if self._model is None:
            self._model = load_fasttext(self.model_path)
        return self._model

    def identify(self, text: str) -> LineVerdict:
        removed = {"short": 0, "unidentified": 0, "other_language": 0}
        candidates = []
        for line in text.split("\n"):
            stripped = line.strip()
            if not stripped:
                continue  # blank lines are layout, not content: not counted
            if len(stripped) < self.params.min_line_chars:
                removed["short"] += 1
            else:
                candidates.append(stripped)
        labelled = []  # (line, language, score, bytes)
        if candidates:
            labels, scores = self.model.predict(candidates, k=1)
            for line, label, score in zip(candidates, labels, scores):
                score = min(float(score[0]), 1.0) if len(score) else 0.0
                if not label or score < self.params.min_line_score:
                    removed["unidentified"] += 1
                    continue
                labelled.append((line, label[0].removeprefix("__label__"), score, len(line.encode("utf-8"))))
        by_language: dict[str, int] = {}
        for _, language, _, size in labelled:
            by_language[language] = by_language.get(language, 0) + size
        if not by_language:
            return LineVerdict(None, 0.0, "", {}, removed)
        total = sum(by_language.values())
        # most bytes wins; ties go to the smaller code so the choice never depends on line order
        ranked = sorted(by_language.items(), key=lambda item: (-item[1], item[0]))
        majority = ranked[0][0]
        kept = [(line, score, size) for line, language, score, size in labelled if language == majority]
        removed["other_language"] = len(labelled) - len(kept)
        score = sum(s * size for _, s, size in kept) / sum(size for _, _, size in kept)
        shares = {language: round(size / total, 4) for language, size in ranked}
        return LineVerdict(majority, round(score, 4), "\n".join(line for line, _, _ in kept), shares, removed)

    def run(self, data, rank: int = 0, world_size: int = 1):
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                with self.track_time():
                    verdict = self.identify(doc.text)
                for reason, count in verdict.removed.items():
                    if count:
                        self.stat_update(f"lines_removed_{reason}", value=count)
                lines_removed = sum(verdict.removed.values())
                doc.metadata["lid_lines_removed"] = lines_removed
                if verdict.language is None:
                    self.drop(doc, "no_lines_left", rank)
                    continue
                doc.metadata["language"] = verdict.language
                doc.metadata["language_score"] = verdict.score
                doc.metadata["language_shares"] = verdict.shares
                if self.allowed is not None and verdict.language not in self.allowed:
                    self.drop(doc, "language_not_allowed", rank)
                    continue
                if lines_removed:
                    self.stat_update("changed")
                    doc.text = verdict.text
                self.stat_update("lines_kept", value=verdict.text.count("\n") + 1)
                yield from self.keep(doc)


@register("line_language", LineLanguageParams,
          "OSCAR-like line-level fastText LID: keeps the lines in the document's majority language",
          columns={"language": "string", "language_score": "float32", "lid_lines_removed": "int32"})
def build_line_language(params: LineLanguageParams, ctx: BuildContext):
    return LineLanguageID(params, ctx.exclusion_writer("line_language"))
