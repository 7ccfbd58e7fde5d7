"""Remove (or flag) documents that contain text of the shipped evaluation sets, so that a model trained on
the corpus is not scored on what it has read. The n-gram rule is `webmill.decontamination`'s.

Stats: `contaminated` documents, and `matched_<set>` for every evaluation set (a document matching two
sets counts in both), so the data card can say which benchmarks leaked into the crawl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from webmill.decontamination import EvalNgramIndex
from webmill.stages.exclusions import ExclusionMixin
from webmill.stages.registry import BuildContext, param, register

_INDEXES: dict[tuple, EvalNgramIndex] = {}  # per process: settings -> index (built once, reused by tasks)


def shared_index(n: int, sets: list[str] | None, min_words: int) -> EvalNgramIndex:
    key = (n, tuple(sets) if sets is not None else None, min_words)
    if key not in _INDEXES:
        _INDEXES[key] = EvalNgramIndex(n, sets, min_words=min_words)
    return _INDEXES[key]


def counter_name(eval_set: str) -> str:
    return "matched_" + re.sub(r"[^a-z0-9_]+", "_", eval_set.lower())


@dataclass
class DecontaminateParams:
    n: int = param(13, "word n-gram length; a document sharing one n-gram with an evaluation text is contaminated")
    sets: list[str] | None = param(None, "evaluation sets to check (names or family prefixes such as arc, blimp); "
                                         "null: every shipped set")
    action: Literal["drop", "flag"] = param("drop", "drop: remove contaminated documents; flag: keep them and add "
                                                    "`contaminated_with` (set names) to their metadata")
    min_words: int = param(8, "evaluation texts shorter than n words are used whole if they have at least this "
                              "many words, else ignored")


class Decontaminate(ExclusionMixin, PipelineStep):
    type = "🔻 - FILTER"
    name = "🧪 decontaminate"

    def __init__(self, params: DecontaminateParams, exclusion_writer=None, index: EvalNgramIndex | None = None):
        """`index`: an index of other texts than the shipped evaluation sets (it travels with the step)."""
        super().__init__()
        self.params = params
        self.exclusion_writer = exclusion_writer
        self.given_index = index
        if index is None:
            shared_index(params.n, params.sets, params.min_words)  # unknown sets or missing eval data fail now

    @property
    def index(self) -> EvalNgramIndex:
        # the shipped index is rebuilt (or reused) in each worker process rather than pickled with every task
        if self.given_index is not None:
            return self.given_index
        return shared_index(self.params.n, self.params.sets, self.params.min_words)

    def run(self, data, rank: int = 0, world_size: int = 1):
        index = self.index
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                with self.track_time():
                    matched = index.matches(doc.text)
                if not matched:
                    yield from self.keep(doc)
                    continue
                self.stat_update("contaminated")
                for eval_set in matched:
                    self.stat_update(counter_name(eval_set))
                doc.metadata["contaminated_with"] = matched
                if self.params.action == "drop":
                    self.drop(doc, "contaminated", rank)
                else:
                    yield from self.keep(doc)


@register("decontaminate", DecontaminateParams,
          "drop or flag documents sharing a word 13-gram with the shipped evaluation sets")
def build_decontaminate(params: DecontaminateParams, ctx: BuildContext):
    return Decontaminate(params, ctx.exclusion_writer("decontaminate"))
