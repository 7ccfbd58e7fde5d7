"""`webmill mix RECIPE.yaml`: mix corpora by token shares (The Pile's way); see webmill.mix."""

from __future__ import annotations

from webmill.errors import WebmillError

# options of `webmill run` that a mix recipe has no use for: refused rather than silently ignored
RUN_ONLY_OPTIONS = ("input", "tasks", "workers", "executor", "partition", "ray_address", "exclusions")


def mix_command(recipe_path: str, output: str | None, overwrite: bool, dry_run: bool) -> int:
    from webmill.mix import load_mix_recipe, run_mix, summary_table

    recipe = load_mix_recipe(recipe_path, output_dir=output)
    print(f"webmill: mix '{recipe.name}': {len(recipe.sources)} source(s), counting tokens", flush=True)
    report = run_mix(recipe, overwrite=overwrite, dry_run=dry_run)
    print(summary_table(report))
    if dry_run:
        print("webmill: dry run, nothing written")
    else:
        print(f"webmill: corpus in {recipe.output.dir}/data, accounting in {recipe.output.dir}/stats.json")
    return 0


def cmd_mix(args) -> int:
    return mix_command(args.recipe, args.output, args.overwrite, args.dry_run)


def run_as_mix(args) -> int:
    """`webmill run` on a mix recipe."""
    given = [name for name in RUN_ONLY_OPTIONS if getattr(args, name, None) is not None]
    if given or getattr(args, "limit", -1) != -1:
        option = "--" + (given[0] if given else "limit").replace("_", "-")
        raise WebmillError(f"{args.recipe} is a mix recipe: {option} does not apply to it")
    return mix_command(args.recipe, args.output, args.overwrite, args.dry_run)


def add_parser(subparsers) -> None:
    mix = subparsers.add_parser("mix", help="mix corpora into one by token shares or epochs (The Pile's way)")
    mix.add_argument("recipe", help="a mix recipe, e.g. pipelines/pile.yaml")
    mix.add_argument("--output", help="output folder (replaces the recipe's)")
    mix.add_argument("--overwrite", action="store_true", help="delete the output folder first")
    mix.add_argument("--dry-run", action="store_true", help="count tokens and print the plan; write nothing")
    mix.set_defaults(func=cmd_mix)
