"""`webmill publish`: what is uploaded (and what never is), the dry run, the token never shown, and the
failures without a network or a token. There is no network here: the upload itself is pointed at a
closed local port and must fail with one clear line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SAMPLES, run, write_recipe
from webmill.cli import main
from webmill.publish import _batches, plan_upload

FAKE_TOKEN = "hf_webmillTestTokenThatMustNeverAppear0123"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("publish")
    recipe = write_recipe(folder / "pubtest.yaml", [{"extract": {"fast": True}}, "language"],
                          [SAMPLES / "warc" / "pages-0001.warc.gz"], folder / "out")
    run(recipe, limit=60)
    out = folder / "out"
    # things that must never be uploaded, next to the corpus
    (out / "data" / ".partial").mkdir(exist_ok=True)
    (out / "data" / ".partial" / "unfinished.parquet").write_bytes(b"half")
    (out / "data" / "dropped.jsonl.gz").write_bytes(b"excluded")
    (out / "dropped" / "1_language").mkdir(parents=True)
    (out / "dropped" / "1_language" / "00000.jsonl.gz").write_bytes(b"excluded")
    (out / "work").mkdir(exist_ok=True)
    (out / "work" / "phase.jsonl.gz").write_bytes(b"intermediate")
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def webmill(args: list[str], home: Path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    clean.update(HF_HOME=str(home), PYTHONPATH=str(REPO / "src"), **env)
    return subprocess.run([sys.executable, "-m", "webmill", *args], env=clean, capture_output=True, text=True,
                          timeout=120)


def test_dry_run_lists_exactly_the_corpus_and_card(corpus, tmp_path, capsys):
    assert main(["card", str(corpus)]) == 0
    capsys.readouterr()
    assert main(["publish", str(corpus), "--repo", "someone/sample-corpus", "--private", "--dry-run"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "private dataset repository 'someone/sample-corpus'" in header
    assert "/datasets/someone/sample-corpus" in header
    listed = {line.split()[-1]: int(line.split()[0].replace(",", "")) for line in out.splitlines()[1:]
              if line.strip() and not line.startswith("webmill:")}
    expected = {p.relative_to(corpus).as_posix() for p in (corpus / "data").glob("*.parquet")}
    expected |= {"README.md"} | {p.relative_to(corpus).as_posix() for p in (corpus / "card_assets").glob("*.png")}
    assert set(listed) == expected
    for path, size in listed.items():
        assert (corpus / path).stat().st_size == size
    assert f"would upload {len(expected)} file(s), {sum(listed.values()):,} bytes" in header
    assert not any(p.startswith(("logs/", "work/", "dropped/", "data/.partial")) or p == "stats.json" for p in listed)


def test_dry_run_without_a_card_does_not_write_one(corpus, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("stats.json", "data"):
        os.symlink(corpus / name, bare / name)
    upload = plan_upload(bare, "someone/x")
    assert upload.card_missing and all(p.startswith("data/") for p, _ in upload.files)
    result = webmill(["publish", str(bare), "--repo", "someone/x", "--dry-run"], tmp_path / "home")
    assert result.returncode == 0 and "(generated)" in result.stdout and "public dataset" in result.stdout
    assert "token: none found" in result.stdout
    assert not (bare / "README.md").exists()


def test_unreachable_hub_fails_in_one_line_and_never_shows_the_token(corpus, tmp_path):
    home = tmp_path / "home"
    target = tmp_path / "target"
    target.mkdir()
    for name in ("stats.json", "data", "logs"):
        os.symlink(corpus / name, target / name)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = webmill(["publish", str(target), "--repo", "someone/sample-corpus"], home,
                     HF_TOKEN=FAKE_TOKEN, HF_ENDPOINT=endpoint)
    assert result.returncode == 2
    assert result.stderr.startswith("webmill: error: publishing to ") and len(result.stderr.strip().splitlines()) == 1
    assert f"cannot reach {endpoint}" in result.stderr and "Traceback" not in result.stderr
    assert (target / "README.md").is_file()  # the card is generated before the upload
    assert FAKE_TOKEN not in result.stdout + result.stderr
    for folder in (target, home):
        for file in folder.rglob("*"):
            if file.is_file() and not file.is_symlink():
                assert FAKE_TOKEN.encode() not in file.read_bytes(), file
    dry = webmill(["publish", str(target), "--repo", "someone/sample-corpus", "--dry-run"], home, HF_TOKEN=FAKE_TOKEN)
    assert "token: found" in dry.stdout and FAKE_TOKEN not in dry.stdout + dry.stderr


def test_offline_mode_and_missing_token_are_clear_errors(corpus, tmp_path):
    offline = webmill(["publish", str(corpus), "--repo", "someone/x"], tmp_path / "h1",
                      HF_TOKEN=FAKE_TOKEN, HF_HUB_OFFLINE="1")
    assert offline.returncode == 2 and "HF_HUB_OFFLINE is set" in offline.stderr
    assert FAKE_TOKEN not in offline.stderr
    no_token = webmill(["publish", str(corpus), "--repo", "someone/x"], tmp_path / "h2")
    assert no_token.returncode == 2
    assert no_token.stderr.strip() == ("webmill: error: no Hugging Face token: set HF_TOKEN or run `hf auth login` "
                                       "(a token with write access)")


@pytest.mark.parametrize("make, repo, message", [
    (lambda d: d.mkdir(), "someone/x", "has no stats.json: not a finished webmill output"),
    (lambda d: None, "someone/x", "is not a folder"),
    (lambda d: (d / "data").mkdir(parents=True) or (d / "stats.json").write_text("{}"), "someone/x",
     "no Parquet files under data/"),
])
def test_unfinished_output_is_refused(tmp_path, capsys, make, repo, message):
    folder = tmp_path / "out"
    make(folder)
    assert main(["publish", str(folder), "--repo", repo, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("repo", ["no-namespace", "a/b/c", "bad..name/x"])
def test_bad_repo_id(corpus, capsys, repo):
    assert main(["publish", str(corpus), "--repo", repo, "--dry-run"]) == 2
    assert "--repo" in capsys.readouterr().err


def test_big_outputs_are_committed_in_batches():
    files = [(f"data/{i:03d}.parquet", 4 * 1024**3) for i in range(7)] + [(f"data/s{i}.parquet", 1) for i in range(250)]
    batches = list(_batches(files))
    assert [p for b in batches for p in b] == [p for p, _ in files]  # order kept, nothing lost
    assert all(len(b) <= 100 for b in batches)
    assert batches[0] == ["data/000.parquet", "data/001.parquet"]  # 10 GiB per commit at most
