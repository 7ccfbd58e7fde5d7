"""`webmill card OUTPUT_DIR`: write the Hugging Face dataset card of a finished run."""

from __future__ import annotations

LICENSE_HELP = ("licence identifier for the card's header, as the Hub spells it (e.g. odc-by, cc-by-4.0); "
                "default 'other': the licence of crawled text is the pages' own")


def cmd_card(args) -> int:
    from webmill.cards import make_card

    path = make_card(args.output_dir, out=args.out, license_id=args.license, sample=args.sample,
                     with_plots=not args.no_plots)
    print(f"webmill: card written to {path}")
    return 0


def add_parser(subparsers) -> None:
    card = subparsers.add_parser("card", help="write the dataset card (README.md + plots) of a finished run")
    card.add_argument("output_dir", help="output folder of a finished run (holds stats.json and data/)")
    card.add_argument("--out", help="write the card and its card_assets/ here instead of into OUTPUT_DIR")
    card.add_argument("--license", default="other", help=LICENSE_HELP)
    card.add_argument("--sample", type=int, default=100_000,
                      help="documents sampled for the histograms (default 100000; counts use every document)")
    card.add_argument("--no-plots", action="store_true", help="tables only, no PNG plots")
    card.set_defaults(func=cmd_card)
