"""Malformed and pathological inputs: always a located CdslError, never another exception."""

from __future__ import annotations

import time


import pytest

from cdsl.dsl import load_source, parse, parse_file
from cdsl.errors import CdslError
from dsl_helpers import MLP


def test_missing_file(tmp_path):
    path = tmp_path / "nope.cdsl"
    with pytest.raises(CdslError) as info:
        parse_file(path)
    assert str(info.value) == f"{path}: error: no such file"


def test_directory(tmp_path):
    with pytest.raises(CdslError) as info:
        load_source(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: error: is a directory")


def test_non_utf8(tmp_path):
    path = tmp_path / "bad.cdsl"
    path.write_bytes(MLP.encode().replace(b"relu", b"r\xffelu"))
    with pytest.raises(CdslError) as info:
        load_source(path)
    err = info.value
    assert "not UTF-8 text: byte 0xff cannot be decoded" in err.message
    assert (err.span.line, err.span.col) == (4, 9)
    assert str(err).startswith(f"{path}:4:9: error:")


def test_nul_byte_in_file(tmp_path):
    path = tmp_path / "nul.cdsl"
    path.write_bytes(b"model m {\n  in\x00put")
    with pytest.raises(CdslError) as info:
        load_source(path)
    assert "binary file" in info.value.message and (info.value.span.line, info.value.span.col) == (2, 5)


def test_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.cdsl"
    path.write_bytes(b"\xef\xbb\xbf" + MLP.encode())
    assert parse_file(path) == parse(MLP)


def test_unreadable_file(tmp_path, monkeypatch):
    # Real file modes do not stop root (CI runs as root), so the read itself is made to fail.
    path = tmp_path / "secret.cdsl"
    path.write_text(MLP)

    import builtins

    real_open = builtins.open

    def denied(file, mode="r", *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(CdslError) as info:
        load_source(path)
    assert "permission denied" in str(info.value)


@pytest.mark.parametrize("device", ["/dev/zero", "fifo"])
def test_devices_and_fifos_are_refused_without_reading(tmp_path, device):
    """/dev/zero never ends and a FIFO blocks until someone writes: neither is read."""
    import os

    if device == "fifo":
        device = str(tmp_path / "spec.cdsl")
        os.mkfifo(device)
    with pytest.raises(CdslError, match="not a regular file"):
        load_source(device)


def test_path_with_nul():
    with pytest.raises(CdslError) as info:
        load_source("a\x00b.cdsl")
    assert "cannot read the file" in str(info.value)


def test_not_a_string():
    with pytest.raises(CdslError):
        parse(b"model")  # type: ignore[arg-type]


def test_long_line():
    text = MLP.replace("units=64", "units=64" + " " * 200_000 + "!")
    t0 = time.perf_counter()
    with pytest.raises(CdslError) as info:
        parse(text)
    assert time.perf_counter() - t0 < 5
    err = info.value
    assert (err.span.line, err.span.col) == (3, 200_025)
    shown = str(err).splitlines()
    assert len(shown[1]) < 200 and shown[2].strip() == "^" and shown[1][shown[2].index("^")] == "!"


def test_long_valid_line():
    layers = "".join(f" h{i} = relu(h{i - 1})" for i in range(1, 8000))
    text = "model m { input x: int8[4] h0 = relu(x)" + layers + " output h7999 }"
    assert len(text) > 150_000
    spec = parse(text)
    assert len(spec.model.layers) == 8000


@pytest.mark.parametrize("opener", ["[", "(", "{", "<", "@(", "[" * 3])
def test_thousands_of_nested_brackets(opener):
    text = MLP.replace("units=64", "units=" + opener * 5000)
    with pytest.raises(CdslError) as info:
        parse(text)
    assert info.value.span is not None and info.value.span.line == 3


def test_deep_nesting_at_top_level():
    with pytest.raises(CdslError) as info:
        parse("{" * 10000 + "}" * 10000)
    assert (info.value.span.line, info.value.span.col) == (1, 1)


def test_many_stages_and_layers_fast():
    t0 = time.perf_counter()
    chain = "".join(f"  h{i} = relu(h{i + 1})\n" for i in range(3000))  # every layer reads a later one
    text = f"model m {{\n  input x: int8[4]\n{chain}  h3000 = relu(x)\n  output h0\n}}\n"
    spec = parse(text)
    assert spec.model.layer("h0").shape == (4,)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(
    "text",
    ["\x00", "\udc80", "\ufeff", "}", "model", "model m", "model m {", "model m { input", "train", "@", "#", '"', "-", "1e", "\u2028model m {}"],
)
def test_tiny_inputs(text):
    with pytest.raises(CdslError) as info:
        parse(text)
    rendered = str(info.value)
    assert rendered.startswith("<string>:")
    rendered.encode("utf-8", "backslashreplace")


@pytest.mark.parametrize(
    "text, col",
    [
        ("model m { input x: int8[" + "9" * 5000 + "] }", 25),
        ("model m { input x: fixed<" + "9" * 5000 + ",1>[3] }", 26),
        ("model m { input x: int8[4] y = relu(x) @prune(nm=2:" + "9" * 5000 + ") output y }", 52),
        ("model m { input x: int8[4] y = dense(x, units=" + "9" * 5000 + ") output y }", 47),
        ("model m { input x: int8[4] y = dense(x, units=4) @cim(rows=4, cols=4, noise=" + "9" * 5000 + ".5) output y }", 77),
    ],
)
def test_huge_numbers(text, col):
    with pytest.raises(CdslError) as info:
        parse(text)
    err = info.value
    assert "number too" in err.message and (err.span.line, err.span.col) == (1, col)


def test_caret_line_with_unusual_line_breaks():
    text = "# a\u2028b\x0cc\nmodel m {\n  input x: int8[4]\n  y = relu(q)\n  output y\n}\n"
    with pytest.raises(CdslError) as info:
        parse(text)
    lines = str(info.value).splitlines()
    assert lines[0] == "<string>:4:12: error: unknown tensor 'q'"
    assert lines[1] == "      y = relu(q)" and lines[2] == "               ^"
