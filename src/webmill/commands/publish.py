"""`webmill publish OUTPUT_DIR --repo user/name`: upload a finished run to the Hugging Face Hub."""

from __future__ import annotations

from webmill.commands.card import LICENSE_HELP


def cmd_publish(args) -> int:
    from webmill.publish import describe, plan_upload, publish

    if args.dry_run:
        print(describe(plan_upload(args.output_dir, args.repo, args.private)))
        return 0
    url = publish(args.output_dir, args.repo, private=args.private, license_id=args.license)
    print(f"webmill: published to {url}")
    return 0


def add_parser(subparsers) -> None:
    publish = subparsers.add_parser("publish", help="upload a finished run (data + card) to the Hugging Face Hub")
    publish.add_argument("output_dir", help="output folder of a finished run")
    publish.add_argument("--repo", required=True, help="dataset repository id, user/name")
    publish.add_argument("--private", action="store_true", help="create the repository as private")
    publish.add_argument("--dry-run", action="store_true",
                         help="print every file that would be uploaded, its size and where; upload nothing")
    publish.add_argument("--license", default="other", help=LICENSE_HELP + " (used when the card is generated)")
    publish.set_defaults(func=cmd_publish)
