"""Interrupted runs resume to the same bytes; unwritable or full disks give a clear error; no path escapes."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import SAMPLES, write_recipe

STAGES = ["extract", {"language": {"min_score": 0.3}}, "gopher_repetition"]
PAGES = sorted((SAMPLES / "warc").glob("pages-*.warc.gz"))


def webmill(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "webmill", *map(str, args)], capture_output=True, text=True, **kwargs)


def corpus_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def test_sigkill_then_rerun_gives_the_uninterrupted_output(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", STAGES, PAGES, tmp_path / "unused", executor={"tasks": 4, "workers": 1})
    reference = webmill("run", recipe, "--output", tmp_path / "reference", "--limit", 80, "--quiet")
    assert reference.returncode == 0, reference.stderr[-2000:]

    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "webmill", "run", str(recipe), "--output", str(out), "--limit", "80",
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    completion = out / "logs" / "phase_0" / "completions" / "00000"
    deadline = time.time() + 120
    while not completion.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert completion.exists() and not (out / "logs" / "phase_0" / "completions" / "00003").exists()
    # whatever is visible in data/ is complete (unfinished files stay in data/.partial)
    import pyarrow.parquet as pq

    for path in (out / "data").glob("*.parquet"):
        pq.read_metadata(path)
    assert not (out / "stats.json").exists()

    resumed = webmill("run", recipe, "--output", out, "--limit", 80, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert re.search(r"Skipping [123] already completed tasks", resumed.stderr)
    assert corpus_bytes(out) == corpus_bytes(tmp_path / "reference")
    assert not (out / "data" / ".partial").exists()


def test_unwritable_output_is_a_clear_error(tmp_path, html_page):
    from conftest import write_warc

    warc = write_warc(tmp_path / "in.warc.gz", [{"url": "http://example.org/", "body": html_page("x"),
                                                 "content_type": "text/html"}])
    recipe = write_recipe(tmp_path / "r.yaml", ["extract"], [warc], tmp_path / "unused")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = webmill("run", recipe, "--output", blocker / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot write to the output folder" in result.stderr


def test_full_disk_is_a_clear_error_and_nothing_half_written_is_presented(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", ["extract"], PAGES[:1], tmp_path / "out")
    # a 64 KB file-size limit stands in for a full disk: writes fail with EFBIG instead of ENOSPC
    limit = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " \
            "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)); "
    result = subprocess.run([sys.executable, "-c", limit + "from webmill.cli import main; import sys; "
                             f"sys.exit(main(['run', '{recipe}', '--quiet']))"], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "webmill: error: the run failed" in result.stderr and "File too large" in result.stderr
    assert not list((tmp_path / "out" / "data").glob("*.parquet"))
    assert not (tmp_path / "out" / "stats.json").exists()


def test_output_file_names_cannot_escape_the_output_folder(tmp_path):
    import gzip
    import json

    src = tmp_path / "in"
    src.mkdir()
    with gzip.open(src / "evil.jsonl.gz", "wt") as f:
        f.write(json.dumps({"id": "1", "text": "hello world", "metadata": {"shard": "../../../escaped"}}) + "\n")
    recipe = write_recipe(tmp_path / "r.yaml", [], [src], tmp_path / "out")
    result = webmill("run", recipe, "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list(tmp_path.rglob("*escaped*.parquet")) or all(
        (tmp_path / "out" / "data") in p.parents for p in tmp_path.rglob("*escaped*.parquet"))
    assert not (tmp_path.parent / "escaped.parquet").exists()


def test_a_hub_token_in_the_environment_never_reaches_outputs_or_logs(tmp_path, html_page):
    from conftest import write_warc

    secret = "hf_webmillTESTtoken0123456789abcdef"
    warc = write_warc(tmp_path / "in.warc.gz", [{"url": "http://example.org/", "body": html_page("x"),
                                                 "content_type": "text/html"}])
    recipe = write_recipe(tmp_path / "r.yaml", ["extract", "exact_dedup"], [warc], tmp_path / "out")
    env = dict(os.environ, HF_TOKEN=secret, HUGGING_FACE_HUB_TOKEN=secret)
    result = webmill("run", recipe, "--exclusions", tmp_path / "out" / "excluded", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert secret not in result.stdout + result.stderr
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
