"""Reference text for training: plain text files (.txt or .txt.gz, UTF-8, one paragraph per line),
read as a stream. WikiText's tokenised form can be turned back into ordinary running text on the way.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

from webmill.errors import WebmillError

# WikiText splits hyphens and number separators as " @-@ ", " @,@ ", " @.@ " and puts spaces around
# punctuation; rare words are "<unk>"; headings are "= Title =", "= = Section = =".
WIKITEXT_HEADING = re.compile(r"^\s*(=\s*)+[^=].*?(\s*=)+\s*$")
WIKITEXT_JOINERS = re.compile(r" @([-,.])@ ")
WIKITEXT_UNK = re.compile(r"\s*<unk>")
SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}]|'s\b|'re\b|'ve\b|'d\b|'ll\b|'m\b|n't\b)")
SPACE_AFTER = re.compile(r"([(\[{$]) ")
QUOTED = re.compile(r'" ([^"]*?) "')


def detokenize_wikitext(line: str) -> str:
    """One WikiText line as running text; headings and blank lines become ''."""
    if not line.strip() or WIKITEXT_HEADING.match(line):
        return ""
    text = WIKITEXT_JOINERS.sub(r"\1", line)
    text = WIKITEXT_UNK.sub("", text)
    text = SPACE_BEFORE.sub(r"\1", text)
    text = SPACE_AFTER.sub(r"\1", text)
    text = QUOTED.sub(r'"\1"', text)
    return " ".join(text.split())


def open_text(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise WebmillError(f"reference text not found: {path}")
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_lines(paths: list[str | Path], wikitext: bool = False) -> Iterator[str]:
    """Every line of every file, in order, without its line break (undone WikiText form if asked)."""
    for path in paths:
        with open_text(path) as f:
            for line in f:
                line = line.rstrip("\n")
                yield detokenize_wikitext(line) if wikitext else line


def describe_file(path: str | Path) -> dict:
    """Name, size and sha256 of an input file, for the manifest."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
