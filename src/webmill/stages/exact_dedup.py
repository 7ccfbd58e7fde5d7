"""Exact deduplication stages: identical documents, and the same URL crawled more than once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from webmill.dedup.keyed import CollectKeys, DropKeyed, ResolveKeys, hash64
from webmill.stages.registry import Barrier, BuildContext, GlobalJob, param, register

SPACES = re.compile(r"\s+")


def _keyed_steps(ctx: BuildContext, stage: str, key_function, reason: str) -> list:
    return [
        CollectKeys(ctx.work_dir, key_function),
        Barrier([GlobalJob("resolve", [ResolveKeys(ctx.work_dir)], tasks=1)]),
        DropKeyed(ctx.work_dir, reason, ctx.exclusion_writer(stage)),
    ]


@dataclass
class ExactDedupParams:
    normalize_whitespace: bool = param(True, "compare texts with runs of whitespace collapsed and ends trimmed")
    lowercase: bool = param(False, "compare texts case-insensitively")


class DocumentKey:
    """Picklable key function: hash of the (normalised) text; the first occurrence survives."""

    def __init__(self, params: ExactDedupParams):
        self.params = params

    def __call__(self, doc):
        text = SPACES.sub(" ", doc.text).strip() if self.params.normalize_whitespace else doc.text
        return [(hash64(text.lower() if self.params.lowercase else text), 0)]


@register("exact_dedup", ExactDedupParams, "drop documents whose text already occurred (first one kept)")
def build_exact_dedup(params: ExactDedupParams, ctx: BuildContext):
    return _keyed_steps(ctx, "exact_dedup", DocumentKey(params), "duplicate_text")


def normalize_url(url: str) -> str:
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def timestamp(date: str | None) -> int:
    if not date:
        return 0
    try:
        return int(datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


@dataclass
class URLDedupParams:
    keep: Literal["newest", "oldest"] = param("newest", "which capture of a URL survives (by WARC date)")


class URLKey:
    """Picklable key function: the normalised URL; preference orders captures by date."""

    def __init__(self, newest: bool):
        self.newest = newest

    def __call__(self, doc):
        url = doc.metadata.get("url")
        if not url:
            return []
        stamp = timestamp(doc.metadata.get("date"))
        return [(hash64(normalize_url(url)), -stamp if self.newest else stamp)]


@register("url_dedup", URLDedupParams, "keep one capture per URL (the newest by default)")
def build_url_dedup(params: URLDedupParams, ctx: BuildContext):
    return _keyed_steps(ctx, "url_dedup", URLKey(params.keep == "newest"), "duplicate_url")
