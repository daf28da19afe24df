"""The printer: canonical layout, and `format_source` keeping every comment in its place."""

from __future__ import annotations

import pytest

from cdsl.dsl import format_source, parse, print_spec
from cdsl.errors import CdslError
from dsl_helpers import CNN, MLP, VIT

MESSY = """# header 1

# header 2
model   m{   # model line
  # about x
  input x :ufixed< 8 , 4 >[ 64 ]   # x trailing


  # group comment

  h1=dense( x,units=64 ,  bias=true)@bitserial(lanes=8)   @quant(a=8,w=8)  # h1 trailing
  r1 = relu(h1)
  y = dense(r1, # mid comment
     units=10)
    # between anns
    @quant(w=8)
  output y # out
  # end of model

  # end 2
}   # close
# between sections
train{
epochs=30 stage a(epochs=10,compress=[bitserial, quant]) stage b(epochs=20, lr=1)
}
# trailer

# trailer 2
"""

MESSY_FORMATTED = """# header 1

# header 2
model m {  # model line
  # about x
  input x: ufixed<8,4>[64]  # x trailing

  # group comment

  h1 = dense(x, units=64) @quant(w=8, a=8) @bitserial(lanes=8)  # h1 trailing
  r1 = relu(h1)
  y = dense(r1, units=10)  # mid comment
    # between anns
    @quant(w=8)
  output y  # out
  # end of model

  # end 2
}  # close

# between sections
train {
  epochs = 30
  stage a(epochs=10, compress=[quant, bitserial])
  stage b(epochs=20, lr=1.0)
}
# trailer

# trailer 2
"""


def comments(text: str) -> list[str]:
    return [line[line.index("#"):].rstrip() for line in text.splitlines() if "#" in line]


def test_format_messy_file():
    out = format_source(MESSY)
    assert out == MESSY_FORMATTED
    assert format_source(out) == out
    assert parse(out) == parse(MESSY)
    assert comments(out) == comments(MESSY)


def test_print_spec_layout():
    text = print_spec(parse(CNN))
    assert text == (
        "model c {\n"
        "  input x: int8[1, 8, 8]\n"
        "\n"
        "  c1 = conv2d(x, channels=8, kernel=3, padding=1) @quant(w=4, a=8)\n"
        "  r1 = relu(c1)\n"
        "  p1 = maxpool(r1, kernel=2)\n"
        "  f = flatten(p1)\n"
        "  y = dense(f, units=10)\n"
        "\n"
        "  output y\n"
        "}\n"
    )


def test_print_spec_train_and_defaults():
    src = MLP.replace("units=64)", "units=64, bias=false)") + (
        'train {\n  data = "a \\"b\\" \\\\c.npz"\n  weight_decay = 0.01\n  stage s(epochs=3, lr=1e-5, compress=[quant])\n}\n'
    )
    spec = parse(src)
    text = print_spec(spec)
    assert "h1 = dense(x, units=64, bias=false) @quant(w=8, a=8)" in text
    assert '  data = "a \\"b\\" \\\\c.npz"\n' in text
    assert "  epochs = 3\n" in text and "  weight_decay = 0.01\n" in text
    assert "  stage s(epochs=3, lr=1e-05, compress=[quant])\n" in text
    assert spec.train.data == 'a "b" \\c.npz'
    assert parse(text) == spec


def test_no_train_section_when_default():
    assert "train" not in print_spec(parse(MLP))
    assert "train" not in print_spec(parse(MLP + "train {\n}\n"))


def test_types_canonical():
    for written, printed in [("fixed<8,0>", "int8"), ("ufixed<4,0>", "uint4"), ("fixed<8,3>", "fixed<8,3>"), ("uint8", "uint8")]:
        text = print_spec(parse(MLP.replace("ufixed<8,4>", written)))
        assert f"input x: {printed}[64]" in text


def test_long_layer_breaks_annotations():
    src = MLP.replace("@quant(w=8, a=8)", "@quant(w=8, a=8, per=channel, signed=true) @prune(block=[4, 4], sparsity=0.25, start=1, end=9) @bitsparse(target=4)")
    out = format_source(src)
    assert "  h1 = dense(x, units=64)\n    @quant(w=8, a=8, per=channel, signed=true)\n    @prune(block=[4, 4], sparsity=0.25, start=1, end=9)\n    @bitsparse(target=4)\n" in out
    assert format_source(out) == out


def test_short_layer_joins_annotations():
    src = MLP.replace("@quant(w=8, a=8)", "\n    @quant(w=8, a=8)")
    out = format_source(src)
    assert "  h1 = dense(x, units=64) @quant(w=8, a=8)\n" in out


def test_annotation_order_is_canonical():
    src = VIT.replace("mlp=64)", "mlp=64) @tokens(keep=0.5) @prune(sparsity=0.5) @quant(w=8)")
    out = format_source(src)
    assert "e = encoder(t, heads=2, mlp=64) @quant(w=8) @prune(sparsity=0.5) @tokens(keep=0.5)" in out


def test_trailing_comments_of_annotations_force_multiline():
    src = MLP.replace("@quant(w=8, a=8)", "# on the call\n    @quant(w=8, a=8)  # on quant")
    out = format_source(src)
    assert "  h1 = dense(x, units=64)  # on the call\n    @quant(w=8, a=8)  # on quant\n" in out
    assert format_source(out) == out


def test_blank_lines_collapse():
    src = MLP.replace("  r1 = relu(h1)\n", "\n\n\n  r1 = relu(h1)\n\n\n")
    out = format_source(src)
    assert "@quant(w=8, a=8)\n\n  r1 = relu(h1)\n\n  y = dense" in out
    assert "{\n\n" not in format_source(MLP.replace("{\n", "{\n\n\n"))


def test_crlf_and_tabs():
    src = MLP.replace("\n", "\r\n").replace("  ", "\t")
    out = format_source(src)
    assert out == format_source(MLP)


def test_format_refuses_invalid_spec():
    with pytest.raises(CdslError):
        format_source(MLP.replace("relu(h1)", "relu(h9)"))
    with pytest.raises(CdslError):
        format_source("")


def test_comment_only_before_closing_and_between_stages():
    src = MLP + "train {\n  # first\n  stage a(epochs=1)  # a\n  # second\n  stage b(epochs=2)\n  # last\n}\n"
    out = format_source(src)
    assert out.endswith("train {\n  # first\n  stage a(epochs=1)  # a\n  # second\n  stage b(epochs=2)\n  # last\n}\n")
