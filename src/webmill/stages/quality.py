"""datatrove's heuristic quality filters (Gopher, C4, FineWeb) as recipe stages.

The filters are datatrove's own; webmill only declares their parameters, so recipes are validated and
`webmill stages` can list them. (datatrove caches word splitting per text, so the filters share one
spaCy pass per document.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from webmill.stages.registry import BuildContext, param, register

LANGUAGE_HELP = "word-tokenizer language (datatrove code: en, de, zh, ...)"


def _build(filter_cls, params, ctx: BuildContext, stage: str):
    return filter_cls(**asdict(params), exclusion_writer=ctx.exclusion_writer(stage))


@dataclass
class GopherQualityParams:
    language: str = param("en", LANGUAGE_HELP)
    min_doc_words: int | None = param(50, "minimum words (non-symbol)")
    max_doc_words: int | None = param(100_000, "maximum words")
    min_avg_word_length: int | None = param(3, "minimum mean word length")
    max_avg_word_length: int | None = param(10, "maximum mean word length")
    max_symbol_word_ratio: float | None = param(0.1, "maximum '#' and '...' per word")
    max_bullet_lines_ratio: float | None = param(0.9, "maximum share of lines starting with a bullet")
    max_ellipsis_lines_ratio: float | None = param(0.3, "maximum share of lines ending with an ellipsis")
    max_non_alpha_words_ratio: float | None = param(0.8, "minimum share of words with a letter (sic)")
    min_stop_words: int | None = param(2, "minimum stop words present")
    stop_words: list[str] | None = param(None, "stop-word list; default: Gopher's English list")


@register("gopher_quality", GopherQualityParams, "Gopher quality rules (word counts, symbols, stop words)")
def build_gopher_quality(params: GopherQualityParams, ctx: BuildContext):
    return _build(GopherQualityFilter, params, ctx, "gopher_quality")


@dataclass
class GopherRepetitionParams:
    language: str = param("en", LANGUAGE_HELP)
    dup_line_frac: float | None = param(0.3, "maximum share of duplicated lines")
    dup_para_frac: float | None = param(0.3, "maximum share of duplicated paragraphs")
    dup_line_char_frac: float | None = param(0.2, "maximum share of characters in duplicated lines")
    dup_para_char_frac: float | None = param(0.2, "maximum share of characters in duplicated paragraphs")


@register("gopher_repetition", GopherRepetitionParams, "Gopher repetition rules (duplicate lines, paragraphs, n-grams)")
def build_gopher_repetition(params: GopherRepetitionParams, ctx: BuildContext):
    return _build(GopherRepetitionFilter, params, ctx, "gopher_repetition")


@dataclass
class C4QualityParams:
    language: str = param("en", LANGUAGE_HELP)
    split_paragraph: bool = param(True, "treat each line as a unit (C4); false: split into sentences")
    remove_citations: bool = param(True, "remove Wikipedia-style [1] citations")
    filter_no_terminal_punct: bool = param(True, "drop lines without terminal punctuation")
    min_num_sentences: int = param(5, "drop documents with fewer sentences")
    min_words_per_line: int = param(3, "drop lines with fewer words")
    max_word_length: int = param(1000, "drop lines with a longer word")
    filter_lorem_ipsum: bool = param(True, "drop documents containing 'lorem ipsum'")
    filter_javascript: bool = param(True, "drop lines mentioning javascript")
    filter_curly_bracket: bool = param(True, "drop documents with '{'")
    filter_policy: bool = param(True, "drop lines about terms of use / cookies / privacy policy")


@register("c4_quality", C4QualityParams, "C4 line and document rules (punctuation, sentences, boilerplate)")
def build_c4_quality(params: C4QualityParams, ctx: BuildContext):
    return _build(C4QualityFilter, params, ctx, "c4_quality")


@dataclass
class FineWebQualityParams:
    language: str = param("en", LANGUAGE_HELP)
    line_punct_thr: float = param(0.12, "minimum share of lines ending in punctuation")
    line_punct_exclude_zero: bool = param(False, "do not drop documents with no punctuated line at all")
    short_line_thr: float = param(0.67, "maximum share of short lines")
    short_line_length: int = param(30, "a line shorter than this is short")
    char_duplicates_ratio: float = param(0.01, "maximum share of characters in duplicated lines")
    new_line_ratio: float = param(0.3, "maximum newlines per word")


@register("fineweb_quality", FineWebQualityParams, "FineWeb rules (line punctuation, short lines, duplicates)")
def build_fineweb_quality(params: FineWebQualityParams, ctx: BuildContext):
    return _build(FineWebQualityFilter, params, ctx, "fineweb_quality")
