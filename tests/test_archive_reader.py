"""Reading real and malformed WARC/ARC/WET files: nothing crashes, every record is accounted for."""

import gzip
import os

import pytest

from conftest import EDGE_CASES, SAMPLES, write_warc
from webmill.stages.archive_reader import ArchiveReader

EDGE_FILES = sorted(f for f in os.listdir(EDGE_CASES) if not f.endswith(".md"))


def read(folder, name, **kwargs):
    reader = ArchiveReader(str(folder), **kwargs)
    docs = list(reader.read_file(name))
    counts = {k: int(v.total) for k, v in reader.stats.stats.items()}
    return docs, counts


def assert_balanced(counts):
    dropped = sum(v for k, v in counts.items() if k.startswith("dropped_"))
    assert counts["total"] == counts.get("forwarded", 0) + dropped == counts.get("forwarded", 0) + counts.get("dropped", 0)


@pytest.mark.parametrize("name", EDGE_FILES)
def test_every_edge_case_file_reads_without_crashing_and_balances(name):
    docs, counts = read(EDGE_CASES, name)
    assert_balanced(counts)
    for doc in docs:
        assert doc.text and doc.metadata["url"] and "<html" in doc.text.lower()


@pytest.mark.parametrize("name,expected", [
    ("example.warc", {"forwarded": 1, "dropped_revisit": 1, "dropped_not_a_response": 4}),
    ("example.warc.gz", {"forwarded": 1, "dropped_revisit": 1}),
    ("example-trunc.warc", {"forwarded": 1, "dropped_malformed_record": 1}),
    ("example-bad-non-chunked.warc.gz", {"forwarded": 1}),
    ("example.arc", {"forwarded": 1}),
    ("example.arc.gz", {"forwarded": 1}),
    ("example-space-in-url.arc", {"forwarded": 1}),
    ("post-test.warc.gz", {"dropped_non_html": 3}),
    ("example-wget-bad-target-uri.warc.gz", {"forwarded": 1}),
])
def test_edge_case_outcomes(name, expected):
    docs, counts = read(EDGE_CASES, name)
    for key, value in expected.items():
        assert counts.get(key, 0) == value, (key, counts)


def test_gzip_content_encoding_is_decoded():
    (doc,), _ = read(EDGE_CASES, "example.warc.gz")
    assert doc.text.lstrip().lower().startswith("<!doctype html>") and "Example Domain" in doc.text


def test_records_after_damage_are_still_read(tmp_path, html_page):
    before = write_warc(tmp_path / "a.warc.gz", [
        {"url": f"http://example.org/before{i}", "body": html_page(f"B{i}"), "content_type": "text/html"} for i in range(2)])
    after = write_warc(tmp_path / "c.warc.gz", [
        {"url": f"http://example.org/after{i}", "body": html_page(f"A{i}"), "content_type": "text/html"} for i in range(2)])
    damaged = bytearray(gzip.compress(b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 5000\r\n\r\n" + b"x" * 300))
    damaged[30:60] = b"\x00" * 30  # corrupt the deflate stream
    joined = tmp_path / "joined.warc.gz"
    joined.write_bytes(before.read_bytes() + bytes(damaged) + after.read_bytes())
    docs, counts = read(tmp_path, "joined.warc.gz")
    assert [d.metadata["url"] for d in docs] == ["http://example.org/before0", "http://example.org/before1",
                                                 "http://example.org/after0", "http://example.org/after1"]
    assert counts["dropped_malformed_record"] >= 1
    assert_balanced(counts)


def test_plain_warc_resumes_after_a_truncated_record(tmp_path):
    joined = tmp_path / "joined.warc"
    joined.write_bytes((EDGE_CASES / "example-trunc.warc").read_bytes() + (EDGE_CASES / "example.warc").read_bytes())
    docs, counts = read(tmp_path, "joined.warc")
    assert len(docs) == 2 and counts["dropped_malformed_record"] >= 1
    assert_balanced(counts)


def test_bad_input_records_are_counted_with_reasons(tmp_path, html_page):
    latin1 = "<html><body><p>Größenordnung und Übermaß, Ärger im Büro.</p></body></html>".encode("latin-1")
    records = [
        {"url": "http://example.org/ok", "body": html_page("ok"), "content_type": "text/html; charset=utf-8"},
        {"url": "http://example.org/empty", "body": b"", "content_type": "text/html"},
        {"url": "http://example.org/blank", "body": b"   \n ", "content_type": "text/html"},
        {"url": "http://example.org/pdf", "body": b"%PDF-1.4 binary", "content_type": "application/pdf"},
        {"url": "http://example.org/img", "body": b"\x89PNG\r\n", "content_type": "image/png"},
        {"url": "http://example.org/gone", "body": b"<html>gone</html>", "content_type": "text/html", "status": "404 Not Found"},
        {"url": "http://example.org/wrong-charset", "body": latin1, "content_type": "text/html; charset=utf-8"},
        {"url": "http://example.org/no-charset", "body": latin1, "content_type": "text/html"},
        {"url": "http://example.org/no-type", "body": html_page("untyped")},
        {"url": "http://example.org/bogus-charset", "body": html_page("bogus"), "content_type": "text/html; charset=x-nonsense"},
        {"url": "http://example.org/huge", "body": b"<html><body>" + b"<p>word </p>" * 5_000_000 + b"</body></html>",
         "content_type": "text/html"},
        {"url": "http://example.org/revisit", "warc_type": "revisit", "content_type": "text/html"},
    ]
    write_warc(tmp_path / "bad.warc.gz", records)
    docs, counts = read(tmp_path, "bad.warc.gz", max_record_bytes=20_000_000)
    assert_balanced(counts)
    urls = {d.metadata["url"]: d for d in docs}
    assert set(urls) == {"http://example.org/ok", "http://example.org/wrong-charset", "http://example.org/no-charset",
                         "http://example.org/no-type", "http://example.org/bogus-charset"}
    for url in ("http://example.org/wrong-charset", "http://example.org/no-charset"):
        assert "Größenordnung" in urls[url].text  # decoded right despite a wrong or missing charset
    assert counts["dropped_empty_body"] == 2
    assert counts["dropped_non_html"] == 2
    assert counts["dropped_http_status"] == 1
    assert counts["dropped_record_too_large"] == 1  # the 60 MB page
    assert counts["dropped_revisit"] == 1


def test_real_crawls_without_payload_type_are_read_as_html():
    """wget WARCs carry no WARC-Identified-Payload-Type: the HTTP Content-Type decides, not libmagic."""
    docs, counts = read(SAMPLES / "warc", "sample-0000.warc.gz")
    assert len(docs) >= 15
    assert_balanced(counts)
    docs, counts = read(SAMPLES / "warc", "CC-MAIN-2020-34-sample.warc.gz")
    assert counts["total"] == 50 and len(docs) >= 12
    assert all(d.metadata["date"].startswith("2020-08") for d in docs)


def test_wet_conversion_records_are_plain_text():
    docs, counts = read(SAMPLES / "wet", "whirlwind.warc.wet.gz")
    (doc,) = docs
    assert doc.metadata["content_kind"] == "text" and "Escopete" in doc.text
    assert_balanced(counts)
