"""Scale-out benchmark: docs/s with 1 and 2 local workers and on a local Ray cluster, and peak RSS of a
single worker as the input grows 1x -> 3x -> 10x (it must stay flat: stages stream documents).

Input: the shipped page shards (918 real pages) linked N times under bench/work/scale/. Recipe: a fast
extraction + language ID + Gopher repetition + exact dedup (a multi-phase recipe, so barriers are
exercised too). Each configuration runs in its own process; numbers are from one run of this script,
compare them as ratios. Writes bench/results/scale.json.

    python bench/scale.py [--sizes 1 3 10] [--skip-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work" / "scale"
PAGES = sorted((REPO / "data" / "samples" / "warc").glob("pages-*.warc.gz"))
STAGES = [{"extract": {"fast": True}}, {"language": {"min_score": 0.3}}, "gopher_repetition", "exact_dedup"]


def make_input(copies: int) -> Path:
    folder = WORK / f"input-{copies}x"
    if not folder.exists():
        folder.mkdir(parents=True)
        for copy in range(copies):
            for page in PAGES:
                (folder / f"c{copy:02d}-{page.name}").symlink_to(page)
    return folder


def write_recipe(path: Path, input_dir: Path, output: Path, kind: str, tasks: int, workers: int) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({
        "name": path.stem, "input": {"paths": [str(input_dir)]}, "output": {"dir": str(output)},
        "executor": {"kind": kind, "tasks": tasks, "workers": workers}, "stages": STAGES,
    }, sort_keys=False))
    return path


def child(recipe_path: str, ray_cluster: bool) -> None:
    """Run one configuration in this process and print its result as JSON."""
    from webmill.recipe import load_recipe
    from webmill.runner import run_recipe

    if ray_cluster:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter()
    report = run_recipe(load_recipe(recipe_path), overwrite=True, progress=False)
    wall = time.perf_counter() - started
    print("RESULT " + json.dumps({"wall_s": round(wall, 2), "documents_in": report["stages"][1]["read"],
                                  "documents_out": report["documents_out"],
                                  "self_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    if ray_cluster:
        ray.shutdown()


def run_config(name: str, copies: int, kind: str, tasks: int, workers: int) -> dict:
    input_dir = make_input(copies)
    out = WORK / "out" / name
    recipe = write_recipe(WORK / f"{name}.yaml", input_dir, out, kind, tasks, workers)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, __file__, "--child", str(recipe)] + (["--ray"] if kind == "ray" else []),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result.update(name=name, copies=copies, executor=kind, tasks=tasks, workers=workers,
                  docs_per_s=round(result["documents_in"] / result["wall_s"], 1),
                  # the largest process seen so far among children (workers are forked children of it)
                  max_child_rss_mb_so_far=round(max(before, children_peak) / 1024, 1))
    shutil.rmtree(out, ignore_errors=True)
    print(f"{name:<24} {result['documents_in']:>6} docs  {result['wall_s']:>7.1f} s  {result['docs_per_s']:>6} docs/s  "
          f"peak RSS {result['self_peak_rss_mb']} MB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--ray", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.ray)
        return

    results = [run_config("local-1-worker", 1, "local", 4, 1), run_config("local-2-workers", 1, "local", 4, 2)]
    if not args.skip_ray:
        results.append(run_config("ray-2-workers", 1, "ray", 4, 2))
    growth = [run_config(f"rss-{n}x", n, "local", 1, 1) for n in args.sizes]
    base = results[0]["docs_per_s"]
    summary = {
        "benchmark": "webmill scale-out and memory growth",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "recipe_stages": STAGES,
        "input": f"{len(PAGES)} shipped page shards (918 HTML pages) linked N times",
        "throughput": results,
        "speedup_vs_1_worker": {r["name"]: round(r["docs_per_s"] / base, 2) for r in results},
        "rss_growth": [{"copies": g["copies"], "documents": g["documents_in"], "peak_rss_mb": g["self_peak_rss_mb"]}
                       for g in growth],
        "rss_ratio_largest_vs_smallest": round(growth[-1]["self_peak_rss_mb"] / growth[0]["self_peak_rss_mb"], 2),
        "notes": "peak RSS is that of the single-worker process (the local executor runs one worker in-process); "
                 "docs/s counts documents entering extraction.",
    }
    out = REPO / "bench" / "results" / "scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: summary[k] for k in ("speedup_vs_1_worker", "rss_growth", "rss_ratio_largest_vs_smallest")},
                     indent=1))


if __name__ == "__main__":
    main()
