"""Rebuild the curated domain samples of this folder, byte for byte, from their original files.

    python scripts/build_domains.py ORIGINALS_DIR

ORIGINALS_DIR holds `tinyshakespeare.txt.gz` and `domains/*.jsonl.gz` as described in SOURCE.md; the
Wikipedia sample is made from the repository's own `data/samples/text/wikitext-2-valid.txt.gz`.
Only the FIRST part of each original is used (the split rule is in SOURCE.md): the rest is kept out of
every training sample so that it can serve as held-out evaluation text.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
from pathlib import Path

from webmill.kenlm.reference import detokenize_wikitext

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "data" / "samples" / "domains"
WIKITEXT = REPO / "data/samples/text/wikitext-2-valid.txt.gz"
ARTICLE_HEADING = re.compile(r"^ = ([^=].*?) = $")
SECTION_HEADING = re.compile(r"^ (?:= )+([^=].*?)(?: =)+ $")
BOOK_SHARE = 0.9
BOOK_CHUNK_CHARS = 10_000
# (output file, [original files]): each original contributes its first half of documents
HALF_SOURCES = {
    "stackexchange": ["stack_exchange", "redpajama-pile-stackexchange-refined"],
    "arxiv": ["arxiv"],
    "nih": ["the-pile-nih-refined"],
    "uspto": ["the-pile-uspto-refined"],
}


def write_jsonl_gz(path: Path, records: list[dict]) -> None:
    # mtime=0 and no file name in the gzip header: the file depends on its content only
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    path.write_bytes(raw.getvalue())


def wikipedia_articles() -> list[dict]:
    """WikiText-2 valid, one document per article (" = Title = " lines), WikiText's tokenisation undone;
    section headings kept as lines of their own."""
    articles: list[dict] = []
    title, lines = None, []

    def flush():
        if title is not None and lines:
            articles.append({"id": f"wikitext-2-valid:{len(articles)}", "text": "\n".join([title, *lines]),
                             "meta": {"title": title, "origin": "wikitext-2-valid"}})

    with gzip.open(WIKITEXT, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if match := ARTICLE_HEADING.match(line):
                flush()
                title, lines = detokenize_wikitext(" " + match.group(1) + " "), []
            elif match := SECTION_HEADING.match(line):
                lines.append(detokenize_wikitext(" " + match.group(1) + " "))
            elif text := detokenize_wikitext(line):
                lines.append(text)
    flush()
    return articles


def book_chunks(originals: Path) -> list[dict]:
    """The first 90 % of Tiny Shakespeare, cut at a speech boundary (blank line), in chunks of about
    BOOK_CHUNK_CHARS characters that end at speech boundaries."""
    with gzip.open(originals / "tinyshakespeare.txt.gz", "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    # the cut must lie before 90 % of the lines AND before 90 % of the characters, so that whichever way
    # the held-out 10 % is measured, no line of it is here
    limit, chars = int(len(lines) * BOOK_SHARE), 0
    total_chars = sum(len(line) + 1 for line in lines)
    for index, line in enumerate(lines):
        chars += len(line) + 1
        if chars > total_chars * BOOK_SHARE:
            limit = min(limit, index)
            break
    cut = max(i for i in range(limit) if not lines[i].strip())
    chunks, start, size = [], 0, 0
    for index in range(cut + 1):
        size += len(lines[index]) + 1
        if (not lines[index].strip() and size >= BOOK_CHUNK_CHARS) or index == cut:
            text = "\n".join(lines[start:index]).strip("\n")
            chunks.append({"id": f"tinyshakespeare:{len(chunks)}", "text": text,
                           "meta": {"origin": "tinyshakespeare", "lines": [start + 1, index]}})
            start, size = index + 1, 0
    return chunks


def first_half(originals: Path, stem: str) -> list[dict]:
    with gzip.open(originals / "domains" / f"{stem}.jsonl.gz", "rt", encoding="utf-8") as f:
        documents = [json.loads(line) for line in f if line.strip()]
    records = []
    for index, doc in enumerate(documents[: len(documents) // 2]):
        meta = {k: v for k, v in (doc.get("meta") or {}).items() if k in ("arxiv_id", "url", "language")}
        meta["origin"] = stem
        record = {"id": f"{stem}:{index}", "text": doc["text"], "meta": meta}
        records.append(record)
    return records


def without_repeats(records: list[dict]) -> list[dict]:
    """The originals repeat a few texts; keep the first of each (whitespace-normalised): in a mix, a
    document is repeated only by the epochs the recipe asks for."""
    seen, kept = set(), []
    for record in records:
        key = " ".join(record["text"].split())
        if key in seen:
            print(f"dropped {record['id']}: repeats an earlier document")
            continue
        seen.add(key)
        kept.append(record)
    return kept


def main(originals: Path) -> None:
    outputs = {"wikipedia": wikipedia_articles(), "books": book_chunks(originals)}
    for name, stems in HALF_SOURCES.items():
        outputs[name] = [record for stem in stems for record in first_half(originals, stem)]
    outputs = {name: without_repeats(records) for name, records in outputs.items()}
    for name, records in outputs.items():
        path = HERE / f"{name}.jsonl.gz"
        write_jsonl_gz(path, records)
        print(f"{path.name}: {len(records)} documents, {sum(len(r['text']) for r in records)} characters, "
              f"{path.stat().st_size} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
