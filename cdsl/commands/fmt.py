"""`cdsl fmt SPEC [SPEC ...] [--check]`: rewrite specs in canonical form, keeping comments.

Files are replaced atomically (a temporary file in the same folder, then a rename), so an error
leaves every file as it was. `--check` writes nothing: it lists the files that would change and
exits 1 if there are any. An invalid spec is reported and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from cdsl.dsl import format_source, load_source
from cdsl.errors import CdslError


def register(sub) -> None:
    p = sub.add_parser(
        "fmt",
        help="rewrite specs in canonical form (comments kept)",
        description="Rewrite each SPEC in canonical form, keeping its comments.",
    )
    p.add_argument("specs", nargs="+", metavar="SPEC", help="a .cdsl file")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is not canonical")
    p.set_defaults(func=run)


def write_atomic(path: str, text: str) -> None:
    """Replace `path` with `text` (UTF-8) in one rename, keeping the file's permissions."""
    folder = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=".cdsl-fmt-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def run(args: argparse.Namespace) -> int:
    status = 0
    changed = []
    for path in args.specs:
        try:
            source = load_source(path)
            text = format_source(source.text, source.name)
        except CdslError as err:
            print(str(err), file=sys.stderr)
            status = 2
            continue
        if text == source.text:
            continue
        changed.append(path)
        if args.check:
            print(f"would reformat {path}")
            continue
        try:
            write_atomic(path, text)
        except OSError as err:
            print(f"{path}: error: cannot write: {err.strerror or err}", file=sys.stderr)
            status = 2
            continue
        print(f"reformatted {path}")
    if status:
        return status
    if args.check and changed:
        return 1
    n = len(args.specs)
    if not args.check or not changed:
        print(f"{len(changed)} of {n} file{'s' if n != 1 else ''} {'would be ' if args.check else ''}reformatted")
    return 0
