"""The text a quality model sees, identical at training and scoring time: one line, lower case,
whitespace collapsed, cut to a bounded length (a page's opening is enough to judge it and keeps memory
and time per document bounded). fastText reads `__label__` as a label marker anywhere in a line, so the
marker is defused in the text itself."""

from __future__ import annotations

MAX_CHARS = 20_000
LABEL_PREFIX = "__label__"
POSITIVE = "positive"
NEGATIVE = "negative"


def normalize(text: str, max_chars: int = MAX_CHARS) -> str:
    line = " ".join(text.lower().split())
    if len(line) > max_chars:
        cut = line.rfind(" ", 0, max_chars)
        line = line[:cut if cut > 0 else max_chars]
    return line.replace(LABEL_PREFIX, "label")
