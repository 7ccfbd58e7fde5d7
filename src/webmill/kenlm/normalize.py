"""Text normalisation before a KenLM model sees text, after CCNet (Wenzek et al., 2020, section 3.3).

The same function runs on the reference text at training time and on every document at scoring time, so
the model never meets a spelling variant it could not have seen:

* lower case;
* accents stripped: Unicode NFD, then the combining diacritical marks (U+0300-036F and their
  supplement blocks) removed, then recomposed (NFC). CCNet removes every non-spacing mark (category
  Mn), which also deletes parts of letters in other scripts (Devanagari vowel signs and viramas, the
  voicing marks of Japanese kana) and leaves Hangul decomposed; webmill keeps those;
* every decimal digit, in any script, becomes 0 ("1984" and "2023" are the same token to the model);
* Unicode punctuation mapped to its ASCII counterpart (curly quotes, dashes, ellipsis, guillemets,
  CJK and full-width punctuation, full-width ASCII);
* non-printing characters removed (controls, zero-width and other format characters, the byte-order
  mark); every kind of space and line break becomes one plain space, runs of spaces collapse.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

# one character -> its ASCII replacement (applied after lower-casing and accent stripping)
PUNCTUATION = {
    **dict.fromkeys("‘’‚‛′‹›`´", "'"),
    **dict.fromkeys("“”„‟″«»「」『』《》〈〉〝〞", '"'),
    **dict.fromkeys("‐‑‒–—―−﹣﹘", "-"),
    **dict.fromkeys("•‣◦∙·・", " "),
    "…": "...", "‥": "..", "，": ",", "、": ",", "。": ".", "｡": ".", "：": ":", "∶": ":", "；": ";",
    "？": "?", "！": "!", "（": "(", "）": ")", "【": "[", "】": "]", "〔": "[", "〕": "]", "〜": "~",
    "～": "~", "⁄": "/", "％": "%",
}
# combining diacritical marks: the blocks of accents that NFD splits off Latin, Greek and Cyrillic letters
DIACRITICS = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F))
DIGITS = re.compile(r"\d")  # str patterns match every Unicode decimal digit


@functools.cache
def translation_table() -> dict[int, str | None]:
    """Built once per process (a scan of the code points takes a fraction of a second)."""
    table: dict[int, str | None] = {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category == "Mn" and any(low <= code <= high for low, high in DIACRITICS):
            table[code] = None  # the accent of an NFD-decomposed letter
        elif category in ("Cc", "Cf"):
            table[code] = " " if chr(code).isspace() else None  # \t \n \r … are spaces; the rest goes
        elif category in ("Zs", "Zl", "Zp"):
            table[code] = " "
    # full-width ASCII (U+FF01..U+FF5E) -> ASCII; lower-casing has already turned its letters small
    table.update({code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)})
    table.update({ord(char): ascii_ for char, ascii_ in PUNCTUATION.items()})
    return table


def normalize(text: str) -> str:
    """Normalise one paragraph (line breaks inside become spaces)."""
    text = text.lower()
    if not text.isascii():
        text = unicodedata.normalize("NFD", text)
        text = unicodedata.normalize("NFC", text.translate(translation_table()))
    else:
        text = text.translate(translation_table())
    text = DIGITS.sub("0", text)
    return " ".join(text.split())


def normalize_paragraphs(text: str) -> list[str]:
    """A document's non-empty paragraphs (lines), each normalised."""
    paragraphs = (normalize(line) for line in text.split("\n"))
    return [p for p in paragraphs if p]
