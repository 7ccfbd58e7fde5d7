"""RefinedWeb-style line-wise corrections (Penedo et al., 2023, "The RefinedWeb dataset", appendix G).

Extraction leaves interface debris inside otherwise good pages: like counters, "Sign in", "Read more",
lines in capitals, lone numbers. Each line is checked; flagged lines are removed. When the removed lines
hold more than `max_removed_words_ratio` of the document's words the page is mostly debris and is
dropped. datatrove has no equivalent block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from webmill.stages.exclusions import ExclusionMixin
from webmill.stages.registry import BuildContext, param, register

COUNTER = re.compile(
    r"^\W*\d[\d.,]*\s*[kKmM]?\s*(likes?|shares?|comments?|retweets?|followers?|views?|replies|reply|votes?|"
    r"points?|reviews?|ratings?|subscribers?|reactions?|tweets?|pins?|answers?)\W*$",
    re.IGNORECASE,
)
NUMERIC = re.compile(r"^[\W\d_]+$")
# short interface phrases: at the start of a line, at its end, or anywhere in it
START = re.compile(r"^\W*(sign in|sign up|log in|login|register|subscribe|share this|share on|follow us|"
                   r"skip to|jump to|back to top|print this|email this|tweet this)\b", re.IGNORECASE)
END = re.compile(r"\b(read more|continue reading|more\.\.\.|click here|see more|show more|load more|"
                 r"view all|learn more)\W*$", re.IGNORECASE)
ANYWHERE = re.compile(r"\b(items? in (your )?cart|add to (cart|basket|wishlist)|cookie settings|"
                      r"accept (all )?cookies|all rights reserved|javascript is disabled|"
                      r"enable javascript|posted by|permalink)\b", re.IGNORECASE)


def line_flag(line: str, max_pattern_words: int, min_upper_ratio: float) -> str | None:
    """Why a line should go, or None to keep it."""
    stripped = line.strip()
    if not stripped:
        return None
    words = stripped.split()
    letters = [c for c in stripped if c.isalpha()]
    if letters and len(letters) >= 5 and sum(c.isupper() for c in letters) / len(letters) >= min_upper_ratio:
        return "uppercase"
    if NUMERIC.match(stripped):
        return "numeric"
    if COUNTER.match(stripped):
        return "counter"
    if len(words) == 1 and not stripped[-1:] in ".!?":
        return "single_word"
    if len(words) <= max_pattern_words and (START.search(stripped) or END.search(stripped) or ANYWHERE.search(stripped)):
        return "interface_phrase"
    return None


@dataclass
class RefinedWebLinesParams:
    max_removed_words_ratio: float = param(0.05, "drop the document when removed lines hold more of its words")
    max_pattern_words: int = param(10, "interface phrases are removed only from lines this short")
    min_upper_ratio: float = param(0.9, "a line whose letters are at least this upper-case is removed")


class RefinedWebLines(ExclusionMixin, PipelineStep):
    type = "✂️ - FORMAT"
    name = "✂ refinedweb lines"

    def __init__(self, params: RefinedWebLinesParams, exclusion_writer=None):
        super().__init__()
        self.params = params
        self.exclusion_writer = exclusion_writer

    def correct(self, text: str) -> tuple[str, int, float]:
        """Return (corrected text, lines removed, share of words removed)."""
        kept, removed_lines, removed_words, total_words = [], 0, 0, 0
        for line in text.split("\n"):
            n_words = len(line.split())
            total_words += n_words
            reason = line_flag(line, self.params.max_pattern_words, self.params.min_upper_ratio)
            if reason is None:
                kept.append(line)
            else:
                removed_lines += 1
                removed_words += n_words
                self.stat_update(f"line_{reason}")
        return "\n".join(kept).strip(), removed_lines, removed_words / max(total_words, 1)

    def run(self, data, rank: int = 0, world_size: int = 1):
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                with self.track_time():
                    text, removed_lines, removed_share = self.correct(doc.text)
                doc.metadata["lines_removed"] = removed_lines
                if removed_share > self.params.max_removed_words_ratio or not text:
                    self.drop(doc, "too_many_lines_removed", rank)
                    continue
                if removed_lines:
                    self.stat_update("changed")
                    doc.text = text
                yield from self.keep(doc)


@register("refinedweb_lines", RefinedWebLinesParams, "RefinedWeb line-wise corrections (counters, UI phrases)",
          columns={"lines_removed": "int32"})
def build_refinedweb_lines(params: RefinedWebLinesParams, ctx: BuildContext):
    return RefinedWebLines(params, ctx.exclusion_writer("refinedweb_lines"))
