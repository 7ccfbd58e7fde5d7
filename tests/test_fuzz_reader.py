"""Fuzzing the crawl-reading path (WARC/ARC parsing, decoding, extraction) with mutated real files.

Every example must read without an uncaught exception and with balanced accounting. The suite runs a
short budget; `make fuzz` runs a long one (WEBMILL_FUZZ_EXAMPLES). A crash found here becomes a test.
"""

import gzip
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EDGE_CASES, SAMPLES
from webmill.stages.archive_reader import ArchiveReader
from webmill.stages.extract import Extract, ExtractParams

EXAMPLES = int(os.environ.get("WEBMILL_FUZZ_EXAMPLES", "60"))
SEEDS = {
    "example.warc": (EDGE_CASES / "example.warc").read_bytes(),
    "example.warc.gz": (EDGE_CASES / "example.warc.gz").read_bytes(),
    "example.arc": (EDGE_CASES / "example.arc").read_bytes(),
    "iana.warc": (EDGE_CASES / "example-iana.org-chunked.warc").read_bytes(),
    # the first records of a real wget crawl, uncompressed so mutations reach the parser
    "wget.warc": gzip.decompress((SAMPLES / "warc" / "sample-0001.warc.gz").read_bytes())[:60_000],
}

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 200)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**6), st.integers(1, 400)),
)


def mutate(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for kind, at, arg in edits:
        at = at % (len(buf) + 1)
        if kind == "flip" and buf:
            buf[at % len(buf)] ^= arg
        elif kind == "truncate":
            del buf[at:]
        elif kind == "insert":
            buf[at:at] = arg
        elif kind == "delete":
            del buf[at:at + arg]
        elif kind == "duplicate":
            buf[at:at] = buf[at:at + arg]
    return bytes(buf)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.sampled_from(sorted(SEEDS)), edits=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_archives_never_crash_the_reader(tmp_path_factory, seed, edits):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / seed).write_bytes(mutate(SEEDS[seed], edits))
    reader = ArchiveReader(str(folder))
    docs = list(Extract(ExtractParams(timeout_s=2)).run(reader.read_file(seed)))
    counts = {k: int(v.total) for k, v in reader.stats.stats.items()}
    dropped = sum(v for k, v in counts.items() if k.startswith("dropped_"))
    assert counts.get("total", 0) == counts.get("forwarded", 0) + dropped
    assert all(isinstance(d.text, str) and d.text for d in docs)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.binary(max_size=3000))
def test_random_bytes_never_crash_the_reader(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("noise")
    (folder / "noise.warc").write_bytes(b"WARC/1.0\r\n" + data)
    (folder / "noise.warc.gz").write_bytes(gzip.compress(b"WARC/1.1\r\n" + data))
    for name in ("noise.warc", "noise.warc.gz"):
        reader = ArchiveReader(str(folder))
        list(reader.read_file(name))
