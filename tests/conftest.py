"""Shared helpers: paths to the repo's data, writing small WARC files and recipes, running webmill."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
WIKITEXT = SAMPLES / "text" / "wikitext-2-valid.txt.gz"
EDGE_CASES = REPO / "tests" / "data" / "edge-cases"


def write_warc(path: Path, records: list[dict]) -> Path:
    """Write a gzip WARC of response/revisit records: dicts with url, body (bytes), and optional
    content_type, status, warc_type."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for rec in records:
            warc_type = rec.get("warc_type", "response")
            http_headers = None
            if warc_type in ("response", "revisit"):
                headers = [("Content-Type", rec["content_type"])] if rec.get("content_type") else []
                http_headers = StatusAndHeaders(rec.get("status", "200 OK"), headers, protocol="HTTP/1.1")
            record = writer.create_warc_record(rec["url"], warc_type, payload=io.BytesIO(rec.get("body", b"")),
                                               http_headers=http_headers)
            writer.write_record(record)
    return path


def write_recipe(path: Path, stages: list, inputs: list[str], output: Path, **sections) -> Path:
    recipe = {"name": path.stem, "input": {"paths": [str(p) for p in inputs]}, "output": {"dir": str(output)},
              "executor": {"kind": "local", "tasks": 1, "workers": 1}, "stages": stages}
    for key, value in sections.items():
        recipe.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run(recipe_path: Path, **kwargs) -> dict:
    from webmill.recipe import load_recipe
    from webmill.runner import run_recipe

    return run_recipe(load_recipe(recipe_path), progress=False, **kwargs)


def stage(report: dict, name: str) -> dict:
    (row,) = [r for r in report["stages"] if r["stage"].split(":", 1)[1].startswith(name)]
    return row


def assert_accounts_add_up(report: dict) -> None:
    """Every stage: read == kept + dropped; each stage reads what the previous one kept."""
    previous_kept = None
    for row in report["stages"]:
        assert row["read"] == row["kept"] + sum(row["dropped"].values()), row
        if previous_kept is not None:
            assert row["read"] == previous_kept, (row["stage"], row["read"], previous_kept)
        previous_kept = row["kept"]


@pytest.fixture
def html_page():
    def make(title: str, paragraphs: int = 8) -> bytes:
        body = "".join(
            f"<p>{title} paragraph {i}: the committee met again on Tuesday to discuss the budget, and the "
            f"members agreed that the proposal needed more work before it could be voted on.</p>"
            for i in range(paragraphs)
        )
        return f"<html><head><title>{title}</title></head><body><article>{body}</article></body></html>".encode()

    return make


def read_json(path: Path):
    return json.loads(Path(path).read_text())


# --- the ablation's tests: real text, small Parquet corpora, one torch thread ------------------------------

@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and two spinning threads slow a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def articles() -> list[str]:
    """WikiText-2's validation articles (the shipped sample), one document each."""
    import gzip

    text = gzip.open(WIKITEXT, "rt", encoding="utf-8").read()
    return [" = " + a.strip() for a in text.split("\n = ") if len(a.strip()) > 200]


def write_text_parquet(path: Path, texts: list, row_group_size: int = 10) -> Path:
    """A Parquet file with one `text` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), path, row_group_size=row_group_size)
    return path
