"""Line / paragraph deduplication across the corpus, CCNet/C4-style (the steps: `webmill.dedup.lines`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from webmill.dedup import lines  # a module reference: webmill.dedup may be importing this package
from webmill.stages.registry import Barrier, BuildContext, GlobalJob, param, register
from webmill.validate import ParamError


@dataclass
class LineDedupParams:
    unit: Literal["line", "paragraph"] = param("line", "line: split at newlines; paragraph: split at blank lines")
    keep_first: bool = param(True, "true: keep the first occurrence (by input file, position, line number); "
                                   "false: remove every copy of a repeated unit (CCNet)")
    min_chars: int = param(10, "shorter units (after normalisation) are never removed: empty lines, 'Home', ...")
    normalize: bool = param(True, "compare units lower-cased, digits as 0, without punctuation and accents")
    buffer_mb: int = param(64, "memory for line hashes before they are sorted to disk, per task")

    def check(self):
        if self.buffer_mb < 1:
            raise ParamError("buffer_mb", "must be at least 1")


@register("line_dedup", LineDedupParams,
          "remove lines (or paragraphs) repeated across the corpus; drop documents left empty",
          columns={"dedup_lines_removed": "int32"})
def build_line_dedup(params: LineDedupParams, ctx: BuildContext):
    key = lines.UnitKey(params.normalize, params.min_chars)
    return [
        lines.CollectUnits(ctx.work_dir, params.unit, key, buffer_mb=params.buffer_mb),
        Barrier([GlobalJob("resolve", [lines.ResolveUnits(ctx.work_dir, params.keep_first)], tasks=1)]),
        lines.DropUnits(ctx.work_dir, params.unit, ctx.exclusion_writer("line_dedup")),
    ]
