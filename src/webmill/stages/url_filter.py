"""datatrove's URL filter (block-lists shipped inside datatrove) with the domain parser kept offline."""

from __future__ import annotations

from dataclasses import dataclass

from datatrove.pipeline.filters import URLFilter

from webmill.stages.registry import BuildContext, param, register


class OfflineURLFilter(URLFilter):
    name = "😈 url filter"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        from tldextract import TLDExtract

        # the default TLDExtract fetches the public-suffix list over the network; use its bundled snapshot
        self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)

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
