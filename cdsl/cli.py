"""The `cdsl` command line.

Each subcommand lives in `cdsl/commands/<name>.py` and exposes
`register(subparsers)` (adds its parser, sets `func`) ; `func(args) -> int`.
A `CdslError` anywhere becomes its located message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cdsl import __version__
from cdsl.errors import CdslError

# Subcommands that exist and work. Add a name here only when its command really works.
COMMANDS = ["check", "fmt", "doctor", "train", "eval", "gen", "sim", "verify", "run", "bench", "report", "sweep"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdsl",
        description="Co-design language for compressed neural networks: spec -> training -> RTL -> co-verification.",
    )
    parser.add_argument("--version", action="version", version=f"cdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cdsl.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CdslError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("cdsl: interrupted", file=sys.stderr)
        return 130
