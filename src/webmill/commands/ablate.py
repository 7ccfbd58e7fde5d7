"""`webmill ablate STUDY.yaml`: train the same small LM on each corpus (or architecture variant), several
seeds, and write reports/<study>/{results.json, report.md, *.png}."""

from __future__ import annotations

from webmill.errors import WebmillError


def cmd_ablate(args) -> int:
    from webmill.ablation import report, study

    if args.report_only:
        loaded = study.load_study(args.study)
        print(f"webmill: report in {report.write_report(f'{args.output}/{loaded.name}')}")
        return 0
    loaded = study.load_study(args.study, seeds=args.seeds, budget_tokens=args.budget_tokens)
    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise WebmillError(f"--threads {args.threads}: must be at least 1")
        torch.set_num_threads(args.threads)
    if args.dry_run:
        print(study.describe_plan(loaded, study.resolve_device(args.device)))
        return 0
    folder = study.run_study(loaded, output=args.output, device=args.device, progress=not args.quiet)
    print(f"webmill: report in {folder}/report.md (data: {folder}/results.json)")
    return 0


def add_parser(subparsers) -> None:
    ablate = subparsers.add_parser(
        "ablate", help="compare corpora (or model variants) by training the same small LM on each, several seeds")
    ablate.add_argument("study", help="study file, e.g. pipelines/ablation.yaml")
    ablate.add_argument("--output", default="reports", help="reports folder; the study writes <output>/<name>/ "
                                                            "(default reports)")
    ablate.add_argument("--seeds", type=int, help="use seeds 0..N-1 instead of the study's list")
    ablate.add_argument("--budget-tokens", type=int, help="training tokens per run (replaces train.budget_tokens)")
    ablate.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                        help="where to train and evaluate (default auto: CUDA when available)")
    ablate.add_argument("--threads", type=int,
                        help="CPU threads for torch (default: torch's choice, all cores); 1 is steadier for tiny "
                             "models on a busy machine")
    ablate.add_argument("--quiet", action="store_true", help="no per-step progress while training")
    ablate.add_argument("--dry-run", action="store_true",
                        help="check the study and corpora, print the runs and model sizes, train nothing")
    ablate.add_argument("--report-only", action="store_true",
                        help="re-render report.md and the plots from the existing results.json")
    ablate.set_defaults(func=cmd_ablate)
