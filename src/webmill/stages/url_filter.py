"""datatrove's URL filter (block-lists shipped inside datatrove) with the domain parser kept offline.

datatrove's filter parses its block-lists (4.5 M domains, ~2-4 s, ~670 MB) in every task, because each
task gets a fresh copy of the step. Here the parsed lists are kept once per worker process and reused
by every task that process runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from datatrove.pipeline.filters import URLFilter

from webmill.stages.registry import BuildContext, param, register


_PARSED_LISTS: dict[tuple, dict] = {}  # per process: list settings -> the parsed lists
LIST_ATTRIBUTES = ("block_listed_domains", "block_listed_url", "banned_words", "banned_subwords",
                   "soft_banned_words", "banned_subwords_automaton")


class OfflineURLFilter(URLFilter):
    name = "😈 url filter"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        from tldextract import TLDExtract

        # the default TLDExtract fetches the public-suffix list over the network; use its bundled snapshot
        self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)
        self._lists_key = tuple(sorted((k, tuple(sorted(v)) if isinstance(v, (list, set, tuple)) else v)
                                       for k, v in kwargs.items() if k != "exclusion_writer"))

    def download_data(self):
        if self._downloaded or not self.use_integrated_lists:
            return
        cached = _PARSED_LISTS.get(self._lists_key)
        if cached is None:
            super().download_data()
            _PARSED_LISTS[self._lists_key] = {name: getattr(self, name) for name in LIST_ATTRIBUTES}
        else:
            for name, value in cached.items():
                setattr(self, name, value)
            self._downloaded = True

    def filter(self, document):
        if not document.metadata.get("url"):
            self.stat_update("no_url")  # text input without URLs: nothing to judge, keep it
            return True
        return super().filter(document)


@dataclass
class URLFilterParams:
    soft_word_threshold: int = param(2, "drop URLs with at least this many 'soft' banned words")
    extra_domains: list[str] | None = param(None, "more domains to block")
    extra_urls: list[str] | None = param(None, "more exact URLs to block")
    banned_words: list[str] | None = param(None, "more words that block a URL")
    banned_subwords: list[str] | None = param(None, "more substrings that block a URL")
    soft_banned_words: list[str] | None = param(None, "more 'soft' words")
    use_integrated_lists: bool = param(True, "use datatrove's shipped block-lists (offline)")


@register("url_filter", URLFilterParams, "URL block-lists (domains, URLs, banned words), offline")
def build_url_filter(params: URLFilterParams, ctx: BuildContext):
    from dataclasses import asdict

    return OfflineURLFilter(**asdict(params), exclusion_writer=ctx.exclusion_writer("url_filter"))
