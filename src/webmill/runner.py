"""Run a recipe on a datatrove executor and account for it.

Re-running the same command resumes: datatrove skips tasks already marked complete in `logs/`. To keep
that safe, the output folder remembers the recipe it was made with and refuses a different one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

from webmill.accounting import merge_task_stats, stage_rows, write_stats
from webmill.errors import WebmillError
from webmill.parquet_output import PARTIAL
from webmill.pipeline import OutputLayout, Phase, build_plan
from webmill.recipe import Recipe
from webmill.tokens import tokenizer_name


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
    elif layout.root.exists() and any(p.is_file() for p in layout.root.rglob("*")):
        raise WebmillError(f"{layout.root} exists and is not a webmill output; choose another --output "
                           "or pass --overwrite")
    try:
        layout.logs.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(fingerprint, indent=1))
    except OSError as err:
        raise WebmillError(f"cannot write to the output folder {layout.root}: {err.strerror}") from None


def make_executor(recipe: Recipe, phase: Phase, layout: OutputLayout, depends=None):
    ex = recipe.executor
    tasks = phase.tasks or ex.tasks
    workers = min(ex.workers if ex.workers > 0 else tasks, tasks)
    logging_dir = str(layout.logs / phase.name)
    if ex.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(phase.steps, tasks=tasks, workers=workers, logging_dir=logging_dir,
                                     start_method="fork", depends=depends)
    if ex.kind == "ray":
        try:
            import ray
        except ImportError:
            raise WebmillError("the Ray executor needs the 'ray' extra: pip install 'webmill[ray]'") from None
        from datatrove.executor import RayPipelineExecutor

        address = ex.ray_address or os.environ.get("RAY_ADDRESS")
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        return RayPipelineExecutor(phase.steps, tasks=tasks, workers=workers, logging_dir=logging_dir,
                                   cpus_per_task=ex.cpus_per_task, mem_per_cpu_gb=ex.mem_per_cpu_gb,
                                   depends=depends)
    from datatrove.executor import SlurmPipelineExecutor

    if not ex.partition:
        raise WebmillError(f"{recipe.path}: the slurm executor needs executor.partition (or --partition)")
    activate = os.path.join(sys.prefix, "bin", "activate")
    return SlurmPipelineExecutor(phase.steps, tasks=tasks, time=ex.time, partition=ex.partition,
                                 cpus_per_task=ex.cpus_per_task, mem_per_cpu_gb=ex.mem_per_cpu_gb,
                                 workers=workers, logging_dir=logging_dir, depends=depends,
                                 venv_path=activate if os.path.exists(activate) else None,
                                 job_name=f"webmill-{recipe.name}-{phase.name}")


def describe_plan(recipe: Recipe, limit: int = -1) -> str:
    """What a run would do, without running it: phases, tasks, steps; for Slurm, the sbatch scripts."""
    layout = OutputLayout(Path(recipe.output.dir))
    phases = build_plan(recipe, layout, limit=limit, dry_run=True)
    lines = []
    for number, phase in enumerate(phases):
        tasks = phase.tasks or recipe.executor.tasks
        lines.append(f"# phase {number}: {phase.name}, {tasks} task(s)" + (", after the previous phase" if number else ""))
        lines.extend(f"#   {label:<24} {step}" for label, step in zip(phase.labels, phase.steps))
        if recipe.executor.kind == "slurm":
            executor = make_executor(recipe, phase, layout)
            script = executor.get_launch_file_contents(
                executor.get_sbatch_args(min(tasks, executor.max_array_size)),
                f"srun -l launch_pickled_pipeline {executor.logging_dir.resolve_paths('executor.pik')}")
            lines.append(script.rstrip())
            if number:
                lines.append("# submitted with --dependency=afterok:<job id of the previous phase>")
        lines.append("")
    return "\n".join(lines)


def run_recipe(recipe: Recipe, limit: int = -1, overwrite: bool = False, progress: bool = True) -> dict | None:
    """Run and return the stats report (None when the executor only submitted jobs, as Slurm does)."""
    layout = OutputLayout(Path(recipe.output.dir))
    prepare_output(layout, recipe_fingerprint(recipe, limit), overwrite)
    phases = build_plan(recipe, layout, limit=limit, progress=progress)
    executor = None
    for phase in phases:  # each phase waits for the previous one (datatrove's `depends`)
        executor = make_executor(recipe, phase, layout, depends=executor)
    started = time.perf_counter()
    try:
        executor.run()
    except Exception as err:  # a task failed: completed tasks stay done, the run can be resumed
        reason = "the disk is full or a file size limit was hit" if getattr(err, "errno", None) in (28, 27) else ""
        raise WebmillError(
            f"the run failed ({type(err).__name__}: {err}{'; ' + reason if reason else ''}). Completed tasks are "
            f"kept and no unfinished output is in {layout.data}; fix the cause and run the same command again to "
            f"resume (task logs in {layout.logs})"
        ) from None
    if recipe.executor.kind == "slurm":
        return None
    partial = layout.data / PARTIAL  # emptied by the writers; removed here, once no task can still use it
    if partial.is_dir() and not any(partial.iterdir()):
        partial.rmdir()
    steps, labels = [], []
    for phase in phases:
        merged = merge_task_stats(layout.logs / phase.name)
        if merged is None:
            raise WebmillError(f"the run finished without task statistics; see the logs in {layout.logs / phase.name}")
        steps.extend(merged)
        labels.extend(phase.labels)
    rows = stage_rows(steps, labels)
    kind = recipe.output.count_tokens
    tokenizer = None if kind == "none" else tokenizer_name(kind)
    return write_stats(layout.stats, recipe.name, rows, recipe.executor.tasks, time.perf_counter() - started,
                       tokenizer)
