"""HTML → main text with trafilatura, under a size guard and a per-document time limit.

Why not datatrove's `Trafilatura` step: it runs every page through a pipe to a child process (≈14 %
slower on one core) and does not count timeouts and errors as drops. Here the time limit is a SIGALRM
timer when the step runs on a process's main thread (local and Slurm executors); elsewhere (e.g. a Ray
worker thread) it falls back to datatrove's sandboxed child process. trafilatura's own cross-document
`deduplicate` cache is off by default: it makes a page's text depend on which pages the same worker saw
before, so the output would change with the task count.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger
from datatrove.utils.typeshelper import StatHints

from webmill.stages.registry import BuildContext, param, register
from webmill.stages.exclusions import ExclusionMixin


class ExtractionTimeout(BaseException):
    """BaseException, so that trafilatura's own `except Exception` blocks cannot swallow it."""


@contextmanager
def time_limit(seconds: float):
    """Raise ExtractionTimeout in the block once `seconds` have passed. The alarm repeats every 50 ms:
    an exception raised while Python runs a finaliser (`__del__`, GC) is swallowed, so one alarm alone
    can be lost; and if the block still returns late, that counts as a timeout too."""

    def on_alarm(signum, frame):
        raise ExtractionTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    deadline = time.monotonic() + seconds
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    finally:
        while True:  # disarm even if a last alarm lands right here
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except ExtractionTimeout:
                continue
    if time.monotonic() > deadline:
        raise ExtractionTimeout()


def trafilatura_extract(html: str, fast: bool, favor_precision: bool, include_tables: bool,
                        deduplicate: bool) -> str | None:
    from trafilatura import extract

    return extract(html, fast=fast, favor_precision=favor_precision, include_comments=False,
                   include_tables=include_tables, deduplicate=deduplicate)


@dataclass
class ExtractParams:
    timeout_s: float = param(1.0, "per-page time limit; slower pages are dropped as 'timeout'")
    max_html_bytes: int = param(5_000_000, "larger pages are dropped as 'html_too_large' before parsing")
    fast: bool = param(False, "trafilatura without its fallback extractors: ~2x faster, slightly lower recall")
    favor_precision: bool = param(True, "prefer less but cleaner text (datatrove's default)")
    include_tables: bool = param(True, "keep the text of HTML tables")
    deduplicate: bool = param(False, "trafilatura's cross-page segment cache (makes output order-dependent)")


class Extract(ExclusionMixin, PipelineStep):
    type = "🛢 - EXTRAC"
    name = "⛏ trafilatura"

    def __init__(self, params: ExtractParams, exclusion_writer=None):
        super().__init__()
        self.params = params
        self.exclusion_writer = exclusion_writer

    def _extract(self, html: str) -> str | None:
        p = self.params
        return trafilatura_extract(html, p.fast, p.favor_precision, p.include_tables, p.deduplicate)

    def run(self, data, rank: int = 0, world_size: int = 1):
        # trafilatura imports and compiles lazily on its first page: do that outside any page's time limit
        self._extract("<html><body><article><p>warm-up</p></article></body></html>")
        if threading.current_thread() is threading.main_thread():
            yield from self._run(data, rank, self._extract_with_alarm)
            return
        from datatrove.pipeline.extractors.base import ExtractorSandbox

        with ExtractorSandbox(timeout=self.params.timeout_s) as sandbox:
            yield from self._run(data, rank, lambda html: sandbox.process_document(html, self._extract))

    def _extract_with_alarm(self, html: str):
        try:
            with time_limit(self.params.timeout_s):
                return self._extract(html)
        except ExtractionTimeout:
            raise TimeoutError from None

    def _run(self, data, rank, extract_fn):
        with self.exclusions(rank):
            for doc in data:
                self.stat_update(StatHints.total)
                if doc.metadata.get("content_kind") == "text":  # WET or text input: nothing to extract
                    self.stat_update("already_text")
                    yield from self.keep(doc)
                    continue
                html_bytes = len(doc.text.encode("utf-8", errors="ignore"))
                if html_bytes > self.params.max_html_bytes:
                    self.drop(doc, "html_too_large", rank)
                    continue
                with self.track_time():
                    try:
                        text = extract_fn(doc.text)
                    except TimeoutError:
                        logger.warning(f"extraction timed out after {self.params.timeout_s}s: {doc.metadata.get('url')}")
                        self.drop(doc, "timeout", rank)
                        continue
                    except EOFError:
                        self.drop(doc, "extractor_died", rank)
                        continue
                    except Exception as err:  # trafilatura/lxml errors on odd pages cost that page only
                        logger.warning(f"extraction failed ({type(err).__name__}: {err}): {doc.metadata.get('url')}")
                        self.drop(doc, "extract_error", rank)
                        continue
                if not text or not text.strip():
                    self.drop(doc, "no_text_extracted", rank)
                    continue
                doc.metadata["html_bytes"] = html_bytes
                doc.metadata["content_kind"] = "text"
                doc.text = text
                yield from self.keep(doc)


@register("extract", ExtractParams, "HTML → main text (trafilatura) with a time limit and size guard",
          columns={"html_bytes": "int64"})
def build_extract(params: ExtractParams, ctx: BuildContext):
    return Extract(params, ctx.exclusion_writer("extract"))
