"""User-facing errors: every mistake a user can make becomes a `CdslError`.

A `CdslError` knows where it happened (a `Span` inside a `Source`) and renders as

    examples/mlp.cdsl:4:13: error: unknown tensor 'x2'; defined so far: x, h1
        h1 = dense(x2, units=64)
                   ^^
    expected: the name of an input or an earlier layer

The CLI prints `str(err)` and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A 1-based source range: first character (line, col) to end (end_line, end_col), end exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int

    @classmethod
    def point(cls, line: int, col: int) -> "Span":
        return cls(line, col, line, col + 1)


@dataclass(frozen=True)
class Source:
    """The text of one spec and the name to show for it (a path, or '<string>')."""

    name: str
    text: str

    def line_text(self, line: int) -> str:
        # Split on "\n" only: the lexer counts lines that way (splitlines() would also break
        # on form feeds, U+2028 or a lone "\r" and show the wrong line under the caret).
        lines = self.text.split("\n")
        if 1 <= line <= len(lines):
            return lines[line - 1].rstrip("\r")
        return ""


# Lines longer than this are shown as a window around the caret.
_MAX_SHOWN = 120


class CdslError(Exception):
    """An error in the user's input. Rendered with location, source line and caret."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        source: Source | None = None,
        span: Span | None = None,
        expected: str | None = None,
        name: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.source = source
        self.span = span
        self.expected = expected
        # `name` names the file when there is no Source (a missing file, a directory, an npz).
        self.name = name if name is not None else (source.name if source else None)

    def located(self, source: Source) -> "CdslError":
        """The same error, attached to `source` if it had none."""
        if self.source is not None:
            return self
        return CdslError(self.message, source=source, span=self.span, expected=self.expected)

    def __str__(self) -> str:
        where = self.name or "cdsl"
        if self.span is not None:
            where = f"{where}:{self.span.line}:{self.span.col}"
        out = [f"{where}: error: {self.message}"]
        if self.source is not None and self.span is not None:
            text = self.source.line_text(self.span.line).expandtabs(1)
            col = max(self.span.col, 1)
            width = 1
            if self.span.end_line == self.span.line and self.span.end_col > col:
                width = self.span.end_col - col
            start = 0
            if len(text) > _MAX_SHOWN:
                start = max(0, col - 1 - _MAX_SHOWN // 2)
                text = text[start : start + _MAX_SHOWN]
            caret_col = col - 1 - start
            width = max(1, min(width, len(text) - caret_col)) if caret_col < len(text) else 1
            out.append("    " + text)
            out.append("    " + " " * caret_col + "^" * width)
        if self.expected:
            out.append(f"expected: {self.expected}")
        return "\n".join(out)
