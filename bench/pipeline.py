"""Throughput of webmill's pipelines against datatrove's stock FineWeb example pipeline.

    python bench/pipeline.py                     # full run: ≥ 5,000 records, 2 rounds, JSON + Markdown table
    python bench/pipeline.py --replicas 1 --rounds 1 --configs stock-datatrove-fineweb webmill-fineweb

Input: the shipped page shards `data/samples/warc/pages-000*.warc.gz` (real HTML pages, one request and
one response record each), linked under `bench/work/input/` as many times as needed to reach
`--min-records` response records. Every configuration reads that same folder.

Each run is its own subprocess (a fresh interpreter, so no warm caches or loaded models carry over).
The child times its pipeline (model and tokenizer loading included, interpreter start and imports not)
and reports its own peak RSS and that of its largest child process (`getrusage`); the parent also
samples the summed RSS of the whole process tree twice a second. Configurations are interleaved
(A B C D …, A B C D …) so a noisy neighbour slows every configuration alike, and the medians are used.

docs/s per core = input response records / pipeline wall seconds / cores used. The denominator is the
same for every configuration, whatever each reader keeps, so a pipeline that skips pages is not
credited with reading them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"
SOURCE_GLOB = "pages-000*.warc.gz"
SOURCE_DIR = ROOT / "data" / "samples" / "warc"
SHIPPED_LID = ROOT / "src" / "webmill" / "assets" / "lid.176.ftz"

CONFIGS = {
    "stock-datatrove-fineweb": {"kind": "stock", "cores": 1},
    "webmill-fineweb": {"kind": "webmill", "recipe": "pipelines/fineweb.yaml", "cores": 1},
    "webmill-fineweb-fast": {"kind": "webmill", "recipe": "pipelines/fineweb.yaml", "fast": True, "cores": 1},
    "webmill-refinedweb": {"kind": "webmill", "recipe": "pipelines/refinedweb.yaml", "cores": 1},
    "webmill-fineweb-2cores": {"kind": "webmill", "recipe": "pipelines/fineweb.yaml", "cores": 2},
}
STOCK = "stock-datatrove-fineweb"


# -- input -------------------------------------------------------------------------------------------
def count_responses(path: Path) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(path, "rb") as stream:
        return sum(1 for _ in ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=False))


def prepare_input(min_records: int, replicas: int | None, shards: int | None = None) -> dict:
    """Link the shards round-robin (copy 0 of every shard, then copy 1, …) until there are enough
    response records, or exactly `replicas` full copies."""
    sources = sorted(SOURCE_DIR.glob(SOURCE_GLOB))[:shards]
    if not sources:
        sys.exit(f"no input shards match {SOURCE_DIR / SOURCE_GLOB}")
    per_file = {p.name: count_responses(p) for p in sources}
    folder = WORK / "input"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    linked, records, i = [], 0, 0
    while (records < min_records) if replicas is None else (i < replicas * len(sources)):
        p = sources[i % len(sources)]
        link = folder / f"r{i // len(sources):02d}-{p.name}"
        link.symlink_to(p)
        linked.append(link.name)
        records += per_file[p.name]
        i += 1
    counted = sum(count_responses(p) for p in sorted(folder.iterdir()))  # counted again on the links
    assert counted == records, (counted, records)
    return {"source_files": per_file, "responses_per_copy": sum(per_file.values()),
            "copies": round(len(linked) / len(sources), 2), "files": len(linked), "response_records": counted,
            "records_in_files": "each page is a request + response pair, plus one warcinfo record per file",
            "folder": str(folder.relative_to(ROOT)), "linked": linked}


# -- children: one configuration, one run ------------------------------------------------------------
def child_stock(input_dir: str, out: Path, snapshot: Path) -> dict:
    """datatrove's FineWeb example (examples/fineweb.py, first stage), on the local executor."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
        URLFilter,
    )
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.lid import FT176LID

    class ShippedFT176LID(FT176LID):
        """datatrove's fastText LID, loading the shipped lid.176.ftz instead of downloading lid.176.bin."""

        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(str(snapshot / SHIPPED_LID.relative_to(ROOT)))
            return self._model

    language_filter = LanguageFilter(languages=["en"], language_threshold=0.65)
    language_filter.model = ShippedFT176LID(["en"])  # predict() is datatrove's own (k=-1, all labels)

    pipeline = [
        WarcReader(input_dir, glob_pattern="*.warc.gz"),
        URLFilter(),
        Trafilatura(favour_precision=True, timeout=1),
        language_filter,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        JsonlWriter(str(out / "data")),
    ]
    executor = LocalPipelineExecutor(pipeline, tasks=1, workers=1, logging_dir=str(out / "logs"))
    started = time.perf_counter()
    executor.run()
    wall = time.perf_counter() - started

    import gzip

    docs = 0
    for f in sorted((out / "data").glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as lines:
            docs += sum(1 for _ in lines)
    stats = json.loads((out / "logs" / "stats.json").read_text())
    reader = stats[0]["stats"]
    return {"wall_s": wall, "docs_out": docs, "docs_read": int(_stat(reader, "documents")),
            "stages": [type(step).__name__ for step in pipeline],
            "steps": [(s["name"], round(s["time_stats"]["total"], 2)) for s in stats]}


def _stat(stats: dict, key: str) -> float:
    value = stats.get(key, 0)
    return value["total"] if isinstance(value, dict) else value


def bench_recipe(source: Path, fast: bool, dest: Path) -> tuple[Path, list[str], list[str]]:
    """The recipe's stages up to (not including) deduplication, which the stock pipeline does not do and
    which, on an input made of copies, would measure nothing but the copies; optionally `fast` extraction."""
    import yaml

    raw = yaml.safe_load(source.read_text())
    kept, removed = [], []
    for stage in raw["stages"]:
        name = stage if isinstance(stage, str) else next(iter(stage))
        if "dedup" in name:
            removed.append(name)
            continue
        if name == "extract" and fast:
            params = dict(stage["extract"] or {}) if isinstance(stage, dict) else {}
            stage = {"extract": params | {"fast": True}}
        kept.append(stage)
    raw["stages"] = kept
    dest.write_text(yaml.safe_dump(raw, sort_keys=False))
    names = [s if isinstance(s, str) else next(iter(s)) for s in kept]
    return dest, names, removed


def child_webmill(config: dict, input_dir: str, out: Path, snapshot: Path) -> dict:
    from webmill.recipe import load_recipe
    from webmill.runner import run_recipe

    import webmill

    assert Path(webmill.__file__).is_relative_to(snapshot), webmill.__file__  # the copied sources, not the tree
    recipe_path, stages, removed = bench_recipe(snapshot / config["recipe"], bool(config.get("fast")),
                                                out.parent / f"{out.name}-recipe.yaml")
    tasks = config["cores"]
    recipe = load_recipe(recipe_path, {"input": {"paths": [input_dir]}, "output": {"dir": str(out)},
                                       "executor": {"tasks": tasks, "workers": tasks}})
    started = time.perf_counter()
    error = None
    try:
        report = run_recipe(recipe, overwrite=True, progress=False)
    except Exception as err:
        # the corpus is complete when every task left its stats file; only the run summary failed
        if len(list((out / "logs").rglob("stats/*.json"))) < tasks:
            raise
        error, report = f"{type(err).__name__}: {err}", None
    wall = time.perf_counter() - started

    import pyarrow.parquet as pq

    docs = sum(pq.ParquetFile(f).metadata.num_rows for f in sorted((out / "data").glob("*.parquet")))
    result = {"wall_s": wall, "docs_out": docs, "stages": stages, "stages_left_out": removed}
    if report is not None:
        assert report["documents_out"] == docs, (report["documents_out"], docs)
        result["docs_read"] = report["stages"][0]["kept"]
        result["steps"] = [(r["stage"], round(r["time_s"], 2)) for r in report["stages"]]
    else:
        result["summary_error"] = error
        per_step: dict[str, list] = {}
        for f in sorted((out / "logs").rglob("stats/*.json")):
            for step in json.loads(f.read_text()):
                entry = per_step.setdefault(step["name"], [0.0, 0])
                entry[0] += step["time_stats"]["total"]
                entry[1] += int(_stat(step["stats"], "forwarded"))
        result["steps"] = [(name, round(t, 2)) for name, (t, _) in per_step.items()]
        result["docs_read"] = next(iter(per_step.values()))[1]
    return result


def _cpu_s() -> float:
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def child_main(name: str, input_dir: str, out: str, snapshot: str) -> None:
    import resource

    out_path = Path(out)
    shutil.rmtree(out_path, ignore_errors=True)
    out_path.mkdir(parents=True)
    config = CONFIGS[name]
    cpu_before = _cpu_s()
    snap = Path(snapshot)
    if config["kind"] == "stock":
        result = child_stock(input_dir, out_path, snap)
    else:
        result = child_webmill(config, input_dir, out_path, snap)
    # this process and every descendant it has waited for (extractor sandbox, pool workers)
    result["cpu_s"] = _cpu_s() - cpu_before
    result["rss_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_largest_child_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("BENCH-RESULT " + json.dumps(result), flush=True)


# -- parent ------------------------------------------------------------------------------------------
def _tree_rss_kb(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_config(name: str, round_no: int, log_dir: Path, env_extra: dict, snapshot: Path) -> dict:
    out = WORK / "out" / f"{name}-r{round_no}"
    log = log_dir / f"{name}-r{round_no}.log"
    env = os.environ | env_extra
    started = time.perf_counter()
    with open(log, "w") as log_file:
        proc = subprocess.Popen([sys.executable, __file__, "--child", name, "--input-dir", str(WORK / "input"),
                                 "--out", str(out), "--snapshot", str(snapshot)], stdout=subprocess.PIPE, stderr=log_file, text=True,
                                cwd=ROOT, env=env)
        peak = [0]

        def sample():
            while proc.poll() is None:
                peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, _ = proc.communicate()
        sampler.join()
    process_wall = time.perf_counter() - started
    lines = [ln for ln in stdout.splitlines() if ln.startswith("BENCH-RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name} round {round_no} failed (exit {proc.returncode}); see {log}")
    result = json.loads(lines[-1].removeprefix("BENCH-RESULT "))
    result["process_wall_s"] = process_wall
    result["rss_tree_sampled_mb"] = peak[0] / 1024
    return result


def machine_info() -> dict:
    from importlib.metadata import version

    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for pkg in ("datatrove", "trafilatura", "fastwarc", "warcio", "fasttext-numpy2-wheel", "spacy", "pyarrow",
                "tldextract", "lxml", "webmill"):
        try:
            versions[pkg] = version(pkg)
        except Exception:
            versions[pkg] = None
    load = os.getloadavg()
    return {"cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu_model": cpu,
            "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
            "loadavg_at_start": [round(x, 2) for x in load]}


def tldextract_probe() -> dict:
    """What datatrove's URLFilter meets on a cold cache: TLDExtract() fetches the public-suffix list."""
    cache = WORK / "tldextract-probe"
    shutil.rmtree(cache, ignore_errors=True)
    code = ("import time, logging; logging.disable(logging.WARNING); from tldextract import TLDExtract; "
            "t=time.perf_counter(); TLDExtract()('http://news.example.co.uk/a'); print(time.perf_counter()-t)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=os.environ | {"TLDEXTRACT_CACHE": str(cache)}, timeout=120)
    cold = float(done.stdout.strip()) if done.returncode == 0 else None
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=os.environ | {"TLDEXTRACT_CACHE": str(cache)}, timeout=120)
    warm = float(done.stdout.strip()) if done.returncode == 0 else None
    return {"cold_cache_first_lookup_s": cold, "warm_cache_first_lookup_s": warm}


def fixed_cost_probe() -> dict:
    """What every task pays before its first document: the URL block-lists, spaCy, fastText (one process)."""
    code = r"""
import json, logging, sys, time
logging.disable(logging.WARNING)
def rss():
    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024
out = {"rss_start_mb": rss()}
from datatrove.pipeline.filters import URLFilter
f = URLFilter()
t = time.perf_counter(); f.download_data()
out["url_blocklists_load_s"] = time.perf_counter() - t
out["url_blocklist_domains"] = len(f.block_listed_domains)
out["rss_after_url_blocklists_mb"] = rss()
from datatrove.utils.word_tokenizers import load_word_tokenizer
t = time.perf_counter(); load_word_tokenizer("en").word_tokenize("Load it.")
out["spacy_import_and_load_s"] = time.perf_counter() - t
out["rss_after_spacy_mb"] = rss()
import fasttext
t = time.perf_counter(); fasttext.load_model(sys.argv[1])
out["fasttext_ftz_load_s"] = time.perf_counter() - t
print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}))
"""
    done = subprocess.run([sys.executable, "-c", code, str(SHIPPED_LID)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def take_snapshot() -> Path:
    """Copy webmill's sources and recipes once, so that every run of this benchmark runs the same code even
    while the working tree changes."""
    snap = WORK / "snapshot"
    shutil.rmtree(snap, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src", snap / "src", ignore=ignore)
    shutil.copytree(ROOT / "pipelines", snap / "pipelines", ignore=ignore)
    return snap


def source_fingerprint(base: Path = ROOT) -> dict:
    """Which webmill code ran: HEAD plus a hash of the sources as copied (they may be uncommitted)."""
    import hashlib

    digest = hashlib.sha256()
    for f in sorted([*base.glob("src/webmill/**/*.py"), *base.glob("pipelines/*.yaml")]):
        digest.update(str(f.relative_to(base)).encode() + b"\0" + f.read_bytes())
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "pipelines"], capture_output=True,
                           text=True, cwd=ROOT)
    return {"git_head": head.stdout.strip() or None, "sources_sha256": digest.hexdigest()[:16],
            "uncommitted_source_changes": bool(dirty.stdout.strip())}


def markdown_table(summary: dict, records: int) -> str:
    rows = ["| configuration | cores | wall s (median) | docs/s per core | vs stock | docs per CPU-s | vs stock "
            "(CPU) | docs out | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in summary.items():
        rows.append(f"| {name} | {s['cores']} | {s['wall_s_median']:.1f} | {s['docs_per_s_per_core']:.1f} | "
                    f"{s['ratio_vs_stock']:.2f}× | {s['docs_per_cpu_s']:.1f} | {s['cpu_ratio_vs_stock']:.2f}× | "
                    f"{s['docs_out']} | {s['peak_rss_mb']:.0f} |")
    rows.append(f"\n{records} WARC response records in. docs/s per core = records / wall s / cores; docs per CPU-s "
                "= records / CPU seconds of the run's processes (less sensitive to other load on the machine); "
                "peak RSS = largest single process.")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--min-records", type=int, default=5000)
    parser.add_argument("--replicas", type=int, help="copies of the shards (default: enough for --min-records)")
    parser.add_argument("--shards", type=int, help="use only the first N source shards (quick checks)")
    parser.add_argument("--output", default=str(RESULTS / "pipeline.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.child:
        child_main(args.child, args.input_dir, args.out, args.snapshot)
        return

    sys.path.insert(0, str(ROOT / "src"))
    info = machine_info()
    data = prepare_input(args.min_records, args.replicas, args.shards)
    records = data["response_records"]
    print(f"input: {records} response records in {data['files']} files ({data['copies']} copies of "
          f"{len(data['source_files'])} shards)", flush=True)
    probe = tldextract_probe()
    fixed = fixed_cost_probe()
    print(f"fixed costs per task: {fixed}", flush=True)
    snapshot = take_snapshot()
    sources = source_fingerprint(snapshot)
    print(f"webmill sources: {sources}", flush=True)
    log_dir = WORK / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # the stock URLFilter's TLDExtract() keeps its suffix-list cache here, fresh for every stock run
    runs: dict[str, list[dict]] = {name: [] for name in args.configs}
    bench_started = time.perf_counter()
    for round_no in range(1, args.rounds + 1):
        for name in args.configs:
            env = {"PYTHONPATH": str(snapshot / "src")}
            if CONFIGS[name]["kind"] == "stock":
                cache = WORK / "out" / f"tldextract-{round_no}"
                shutil.rmtree(cache, ignore_errors=True)
                env["TLDEXTRACT_CACHE"] = str(cache)
            load_before = round(os.getloadavg()[0], 2)
            result = run_config(name, round_no, log_dir, env, snapshot)
            result["loadavg_1m_before"] = load_before
            result["sources"] = source_fingerprint(snapshot)["sources_sha256"]
            runs[name].append(result)
            print(f"round {round_no} {name:<24} {result['wall_s']:7.1f} s  "
                  f"{records / result['wall_s'] / CONFIGS[name]['cores']:6.1f} docs/s/core  "
                  f"cpu {result['cpu_s']:7.1f} s  out {result['docs_out']:5d}  rss {max(result['rss_self_mb'], result['rss_largest_child_mb']):5.0f} MB",
                  flush=True)

    summary = {}
    for name, results in runs.items():
        cores = CONFIGS[name]["cores"]
        wall = statistics.median(r["wall_s"] for r in results)
        summary[name] = {
            "cores": cores,
            "wall_s_rounds": [round(r["wall_s"], 2) for r in results],
            "process_wall_s_rounds": [round(r["process_wall_s"], 2) for r in results],
            "wall_s_median": round(wall, 2),
            "docs_per_s_per_core": round(records / wall / cores, 2),
            "cpu_s_rounds": [round(r["cpu_s"], 2) for r in results],
            "cpu_s_median": round(statistics.median(r["cpu_s"] for r in results), 2),
            "docs_per_cpu_s": round(records / statistics.median(r["cpu_s"] for r in results), 2),
            "sources_each_round": [r["sources"] for r in results],
            "docs_read_by_reader": results[0]["docs_read"],
            "docs_out": results[0]["docs_out"],
            "docs_out_rounds": [r["docs_out"] for r in results],
            "peak_rss_mb": round(max(max(r["rss_self_mb"], r["rss_largest_child_mb"]) for r in results), 1),
            "peak_rss_self_mb": round(max(r["rss_self_mb"] for r in results), 1),
            "peak_rss_largest_child_mb": round(max(r["rss_largest_child_mb"] for r in results), 1),
            "peak_rss_tree_sampled_mb": round(max(r["rss_tree_sampled_mb"] for r in results), 1),
            "stages": results[0].get("stages"),
            "stages_left_out": results[0].get("stages_left_out", []),
            "step_time_s_first_round": results[0]["steps"],
            "loadavg_1m_before_each_round": [r["loadavg_1m_before"] for r in results],
        }
        errors = sorted({r["summary_error"] for r in results if r.get("summary_error")})
        if errors:
            summary[name]["run_summary_error"] = errors
    if STOCK in summary:
        base = summary[STOCK]["docs_per_s_per_core"]
        for s in summary.values():
            s["ratio_vs_stock"] = round(s["docs_per_s_per_core"] / base, 3)
            s["cpu_ratio_vs_stock"] = round(s["docs_per_cpu_s"] / summary[STOCK]["docs_per_cpu_s"], 3)
            s["docs_out_vs_stock"] = round(s["docs_out"] / max(summary[STOCK]["docs_out"], 1), 3)
    else:
        for s in summary.values():
            s["ratio_vs_stock"] = s["cpu_ratio_vs_stock"] = float("nan")

    report = {
        "benchmark": "webmill pipelines vs datatrove's stock FineWeb example pipeline, throughput",
        "machine": info,
        "input": data,
        "rounds": args.rounds,
        "order": "interleaved: " + " ".join(args.configs) + " per round",
        "bench_wall_s": round(time.perf_counter() - bench_started, 1),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "configs": summary,
        "tldextract_network_probe": probe,
        "per_task_fixed_costs": fixed,
        "webmill_sources": sources | {"copied_to": str(snapshot.relative_to(ROOT))},
        "notes": [
            "wall_s: the pipeline inside the child process (executor run incl. model/tokenizer loading and "
            "task start-up; excludes interpreter start and imports); process_wall_s: the whole child process.",
            "docs/s per core = input response records / median wall_s / cores used (1 task / 1 worker, except "
            "webmill-fineweb-2cores: 2 tasks / 2 workers on the 2 cores).",
            "stock-datatrove-fineweb: WarcReader → URLFilter → Trafilatura(favour_precision=True, timeout=1) → "
            "LanguageFilter(languages=['en'], language_threshold=0.65) → GopherRepetitionFilter → "
            "GopherQualityFilter → C4QualityFilter(filter_no_terminal_punct=False) → FineWebQualityFilter → "
            "JsonlWriter (gzip, as in datatrove's examples/fineweb.py; no exclusion writers, as in the webmill "
            "runs), LocalPipelineExecutor(tasks=1, workers=1). Trafilatura keeps datatrove's default "
            "deduplicate=True (webmill's extract defaults to False).",
            "stock LanguageFilter: no network here, so its FT176LID is replaced after construction by a subclass "
            "whose model property loads the shipped src/webmill/assets/lid.176.ftz (the model webmill uses) "
            "instead of downloading lid.176.bin; datatrove's predict (k=-1, scores for all labels) is unchanged.",
            "stock URLFilter: TLDExtract() tries to fetch the public-suffix list (publicsuffix.org, then "
            "raw.githubusercontent.com) on first use; here DNS fails at once, it logs two warnings with "
            "tracebacks and falls back to its bundled snapshot (see tldextract_network_probe; each stock run "
            "starts with an empty TLDEXTRACT_CACHE). Behind a firewall that drops packets it would wait for "
            "its request timeout instead.",
            "stock WarcReader: these WARCs have no WARC-Identified-Payload-Type, so it sniffs each body with "
            "libmagic; docs_read_by_reader shows how many response records each reader passed on.",
            "peak_rss_mb: the largest single process (getrusage ru_maxrss of the child and of its largest "
            "descendant: datatrove's extractor sandbox for the stock run, the task workers for 2 cores); "
            "peak_rss_tree_sampled_mb: summed RSS of the process tree sampled every 0.5 s (counts "
            "copy-on-write pages shared after fork once per process).",
            "webmill configurations run a recipe's stages up to deduplication (stages_left_out): the stock "
            "pipeline (the first stage of datatrove's FineWeb example) does not deduplicate, and on an input made "
            "of copies deduplication would only measure the copies. They run webmill's sources and recipes as "
            "copied at the start of the benchmark (webmill_sources), the same code for every round.",
            "the input is the same pages several times over: page content repeats every "
            f"{data['responses_per_copy']} records, which trafilatura's deduplicate cache (stock) may notice.",
        ],
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print()
    print(markdown_table(summary, records))
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
