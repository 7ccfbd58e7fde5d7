"""C4's bad-words filter (Raffel et al., 2020): drop every page containing an entry of the "List of Dirty,
Naughty, Obscene or Otherwise Bad Words" (LDNOOBW) of the page's language.

datatrove's `C4BadWordsFilter` downloads the lists at run time; webmill ships them
(`assets/wordlists/ldnoobw/`, CC BY 4.0, see SOURCE.md there) and never downloads anything.

Matching, on the lower-cased text:
- an entry is matched as a whole word: not preceded or followed by a letter, digit or underscore
  ("ass" does not match "class"); a multi-word entry matches across any run of whitespace;
- an entry written in a script without spaces between words (Chinese, Japanese kana, Thai, Lao, Khmer,
  Myanmar) cannot have word boundaries, so it matches anywhere in the text. A few such entries are
  ordinary parts of everyday words (性 "-ness", 女の子 "girl") and would drop a large share of clean
  pages: `ignore` leaves them out.
The list is picked by the document's `language` (from a `language` or `line_language` stage); a
language without a list passes unchecked and is counted (`no_list_<lang>`), or is dropped with
`missing_list: drop`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from datatrove.pipeline.filters.base_filter import BaseFilter

from webmill.errors import WebmillError
from webmill.stages.registry import BuildContext, param, register

SHIPPED_LISTS = Path(__file__).resolve().parent.parent / "assets" / "wordlists" / "ldnoobw"
# list files named by a regional variant are merged into the main language's list
VARIANTS = {"fr-CA-u-sd-caqc": "fr"}
# fastText LID codes whose list is filed under another code
ALIASES = {"tl": "fil", "nb": "no", "nn": "no"}
NO_SPACE_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "IDEOGRAPHIC")


def written_without_spaces(entry: str) -> bool:
    """True when the entry's letters belong to a script that does not separate words with spaces."""
    letters = [c for c in entry if c.isalpha()]
    return bool(letters) and all(unicodedata.name(c, "").startswith(NO_SPACE_SCRIPTS) for c in letters)


def entry_pattern(entry: str) -> str:
    if written_without_spaces(entry):
        return re.escape(entry)
    words = r"\s+".join(re.escape(word) for word in entry.split())
    return rf"(?<!\w){words}(?!\w)"


WORD = re.compile(r"\w+")


class WordList:
    """One language's entries, ready to search. One regex alternation of hundreds of entries tries each
    of them at every position of the text (slow); instead an entry is only tried when the text holds its
    first word: a whole-word match starts with a whole word of the text."""

    def __init__(self, entries: set[str]):
        ordered = sorted(entries, key=lambda e: (-len(e), e))  # longest first: report a phrase, not its start
        self.substrings = [e for e in ordered if written_without_spaces(e)]
        self.by_first_word: dict[str, list[re.Pattern]] = {}
        self.always: list[re.Pattern] = []  # entries without a letter or digit
        for entry in ordered:
            if entry in self.substrings:
                continue
            words = WORD.findall(entry)
            pattern = re.compile(entry_pattern(entry))
            (self.by_first_word.setdefault(words[0], []) if words else self.always).append(pattern)

    def search(self, text: str) -> str | None:
        """The first listed entry found in the (lower-cased) text, or None."""
        for entry in self.substrings:
            if entry in text:
                return entry
        candidates = [p for w in sorted(set(WORD.findall(text)) & self.by_first_word.keys())
                      for p in self.by_first_word[w]]
        for pattern in candidates + self.always:
            found = pattern.search(text)
            if found:
                return found.group(0)
        return None


def read_lists(folder: Path, ignore: set[str]) -> dict[str, set[str]]:
    if not folder.is_dir():
        raise WebmillError(f"bad-words list folder not found: {folder}")
    lists: dict[str, set[str]] = {}
    for file in sorted(folder.iterdir()):
        if file.is_file() and not file.name.startswith(".") and not file.suffix:
            language = VARIANTS.get(file.name, file.name)
            entries = {line.strip().lower() for line in file.read_text(encoding="utf-8").splitlines()}
            lists.setdefault(language, set()).update(e for e in entries if e and e not in ignore)
    if not lists:
        raise WebmillError(f"no bad-words list in {folder} (one file per language code, one entry per line)")
    return lists


@dataclass
class BadWordsParams:
    lists: str | None = param(None, "folder of word lists, one file per language code; "
                                    "default: the shipped LDNOOBW lists")
    default_language: str = param("en", "list for documents without a `language` (from an earlier LID stage)")
    missing_list: Literal["keep", "drop"] = param("keep", "documents in a language without a list: keep or drop")
    ignore: list[str] = param(["性", "グロ", "女の子"], "entries never matched (common parts of ordinary words)")


class BadWordsFilter(BaseFilter):
    name = "🤬 C4 bad words"

    def __init__(self, params: BadWordsParams, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.params = params
        self.folder = Path(params.lists) if params.lists else SHIPPED_LISTS
        self.entries = read_lists(self.folder, {w.lower() for w in params.ignore})
        self.word_lists: dict[str, WordList] = {}  # built on first use of a language

    def word_list(self, language: str) -> WordList:
        if language not in self.word_lists:
            self.word_lists[language] = WordList(self.entries[language])
        return self.word_lists[language]

    def filter(self, doc):
        language = doc.metadata.get("language") or self.params.default_language
        listed = ALIASES.get(language, language)
        if listed not in self.entries:
            self.stat_update(f"no_list_{language}")
            if self.params.missing_list == "drop":
                return False, "no_badwords_list"
            return True
        found = self.word_list(listed).search(doc.text.lower())
        if found:
            doc.metadata["badword"] = found
            self.stat_update(f"badwords_{language}")
            return False, "badwords"
        return True


@register("badwords", BadWordsParams,
          "C4 bad-words filter (shipped LDNOOBW lists, the document's language picks the list)")
def build_badwords(params: BadWordsParams, ctx: BuildContext):
    return BadWordsFilter(params, ctx.exclusion_writer("badwords"))
