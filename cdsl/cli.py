"""The `cdsl` command line.

Each subcommand lives in `cdsl/commands/<name>.py` and exposes
`register(subparsers)` (adds its parser, sets `func`) ; `func(args) -> int`.
A `CdslError` anywhere becomes its located message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

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


def _interrupt(signum, frame) -> None:
    """SIGINT: raise KeyboardInterrupt, unless the signal arrived inside a `__del__` (e.g. Amaranth's
    `MustUse.__del__` while objects of an elaboration are collected), where Python prints and drops
    the exception and the command would run on; then send the signal again a moment later."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT)).start()
            return
        frame = frame.f_back
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    own = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if own:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        return int(args.func(args) or 0)
    except CdslError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("cdsl: interrupted", file=sys.stderr)
        return 130
    finally:
        if own:
            signal.signal(signal.SIGINT, signal.default_int_handler)
