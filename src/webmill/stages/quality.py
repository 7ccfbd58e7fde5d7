"""datatrove's heuristic quality filters (Gopher, C4, FineWeb) as recipe stages.

The filters are datatrove's own; webmill only declares their parameters, so recipes are validated and
`webmill stages` can list them. (datatrove caches word splitting per text, so the filters share one
spaCy pass per document.)

`per_language: true` adapts them to each document's `language` (set by a `language` or `line_language`
stage; documents without one use the stage's `language`):
- words are split by that language's datatrove word tokenizer. Languages written without spaces (zh, ja,
  th, ...) whose segmenter is not installed (datatrove would fall back to splitting on spaces and
  punctuation, making a whole Chinese clause one "word") are split into characters of those scripts;
  any other language without a working tokenizer uses datatrove's multilingual fallback;
- Gopher quality's stop-word rule uses the language's list below (its most frequent function words, in
  the spirit of Gopher's English list); for a language without a list the rule is skipped and counted
  (`stop_words_unavailable`), never applied with English words. A recipe's own `stop_words` wins;
- Gopher quality's mean-word-length bounds are skipped for languages written without spaces (their words
  are one or two characters long, segmented or not), and Gopher repetition's word n-gram rules for
  character-split languages (counted: `ngram_rules_skipped`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import regex

from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from datatrove.utils.word_tokenizers import WhitespaceTokenizer, WordTokenizer, load_word_tokenizer

from webmill.stages.registry import BuildContext, param, register

LANGUAGE_HELP = "word-tokenizer language (datatrove code: en, de, zh, ...); with per_language: the fallback"
PER_LANGUAGE_HELP = "use each document's `language` to pick the word tokenizer (and Gopher stop words)"

# Gopher's English list (datatrove's default) and, for other languages, their most frequent function words
STOP_WORDS: dict[str, list[str]] = {
    "en": ["the", "be", "to", "of", "and", "that", "have", "with"],
    "de": ["der", "die", "das", "und", "zu", "von", "mit", "ist"],
    "fr": ["le", "la", "les", "de", "des", "et", "est", "que"],
    "es": ["el", "la", "de", "que", "y", "en", "los", "es"],
    "it": ["il", "di", "che", "e", "la", "per", "un", "è"],
    "pt": ["o", "a", "de", "que", "e", "do", "da", "em"],
    "nl": ["de", "het", "een", "en", "van", "is", "dat", "te"],
    "sv": ["och", "i", "att", "det", "som", "en", "på", "är"],
    "pl": ["i", "w", "nie", "na", "się", "z", "to", "że"],
    "ru": ["и", "в", "не", "на", "что", "с", "по", "это"],
    "uk": ["і", "в", "на", "не", "що", "з", "та", "до"],
    "tr": ["ve", "bir", "bu", "da", "de", "için", "ile", "çok"],
    "id": ["yang", "dan", "di", "ini", "itu", "dengan", "untuk", "dari"],
    "ar": ["في", "من", "على", "أن", "إلى", "عن", "التي", "هذا"],
    "hi": ["के", "है", "में", "की", "और", "का", "को", "से"],
    "zh": ["的", "是", "在", "了", "和", "有", "不", "这"],
    "ja": ["の", "に", "は", "を", "た", "が", "で", "て"],
}
# fastText codes of languages written without spaces between words
NO_SPACE_LANGUAGES = {"zh", "ja", "th", "lo", "km", "my", "bo", "dz", "wuu", "yue"}
NO_SPACE_CHARS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"


class ScriptCharTokenizer(WhitespaceTokenizer):
    """Words of unspaced scripts are single characters; other text splits on spaces and punctuation.
    Sentences split at terminal punctuation, including 。！？ (datatrove's whitespace fallback)."""

    # a character keeps its combining marks (Thai vowels and tones)
    WORD = regex.compile(rf"[{NO_SPACE_CHARS}]\p{{M}}*|[^\s{NO_SPACE_CHARS}\p{{P}}\p{{S}}]+|[\p{{P}}\p{{S}}]")

    def word_tokenize(self, text: str) -> list[str]:
        return self.WORD.findall(text)


def _is_segmenter(tokenizer: WordTokenizer) -> bool:
    """datatrove assigns some unspaced languages (zh) its space-and-punctuation fallback: not a segmenter."""
    return not isinstance(tokenizer, WhitespaceTokenizer) and getattr(tokenizer, "language", None) != "xx"


@lru_cache(maxsize=None)
def word_tokenizer(language: str) -> tuple[WordTokenizer | str, bool]:
    """The tokenizer for a language (or its datatrove code) and whether it splits into characters.
    A tokenizer whose dependency is missing is found out here, once, by splitting a probe text."""
    try:
        tokenizer = load_word_tokenizer(language)
        tokenizer.word_tokenize("probe text")
        usable = True
    except (ImportError, ValueError, OSError):
        tokenizer, usable = None, False
    if language in NO_SPACE_LANGUAGES and not (usable and _is_segmenter(tokenizer)):
        return ScriptCharTokenizer(), True
    if not usable:
        return WhitespaceTokenizer(), False
    return language, False


class PerLanguage:
    """Mixin for datatrove filters: before each document, set the attributes its language calls for."""

    def setup_per_language(self, enabled: bool) -> None:
        self.per_language = enabled
        self.default_language = self.language
        self._base = {"language": self.language}
        self._settings: dict[str, dict] = {}

    def settings_for(self, language: str) -> dict:
        tokenizer, _ = word_tokenizer(language)
        return {"language": tokenizer}

    def filter(self, doc):
        if self.per_language:
            language = doc.metadata.get("language") or self.default_language
            if language not in self._settings:
                self._settings[language] = self._base | self.settings_for(language)
            for name, value in self._settings[language].items():
                setattr(self, name, value)
        return super().filter(doc)


class PerLanguageGopherQuality(PerLanguage, GopherQualityFilter):
    def setup_per_language(self, enabled: bool, custom_stop_words: bool) -> None:
        super().setup_per_language(enabled)
        self.custom_stop_words = custom_stop_words
        for name in ("stop_words", "min_stop_words", "min_avg_word_length", "max_avg_word_length"):
            self._base[name] = getattr(self, name)

    def settings_for(self, language: str) -> dict:
        settings = super().settings_for(language)
        if language in NO_SPACE_LANGUAGES:  # words of one or two characters, segmented or not
            settings |= {"min_avg_word_length": None, "max_avg_word_length": None}
        if not self.custom_stop_words:
            words = STOP_WORDS.get(language)
            settings |= {"stop_words": set(words)} if words else {"min_stop_words": None}
        return settings

    def filter(self, doc):
        result = super().filter(doc)
        if self.per_language and self.min_stop_words is None and self._base["min_stop_words"]:
            self.stat_update("stop_words_unavailable")
        return result


class PerLanguageGopherRepetition(PerLanguage, GopherRepetitionFilter):
    """Word n-gram rules are skipped for character-split languages: Gopher's fractions were set for word
    n-grams, and character n-grams repeat far more often in ordinary text (line and paragraph rules stay)."""

    def setup_per_language(self, enabled: bool) -> None:
        super().setup_per_language(enabled)
        self._base |= {"top_n_grams": self.top_n_grams, "dup_n_grams": self.dup_n_grams}

    def settings_for(self, language: str) -> dict:
        settings = super().settings_for(language)
        _, by_character = word_tokenizer(language)
        return settings | ({"top_n_grams": (), "dup_n_grams": ()} if by_character else {})

    def filter(self, doc):
        result = super().filter(doc)
        if self.per_language and not self.dup_n_grams and self._base["dup_n_grams"]:
            self.stat_update("ngram_rules_skipped")
        return result


class PerLanguageC4Quality(PerLanguage, C4QualityFilter):
    pass


class PerLanguageFineWebQuality(PerLanguage, FineWebQualityFilter):
    pass


def _build(filter_cls, params, ctx: BuildContext, stage: str):
    options = asdict(params)
    per_language = options.pop("per_language")
    step = filter_cls(**options, exclusion_writer=ctx.exclusion_writer(stage))
    if filter_cls is PerLanguageGopherQuality:
        step.setup_per_language(per_language, custom_stop_words=params.stop_words is not None)
    else:
        step.setup_per_language(per_language)
    return step


@dataclass
class GopherQualityParams:
    language: str = param("en", LANGUAGE_HELP)
    per_language: bool = param(False, PER_LANGUAGE_HELP)
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
    return _build(PerLanguageGopherQuality, params, ctx, "gopher_quality")


@dataclass
class GopherRepetitionParams:
    language: str = param("en", LANGUAGE_HELP)
    per_language: bool = param(False, PER_LANGUAGE_HELP)
    dup_line_frac: float | None = param(0.3, "maximum share of duplicated lines")
    dup_para_frac: float | None = param(0.3, "maximum share of duplicated paragraphs")
    dup_line_char_frac: float | None = param(0.2, "maximum share of characters in duplicated lines")
    dup_para_char_frac: float | None = param(0.2, "maximum share of characters in duplicated paragraphs")


@register("gopher_repetition", GopherRepetitionParams, "Gopher repetition rules (duplicate lines, paragraphs, n-grams)")
def build_gopher_repetition(params: GopherRepetitionParams, ctx: BuildContext):
    return _build(PerLanguageGopherRepetition, params, ctx, "gopher_repetition")


@dataclass
class C4QualityParams:
    language: str = param("en", LANGUAGE_HELP)
    per_language: bool = param(False, PER_LANGUAGE_HELP)
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
    return _build(PerLanguageC4Quality, params, ctx, "c4_quality")


@dataclass
class FineWebQualityParams:
    language: str = param("en", LANGUAGE_HELP)
    per_language: bool = param(False, PER_LANGUAGE_HELP)
    line_punct_thr: float = param(0.12, "minimum share of lines ending in punctuation")
    line_punct_exclude_zero: bool = param(False, "do not drop documents with no punctuated line at all")
    short_line_thr: float = param(0.67, "maximum share of short lines")
    short_line_length: int = param(30, "a line shorter than this is short")
    char_duplicates_ratio: float = param(0.01, "maximum share of characters in duplicated lines")
    new_line_ratio: float = param(0.3, "maximum newlines per word")


@register("fineweb_quality", FineWebQualityParams, "FineWeb rules (line punctuation, short lines, duplicates)")
def build_fineweb_quality(params: FineWebQualityParams, ctx: BuildContext):
    return _build(PerLanguageFineWebQuality, params, ctx, "fineweb_quality")
