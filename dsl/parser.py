"""The public entry points of the language front end.

    parse(text, name)  -> ir.Spec      parse, lower and check; raises CdslError
    parse_file(path)   -> ir.Spec
    load_source(path)  -> Source        read a spec file; any I/O or decoding problem is a CdslError

No exception other than `CdslError` leaves these functions, whatever the input.
"""

from __future__ import annotations

import os
import stat
import re
from pathlib import Path

from cdsl.errors import CdslError, Source, Span

from . import ir
from .checker import lower
from .syntax import LineIndex, parse_tree

# Files larger than this are refused before reading (a spec is a few kilobytes).
MAX_FILE_BYTES = 16 << 20


# Characters that str.splitlines() (used to show the source line of an error) treats as line
# breaks but the lexer does not: shown as spaces so that the caret lands on the right line.
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]|\r(?!\n)")


def _for_display(err: CdslError) -> CdslError:
    if err.source is None or not _OTHER_BREAKS.search(err.source.text):
        return err
    shown = Source(err.source.name, _OTHER_BREAKS.sub(" ", err.source.text))
    return CdslError(err.message, source=shown, span=err.span, expected=err.expected)


def parse_source(source: Source) -> ir.Spec:
    """Parse and check a `Source`."""
    try:
        tree = parse_tree(source)
        return lower(tree, source)
    except CdslError as err:
        raise _for_display(err) from None
    except RecursionError:  # pragma: no cover - the grammar and the passes do not recurse
        raise CdslError("the input is nested too deeply", source=source, span=Span.point(1, 1)) from None


def parse(text: str, name: str = "<string>") -> ir.Spec:
    """Parse, lower and check the text of a spec. Raises `CdslError` on any problem."""
    if not isinstance(text, str):
        raise CdslError(f"a spec must be text (str), got {type(text).__name__}", name=name)
    return parse_source(Source(name, text))


def load_source(path: str | os.PathLike) -> Source:
    """Read a spec file as UTF-8 (a leading byte-order mark is dropped)."""
    name = os.fspath(path)
    p = Path(name)
    try:
        if p.is_dir():
            raise CdslError("is a directory, not a spec file", name=name, expected="a .cdsl file")
        if not stat.S_ISREG(p.stat().st_mode):  # a device such as /dev/zero never ends, a FIFO may block
            raise CdslError("not a regular file (a device, FIFO or socket)", name=name, expected="a .cdsl file")
        with open(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise CdslError(f"file is too large for a spec (more than {MAX_FILE_BYTES} bytes)", name=name)
    except CdslError:
        raise
    except FileNotFoundError:
        raise CdslError("no such file", name=name) from None
    except PermissionError:
        raise CdslError("permission denied", name=name) from None
    except (OSError, ValueError) as err:  # e.g. a path with a NUL byte, an unreadable device
        msg = getattr(err, "strerror", None) or str(err)
        raise CdslError(f"cannot read the file: {msg}", name=name) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        good = data[bom : err.start].decode("utf-8")
        line, col = LineIndex(good).linecol(len(good))
        source = Source(name, good + "\ufffd")
        raise CdslError(
            f"not UTF-8 text: byte 0x{data[err.start]:02x} cannot be decoded",
            source=source,
            span=Span.point(line, col),
            expected="a UTF-8 text file",
        ) from None
    if "\x00" in text:
        pos = text.index("\x00")
        line, col = LineIndex(text).linecol(pos)
        raise CdslError("binary file: it contains a NUL byte", source=Source(name, text), span=Span.point(line, col), expected="a text file")
    return Source(name, text)


def parse_file(path: str | os.PathLike) -> ir.Spec:
    """Read and parse a spec file."""
    return parse_source(load_source(path))
