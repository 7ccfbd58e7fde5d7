"""`webmill quality train`: train a fastText quality classifier (trusted text vs web text); see webmill.quality."""

from __future__ import annotations

from webmill.quality.train import QualityTrainConfig

DEFAULTS = QualityTrainConfig()


def cmd_quality_train(args) -> int:
    from webmill.quality.train import train_quality_model

    config = QualityTrainConfig(lang=args.lang, seed=args.seed, dim=args.dim, epochs=args.epochs, lr=args.lr,
                                max_docs=args.max_docs, min_words=args.min_words, heldout=args.heldout,
                                quantize=not args.no_quantize, language_filter=not args.no_language_filter)
    manifest = train_quality_model(args.positive, args.negative, args.out, config,
                                   progress=lambda m: print(f"webmill: {m}", flush=True))
    metrics = manifest["heldout"]["metrics"]
    print(f"webmill: {args.lang} quality model in {args.out}/{manifest['model_file']} "
          f"({manifest['model_bytes'] / 1e6:.1f} MB, {manifest['sizes']['train']} training documents); held-out "
          f"({metrics['positives']}+{metrics['negatives']}): precision {metrics['precision']:.3f} recall "
          f"{metrics['recall']:.3f} F1 {metrics['f1']:.3f} AUC {metrics['auc']:.3f}")
    return 0


def add_parser(subparsers) -> None:
    quality = subparsers.add_parser("quality", help="model-based quality filtering (fastText classifier)")
    commands = quality.add_subparsers(dest="quality_command", required=True)
    train = commands.add_parser("train", help="train a classifier: trusted reference text vs random web text")
    train.add_argument("--positive", nargs="+", required=True, metavar="FILE",
                       help="reference text: .txt/.txt.gz (blank-line separated), .jsonl(.gz) or Parquet with text")
    train.add_argument("--negative", nargs="+", required=True, metavar="FILE",
                       help="random web text, e.g. a webmill output folder (Parquet with text)")
    train.add_argument("--out", required=True, help="folder for model.ftz (or model.bin) and manifest.json")
    train.add_argument("--lang", default=DEFAULTS.lang, help="language of both sides (default %(default)s)")
    train.add_argument("--seed", type=int, default=DEFAULTS.seed,
                       help="sampling and fastText seed (default %(default)s)")
    train.add_argument("--dim", type=int, default=DEFAULTS.dim, help="vector size (default %(default)s)")
    train.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help="passes (default %(default)s)")
    train.add_argument("--lr", type=float, default=DEFAULTS.lr, help="learning rate (default %(default)s)")
    train.add_argument("--max-docs", type=int, default=DEFAULTS.max_docs,
                       help="documents sampled per side, reservoir sampling (default %(default)s)")
    train.add_argument("--min-words", type=int, default=DEFAULTS.min_words,
                       help="shorter documents are skipped (default %(default)s)")
    train.add_argument("--heldout", type=float, default=DEFAULTS.heldout,
                       help="share of each side held out for the metrics (default %(default)s)")
    train.add_argument("--no-quantize", action="store_true", help="write the full model.bin instead of model.ftz")
    train.add_argument("--no-language-filter", action="store_true",
                       help="keep documents that the shipped language-ID model puts in another language")
    train.set_defaults(func=cmd_quality_train)
