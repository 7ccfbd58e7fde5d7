"""webmill's command line: parses arguments and calls the library. No logic lives here."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from webmill.errors import WebmillError


def cmd_run(args) -> int:
    from webmill.mix import is_mix_recipe

    if is_mix_recipe(args.recipe):  # a top-level `mix:` key: a mix of corpora, not a pipeline
        from webmill.commands.mix import run_as_mix

        return run_as_mix(args)
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
    if args.dry_run:
        from webmill.runner import describe_plan

        print(describe_plan(recipe, limit=args.limit))
        return 0
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


def cmd_kenlm_train(args) -> int:
    from webmill.kenlm.train import TrainConfig, train_model

    config = TrainConfig(lang=args.lang, order=args.order, vocab_size=args.vocab_size, prune=args.prune,
                         memory=args.memory, sample_sentences=args.sample, binary_type=args.binary,
                         discount_fallback=args.discount_fallback, wikitext=args.wikitext, seed=args.seed,
                         threads=args.threads)
    manifest = train_model(args.text, args.out, config, progress=lambda m: print(f"webmill: {m}", flush=True))
    sizes = ", ".join(f"{name} {info['bytes'] / 1e6:.1f} MB" for name, info in manifest["files"].items())
    print(f"webmill: {args.lang} model in {args.out} ({sizes}; {manifest['training_text']['tokens']} tokens, "
          f"{manifest['timings_s']['total']} s)")
    return 0


def cmd_kenlm_cutoffs(args) -> int:
    from webmill.kenlm.cutoffs import compute_cutoffs

    result = compute_cutoffs(args.model, args.lang, args.corpus, sample=args.sample,
                             percentiles=tuple(args.percentiles), per_paragraph=not args.whole_document,
                             seed=args.seed)
    low, high = result["cutoffs"]
    print(f"webmill: {result['documents']['scored']} '{args.lang}' documents scored; head < {low} <= middle "
          f"< {high} <= tail; written to {args.model}/{args.lang}.cutoffs.json")
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
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (phases, steps; sbatch scripts for slurm) and run nothing")
    run.set_defaults(func=cmd_run)

    stages = sub.add_parser("stages", help="list the stages a recipe can use, with parameters and defaults")
    stages.add_argument("name", nargs="*", help="only these stages")
    stages.set_defaults(func=cmd_stages)

    kenlm = sub.add_parser("kenlm", help="train KenLM perplexity models and their cutoffs (CCNet-style)")
    kenlm_sub = kenlm.add_subparsers(dest="kenlm_command", required=True)
    train = kenlm_sub.add_parser("train", help="train {lang}.sp.model + {lang}.arpa.bin from reference text")
    train.add_argument("--text", nargs="+", required=True, help="reference text files (.txt or .txt.gz, UTF-8)")
    train.add_argument("--lang", required=True, help="language code the model is for, e.g. en")
    train.add_argument("--out", required=True, help="model folder (created if missing)")
    train.add_argument("--order", type=int, default=5, help="n-gram order (default 5)")
    train.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece pieces (default 8000)")
    train.add_argument("--prune", type=int, nargs="+", default=[0, 0, 1],
                       help="lmplz --prune: count threshold per order (default 0 0 1: drop singleton 3+-grams)")
    train.add_argument("--memory", default="1G", help="sorting memory for lmplz/build_binary (default 1G)")
    train.add_argument("--sample", type=int, default=100_000,
                       help="paragraphs SentencePiece samples to train on (default 100000; its peak memory is "
                            "about 20x the sampled text)")
    train.add_argument("--binary", choices=["probing", "trie"], default="probing",
                       help="KenLM binary format: probing (fastest, default) or trie (smallest)")
    train.add_argument("--discount-fallback", action="store_true",
                       help="lmplz --discount_fallback, for tiny or duplicated text")
    train.add_argument("--wikitext", action="store_true", help="the text is WikiText's tokenised form: undo it")
    train.add_argument("--seed", type=int, default=0, help="seed of the SentencePiece sample")
    train.add_argument("--threads", type=int, default=2, help="SentencePiece threads")
    train.set_defaults(func=cmd_kenlm_train)
    cutoffs = kenlm_sub.add_parser("cutoffs", help="perplexity percentiles of a corpus -> {lang}.cutoffs.json")
    cutoffs.add_argument("--model", required=True, help="model folder (from `webmill kenlm train`)")
    cutoffs.add_argument("--lang", required=True, help="language code, e.g. en")
    cutoffs.add_argument("--corpus", nargs="+", required=True,
                         help="webmill Parquet output folders/files or JSONL files; documents of other languages "
                              "(by their `language`) are skipped")
    cutoffs.add_argument("--sample", type=int, default=5000, help="documents sampled (default 5000)")
    cutoffs.add_argument("--percentiles", type=float, nargs=2, default=[30, 60],
                         help="head/middle and middle/tail percentiles (default 30 60, as CCNet)")
    cutoffs.add_argument("--whole-document", action="store_true",
                         help="score each document as one sentence (the stage's per_paragraph: false)")
    cutoffs.add_argument("--seed", type=int, default=0, help="seed of the document sample")
    cutoffs.set_defaults(func=cmd_kenlm_cutoffs)

    from webmill.commands import add_all

    add_all(sub)
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
