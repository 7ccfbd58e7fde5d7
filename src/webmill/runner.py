"""Run a recipe on a datatrove executor and account for it.

Re-running the same command resumes: datatrove skips tasks already marked complete in `logs/`. To keep
that safe, the output folder remembers the recipe it was made with and refuses a different one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

from webmill.accounting import merge_task_stats, stage_rows, write_stats
from webmill.errors import WebmillError
from webmill.pipeline import OutputLayout, build_pipeline
from webmill.recipe import Recipe


def recipe_fingerprint(recipe: Recipe, limit: int) -> dict:
    return {
        "input_files": recipe.input_files,
        "input": dataclasses.asdict(recipe.input) | {"paths": None},
        "output": dataclasses.asdict(recipe.output) | {"dir": None},
        "tasks": recipe.executor.tasks,
        "limit": limit,
        "stages": [{"stage": s.label, "params": dataclasses.asdict(s.params)} for s in recipe.stages],
    }


def prepare_output(layout: OutputLayout, fingerprint: dict, overwrite: bool) -> None:
    marker = layout.logs / "recipe.json"
    if overwrite and layout.root.exists():
        shutil.rmtree(layout.root)
    if marker.exists():
        if json.loads(marker.read_text()) != fingerprint:
            raise WebmillError(
                f"{layout.root} holds the output of a different recipe, inputs or settings; "
                "choose another --output or pass --overwrite"
            )
    elif layout.root.exists() and any(layout.root.iterdir()):
        raise WebmillError(f"{layout.root} exists and is not a webmill output; choose another --output "
                           "or pass --overwrite")
    try:
        layout.logs.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(fingerprint, indent=1))
    except OSError as err:
        raise WebmillError(f"cannot write to the output folder {layout.root}: {err.strerror}") from None


def make_executor(recipe: Recipe, pipeline: list, layout: OutputLayout):
    ex = recipe.executor
    logging_dir = str(layout.logs)
    if ex.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(pipeline, tasks=ex.tasks, workers=ex.workers, logging_dir=logging_dir,
                                     start_method="fork")
    if ex.kind == "ray":
        try:
            import ray
        except ImportError:
            raise WebmillError("the Ray executor needs the 'ray' extra: pip install 'webmill[ray]'") from None
        from datatrove.executor import RayPipelineExecutor

        address = ex.ray_address or os.environ.get("RAY_ADDRESS")
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        return RayPipelineExecutor(pipeline, tasks=ex.tasks, workers=ex.workers, logging_dir=logging_dir,
                                   cpus_per_task=ex.cpus_per_task, mem_per_cpu_gb=ex.mem_per_cpu_gb)
    from datatrove.executor import SlurmPipelineExecutor

    if not ex.partition:
        raise WebmillError(f"{recipe.path}: the slurm executor needs executor.partition (or --partition)")
    return SlurmPipelineExecutor(pipeline, tasks=ex.tasks, time=ex.time, partition=ex.partition,
                                 cpus_per_task=ex.cpus_per_task, mem_per_cpu_gb=ex.mem_per_cpu_gb,
                                 workers=ex.workers, logging_dir=logging_dir, job_name=f"webmill-{recipe.name}")


def run_recipe(recipe: Recipe, limit: int = -1, overwrite: bool = False, progress: bool = True) -> dict | None:
    """Run and return the stats report (None when the executor only submitted jobs, as Slurm does)."""
    layout = OutputLayout(Path(recipe.output.dir))
    prepare_output(layout, recipe_fingerprint(recipe, limit), overwrite)
    pipeline, labels = build_pipeline(recipe, layout, limit=limit, progress=progress)
    executor = make_executor(recipe, pipeline, layout)
    started = time.perf_counter()
    executor.run()
    if recipe.executor.kind == "slurm":
        return None
    merged = merge_task_stats(layout.logs)
    if merged is None:
        raise WebmillError(f"the run finished without task statistics; see the logs in {layout.logs}")
    rows = stage_rows(merged, labels)
    return write_stats(layout.stats, recipe.name, rows, recipe.executor.tasks, time.perf_counter() - started)
