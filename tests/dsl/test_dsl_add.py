"""`add(a, b)`, the first op with two inputs: valid joins, every error located, printing, the
`cdsl check` row; and models with several inputs and outputs."""

from __future__ import annotations

import pytest

from cdsl.cli import main
from cdsl.dsl import format_source, ir, parse, print_spec
from cdsl.dsl.analysis import layer_stats
from dsl_helpers import CNN, MLP, assert_error, error_of

RESIDUAL = """model res {
  input x: int8[64]
  h = dense(x, units=64) @quant(w=8, a=8)
  r = relu(h)
  s = add(r, x) @quant(a=8)
  y = dense(s, units=10)
  output y
}
"""


def stats_by_name(spec):
    return {s.name: s for s in layer_stats(spec)}


# ---------------------------------------------------------------- valid joins


def test_residual_over_dense():
    m = parse(RESIDUAL).model
    s = m.layer("s")
    assert s.op == ir.Add() and s.inputs == ("r", "x") and s.shape == (64,)
    assert s.annotations.quant == ir.Quant(a=8)
    assert [lay.name for lay in m.consumers("x")] == ["h", "s"]


def test_add_of_two_conv_outputs():
    text = CNN.replace(
        "  r1 = relu(c1)\n",
        "  c2 = conv2d(x, channels=8, kernel=3, padding=1)\n  j = add(c1, c2)\n  r1 = relu(j)\n",
    )
    m = parse(text).model
    assert m.layer("j").shape == (8, 8, 8) and m.layer("j").inputs == ("c1", "c2")


def test_add_of_two_inputs_any_rank():
    text = "model m {\n  input a: int8[4, 8]\n  input b: int4[4, 8]\n  s = add(a, b)\n  output s\n}\n"
    assert parse(text).model.layer("s").shape == (4, 8)


def test_add_reads_a_layer_defined_later():
    text = RESIDUAL.replace("  s = add(r, x) @quant(a=8)\n", "").replace("  output y", "  s = add(r, x) @quant(a=8)\n  output y")
    m = parse(text).model
    assert [lay.name for lay in m.topo_order()] == ["h", "r", "s", "y"]


def test_add_of_a_tensor_with_itself():
    text = MLP.replace("r1 = relu(h1)", "r1 = add(h1, h1)")
    assert parse(text).model.layer("r1").inputs == ("h1", "h1")


def test_two_inputs_and_two_outputs():
    text = (
        "model m {\n  input a: int8[16]\n  input b: int8[8]\n"
        "  ha = dense(a, units=4)\n  hb = dense(b, units=4)\n  s = add(ha, hb)\n  y = relu(s)\n"
        "  output y, hb\n}\n"
    )
    m = parse(text).model
    assert [i.name for i in m.inputs] == ["a", "b"] and m.outputs == ("y", "hb")
    assert m.layer("s").shape == (4,)
    assert parse(print_spec(parse(text))) == parse(text)


def test_two_independent_paths():
    text = (
        "model m {\n  input a: int8[16]\n  input b: int8[1, 4, 4]\n"
        "  ha = dense(a, units=4)\n  fb = flatten(b)\n  output ha, fb\n}\n"
    )
    m = parse(text).model
    assert m.outputs == ("ha", "fb") and m.layer("fb").shape == (16,)


# ---------------------------------------------------------------- errors


def test_shape_mismatch_names_both_shapes():
    err = assert_error(
        RESIDUAL.replace("units=64)", "units=32)"),
        "add needs inputs of the same shape, but 'r' has shape [32] and 'x' has shape [64]", 5, 14, caret="x",
    )
    assert err.expected == "a tensor of shape [32]"


def test_shape_mismatch_of_rank():
    text = "model m {\n  input a: int8[4, 8]\n  input b: int8[32]\n  s = add(a, b)\n  output s\n}\n"
    assert_error(text, "add needs inputs of the same shape, but 'a' has shape [4, 8] and 'b' has shape [32]", 4, 14, caret="b")


def test_one_input_is_too_few():
    err = assert_error(RESIDUAL.replace("add(r, x)", "add(r)"), "add takes two input tensors, got 1", 5, 7, caret="add")
    assert err.expected == "two tensor names, e.g. add(a, b)"
    assert_error(RESIDUAL.replace("add(r, x)", "add()"), "add takes two input tensors, got 0", 5, 7, caret="add")


def test_three_inputs_are_too_many():
    assert_error(RESIDUAL.replace("add(r, x)", "add(r, x, h)"), "add takes two input tensors, got 3", 5, 17, caret="h")


def test_inputs_must_be_names():
    assert_error(RESIDUAL.replace("add(r, x)", "add(r, 3)"), "each input of add must be a tensor name, got 3", 5, 14, caret="3")


def test_add_takes_no_parameters():
    assert_error(RESIDUAL.replace("add(r, x)", "add(r, x, scale=2)"), "add takes no parameters, got 'scale'", 5, 17, caret="scale")


def test_one_input_ops_keep_their_message():
    assert_error(MLP.replace("relu(h1)", "relu(h1, x)"), "relu takes one input tensor; parameters are written name=value", 4, 17, caret="x")


def test_unknown_second_input():
    assert_error(RESIDUAL.replace("add(r, x)", "add(r, q)"), "unknown tensor 'q'", 5, 14, caret="q")


def test_cycle_through_the_second_input():
    text = RESIDUAL.replace("h = dense(x,", "h = dense(s,")
    assert_error(text, "cycle in the model graph: r -> s -> h -> r", 3, 13, caret="s")
    text = RESIDUAL.replace("add(r, x)", "add(x, s)")
    assert_error(text, "cycle in the model graph: s -> s", 5, 14, caret="s")


def test_never_used_counts_every_input():
    # x is read only as the second input of add: it is used
    text = "model m {\n  input x: int8[4]\n  input z: int8[4]\n  s = add(z, x)\n  output s\n}\n"
    parse(text)
    text = RESIDUAL.replace("  output y", "  u = add(r, x)\n  output y")
    assert_error(text, "layer 'u' is never used", 7, 3, caret="u")


def test_quant_w_on_add():
    err = assert_error(
        RESIDUAL.replace("@quant(a=8)", "@quant(w=8, a=8)"), "@quant(w=...) does not apply to add: add has no weights", 5, 24,
        caret="w=8",
    )
    assert err.expected == "@quant on add takes only a=..., signed=..."


@pytest.mark.parametrize("per", ["channel", "tensor"])
def test_quant_per_on_add(per):
    assert_error(
        RESIDUAL.replace("@quant(a=8)", f"@quant(a=8, per={per})"), "@quant(per=...) does not apply to add", 5, 29,
        caret=f"per={per}",
    )


def test_quant_on_add_needs_a():
    err = assert_error(RESIDUAL.replace("@quant(a=8)", "@quant(signed=true)"), "@quant needs a=... (activation bits)", 5, 17)
    assert err.expected == "@quant(a=8)" and "w=" not in err.message


def test_quant_a_and_signed_on_add():
    q = parse(RESIDUAL.replace("@quant(a=8)", "@quant(a=6, signed=false)")).model.layer("s").annotations.quant
    assert (q.a, q.signed, q.w) == (6, False, None)


@pytest.mark.parametrize("ann", ["@prune(sparsity=0.5)", "@bitserial(lanes=4)", "@binary", "@tokens(keep=0.5)"])
def test_other_annotations_do_not_apply_to_add(ann):
    name = ann.split("(")[0]
    assert_error(RESIDUAL.replace("@quant(a=8)", ann), f"{name} does not apply to add", 5, 17, caret=ann)


def test_quant_lists_add_where_it_applies():
    err = error_of(MLP.replace("relu(h1)", "relu(h1) @quant(a=8)"))
    assert err.expected == "@quant on dense, conv2d, patch_embed, encoder, cls_head, add"


def test_add_of_binaries_is_not_binary():
    text = (
        "model m {\n  input x: int8[16]\n  s1 = sign(x)\n  s2 = sign(s1)\n  j = add(s1, s2)\n"
        "  y = dense(j, units=4) @binary\n  output y\n}\n"
    )
    assert_error(text, "@binary needs +1/-1 inputs, but 'j' is not the output of sign(...)", 6, 13, caret="j")


# ---------------------------------------------------------------- printing and analysis


def test_print_round_trip():
    spec = parse(RESIDUAL)
    text = print_spec(spec)
    assert "  s = add(r, x) @quant(a=8)\n" in text
    assert parse(text) == spec
    spec = parse(RESIDUAL.replace("@quant(a=8)", "@quant(a=8, signed=true)"))
    assert "s = add(r, x) @quant(a=8, signed=true)" in print_spec(spec) and parse(print_spec(spec)) == spec


def test_fmt_keeps_comments():
    messy = RESIDUAL.replace(
        "  s = add(r, x) @quant(a=8)\n", "  # the residual join\n  s=add( r,x )   # r + x\n     @quant( a=8 )\n"
    )
    out = format_source(messy)
    assert "  # the residual join\n  s = add(r, x) @quant(a=8)  # r + x\n" in out
    assert format_source(out) == out and parse(out) == parse(RESIDUAL)


def test_analysis_row():
    s = stats_by_name(parse(RESIDUAL))["s"]
    assert (s.op, s.shape, s.params, s.weights, s.macs, s.w_bits, s.a_bits) == ("add", (64,), 0, 0, 0, None, 8)
    assert (s.mapping, s.sparsity, s.nonzero, s.compressed_bits) == ("-", "-", 0, 0)


def test_activation_width_is_the_wider_input_without_quant():
    text = "model m {\n  input a: int8[4]\n  input b: int4[4]\n  s = add(a, b)\n  t = add(s, b) @quant(a=3)\n  output t\n}\n"
    s = stats_by_name(parse(text))
    assert s["s"].a_bits == 8 and s["t"].a_bits == 3
    # a float input makes the sum float
    s = stats_by_name(parse(RESIDUAL.replace("@quant(w=8, a=8)", "@quant(w=8)").replace(" @quant(a=8)", "")))
    assert s["r"].a_bits is None and s["s"].a_bits is None


def test_check_table_row(tmp_path, capsys):
    path = tmp_path / "res.cdsl"
    path.write_text(RESIDUAL)
    assert main(["check", str(path)]) in (0, 1)  # 1 when a layer is not quantized for export
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if " add " in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["s", "add", "[64]", "0", "0", "-/8", "-", "-"]
