"""Shared helpers for the dsl tests."""

from __future__ import annotations

import pytest

from cdsl.dsl import parse
from cdsl.errors import CdslError

MLP = """model m {
  input x: ufixed<8,4>[64]
  h1 = dense(x, units=64) @quant(w=8, a=8)
  r1 = relu(h1)
  y = dense(r1, units=10)
  output y
}
"""

CNN = """model c {
  input x: int8[1, 8, 8]
  c1 = conv2d(x, channels=8, kernel=3, padding=1) @quant(w=4, a=8)
  r1 = relu(c1)
  p1 = maxpool(r1, kernel=2)
  f = flatten(p1)
  y = dense(f, units=10)
  output y
}
"""

VIT = """model v {
  input x: int8[1, 8, 8]
  t = patch_embed(x, patch=2, dim=32)
  e = encoder(t, heads=2, mlp=64)
  y = cls_head(e, classes=10)
  output y
}
"""


def error_of(text: str, name: str = "f.cdsl") -> CdslError:
    with pytest.raises(CdslError) as info:
        parse(text, name)
    return info.value


def assert_error(text: str, message: str, line: int, col: int, *, caret: str | None = None, expected: str | None = None):
    """The error names `message`, sits at line:col, and its caret line starts under col."""
    err = error_of(text)
    rendered = str(err)
    assert message in err.message, rendered
    assert err.span is not None, rendered
    assert (err.span.line, err.span.col) == (line, col), rendered
    first = rendered.splitlines()[0]
    assert first.startswith(f"f.cdsl:{line}:{col}: error: "), rendered
    lines = rendered.splitlines()
    assert len(lines) >= 3, rendered
    caret_line = lines[2]
    src_line = lines[1]
    assert caret_line.strip().startswith("^"), rendered
    if caret is not None:
        # the caret underlines exactly `caret` in the shown source line
        pos = caret_line.index("^")
        width = len(caret_line) - pos
        assert src_line[pos : pos + width] == caret, rendered
    if expected is not None:
        assert err.expected is not None and expected in err.expected, rendered
    assert "Traceback" not in rendered
    return err


from pathlib import Path  # noqa: E402

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.cdsl"))
