"""webmill's command line: parses arguments and calls the library. No logic lives here."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from webmill.errors import WebmillError


def cmd_run(args) -> int:
    from webmill.accounting import summary_table
    from webmill.recipe import load_recipe
    from webmill.runner import run_recipe

    overrides = {
        "input": {"paths": args.input},
        "output": {"dir": args.output, "exclusions": args.exclusions},
        "executor": {"kind": args.executor, "tasks": args.tasks, "workers": args.workers,
                     "partition": args.partition, "ray_address": args.ray_address},
    }
    recipe = load_recipe(args.recipe, overrides)
    print(f"webmill: recipe '{recipe.name}': {len(recipe.input_files)} input file(s), "
          f"{len(recipe.stages)} stage(s), {recipe.executor.tasks} task(s) on {recipe.executor.kind}", flush=True)
    report = run_recipe(recipe, limit=args.limit, overwrite=args.overwrite, progress=not args.quiet)
    if report is None:
        print(f"webmill: jobs submitted; output will be in {recipe.output.dir}")
        return 0
    print(summary_table(report))
    print(f"webmill: corpus in {recipe.output.dir}/data, accounting in {recipe.output.dir}/stats.json")
    return 0


def cmd_stages(args) -> int:
    from webmill.stages.registry import all_stages
    from webmill.validate import describe_type

    for name, spec in sorted(all_stages().items()):
        if args.name and name not in args.name:
            continue
        print(f"{name}: {spec.summary}")
        hints = spec.param_types()
        for f in spec.param_fields():
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            print(f"    {f.name} ({describe_type(hints[f.name])}, default {default!r}): {f.metadata.get('help', '')}")
        if spec.columns:
            print(f"    adds columns: {', '.join(f'{c} ({t})' for c, t in spec.columns.items())}")
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webmill", description="WARC shards → pretraining corpora, offline.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a recipe (YAML) and write a Parquet corpus with stats")
    run.add_argument("recipe", help="path to a recipe, e.g. pipelines/refinedweb.yaml")
    run.add_argument("--input", nargs="+", help="input files, folders or globs (replace the recipe's)")
    run.add_argument("--output", help="output folder (replaces the recipe's)")
    run.add_argument("--tasks", type=int, help="number of tasks the input is split into")
    run.add_argument("--workers", type=int, help="tasks run at the same time")
    run.add_argument("--limit", type=int, default=-1, help="read at most N documents per task")
    run.add_argument("--executor", choices=["local", "ray", "slurm"], help="where to run")
    run.add_argument("--partition", help="slurm partition")
    run.add_argument("--ray-address", help="address of a running Ray cluster")
    run.add_argument("--exclusions", help="write dropped documents with their reason to this folder")
    run.add_argument("--overwrite", action="store_true", help="delete the output folder first")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    stages = sub.add_parser("stages", help="list the stages a recipe can use, with parameters and defaults")
    stages.add_argument("name", nargs="*", help="only these stages")
    stages.set_defaults(func=cmd_stages)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WebmillError as err:
        print(f"webmill: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("webmill: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
