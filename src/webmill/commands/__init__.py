"""Sub-commands beyond `run`, `stages` and `kenlm`: one module per command family.

Each module listed in COMMAND_MODULES exposes `add_parser(subparsers)`, which adds its sub-command(s) and
sets `func` on them (a function taking the parsed arguments and returning an exit status).
"""

from __future__ import annotations

import importlib

COMMAND_MODULES: tuple[str, ...] = (
    "card", "publish", "mix", "ablate", "quality",
)


def add_all(subparsers) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"webmill.commands.{name}").add_parser(subparsers)
