"""Shared accounting for webmill's own steps: `total`, `forwarded`, `dropped`, `dropped_<reason>`.

These are the stat names datatrove's filters use, so the run summary reads every step the same way.
A dropped document goes to the stage's exclusion writer (if any) with its reason.
"""

from __future__ import annotations

import contextlib

from datatrove.utils.typeshelper import StatHints


class ExclusionMixin:
    exclusion_writer = None

    def exclusions(self, rank: int):
        return self.exclusion_writer if self.exclusion_writer is not None else contextlib.nullcontext()

    def drop(self, doc, reason: str, rank: int) -> None:
        self.stat_update(StatHints.dropped, f"dropped_{reason}")
        if self.exclusion_writer is not None:
            doc.metadata["filter_reason"] = reason
            self.exclusion_writer.write(doc, rank)

    def keep(self, doc):
        self.stat_update(StatHints.forwarded)
        self.update_doc_stats(doc)
        yield doc
