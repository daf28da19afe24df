"""Every check rule and every syntax-error kind: message, line:col and caret."""

from __future__ import annotations

import pytest

from cdsl.dsl import parse
from dsl_helpers import CNN, MLP, VIT, assert_error, error_of

TRAIN = "train {\n  epochs = 30\n}\n"


# ---------------------------------------------------------------- syntax errors


def test_missing_equals_in_train():
    assert_error(MLP + "train {\n  epochs 30\n}\n", "missing '=' after 'epochs'", 9, 10, caret="30", expected="'='")


def test_missing_equals_in_layer():
    assert_error(MLP.replace("r1 = relu", "r1 relu"), "missing '=' after 'r1'", 4, 6, caret="relu")


def test_missing_equals_in_parameter():
    assert_error(MLP.replace("units=64", "units 64"), "missing '=' after 'units'", 3, 23, caret="64")


def test_missing_colon_in_input():
    assert_error(MLP.replace("x: ufixed", "x ufixed"), "missing ':' between the input name 'x'", 2, 11, caret="ufixed")


def test_colon_instead_of_equals_in_parameters():
    assert_error(MLP.replace("w=8, a=8", "w: 8"), "parameters are written name=value", 3, 35, caret=":")


def test_unknown_annotation():
    err = assert_error(MLP.replace("@quant", "@quantize"), "unknown annotation '@quantize'; did you mean 'quant'?", 3, 28, caret="quantize")
    assert "@bitserial" in err.expected


def test_unclosed_brace_at_end_of_file():
    assert_error(MLP.replace("}\n", ""), "unclosed '{': the file ends before its '}'", 1, 9, caret="{", expected="'}'")


def test_unclosed_brace_before_next_section():
    assert_error(MLP.replace("}\n", "") + TRAIN, "'train' inside a block: the '{' at line 1:9 is not closed", 7, 1, caret="train")


def test_unclosed_paren_before_annotation():
    assert_error(MLP.replace("units=64)", "units=64"), "unclosed '(' (opened at 3:13)", 3, 26, caret="@")


def test_unclosed_paren_at_end_of_line():
    assert_error(MLP.replace("relu(h1)", "relu(h1"), "unclosed '(' (opened at 4:12): expected ')' at the end of line 4", 4, 15)


def test_missing_comma_between_arguments():
    assert_error(MLP.replace("x, units", "x units"), "missing ',' before 'units'", 3, 16, caret="units", expected="','")


def test_missing_comma_between_annotation_parameters():
    assert_error(MLP.replace("w=8, a=8", "w=8 a=8"), "missing ',' before 'a'", 3, 38, caret="a")


def test_missing_comma_in_shape():
    assert_error(CNN.replace("[1, 8, 8]", "[1 8, 8]"), "missing ',' before number '8'", 2, 19, caret="8")


def test_missing_comma_between_outputs():
    text = MLP.replace("output y", "output y r1")
    assert_error(text, "missing ',' between output names", 6, 12, caret="r1")


def test_annotation_parameters_without_parentheses():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant w=8"), "parameters of @quant go in parentheses", 3, 34, caret="w")


def test_annotation_parameters_in_brackets():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant[w=8]"), "parameters of @quant go in parentheses", 3, 33, caret="[")


def test_annotation_parameters_positional():
    err = assert_error(MLP.replace("w=8, a=8", "8, 8"), "@quant: parameters are written name=value, got a bare 8", 3, 34, caret="8")
    assert "w=..." in err.expected


def test_at_without_name():
    assert_error(MLP.replace("@quant", "@"), "'@' must be followed by an annotation name", 3, 28, caret="(")


def test_misspelled_op():
    err = assert_error(MLP.replace("relu(h1)", "rlu(h1)"), "unknown op 'rlu'; did you mean 'relu'?", 4, 8, caret="rlu")
    assert "conv2d" in err.expected


def test_misspelled_section():
    assert_error(MLP.replace("model m", "modle m"), "unknown section 'modle'; did you mean 'model'?", 1, 1, caret="modle")


def test_misspelled_statement_keyword():
    assert_error(MLP.replace("output y", "ouput y"), "unknown statement 'ouput'; did you mean 'output'?", 6, 3, caret="ouput")


def test_misspelled_stage_keyword():
    text = MLP + "train {\n  stag a(epochs=3)\n}\n"
    assert_error(text, "unknown statement 'stag'; did you mean 'stage'?", 9, 3, caret="stag")


def test_missing_value():
    assert_error(MLP.replace("units=64", "units="), "missing value for 'units' after '='", 3, 23, caret=")")


def test_nested_list():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=8) @trunc(bits=[[8]])"), "lists cannot be nested", 3, 52, caret="[")


def test_unterminated_string():
    assert_error(MLP + 'train {\n  data = "abc\n}\n', "unterminated string", 9, 10, caret='"')


def test_unexpected_character():
    err = assert_error(MLP.replace("relu", "re$lu"), "unexpected character '$'", 4, 10, caret="$")
    assert err.expected == "'('"


def test_nul_byte_is_escaped_in_message():
    err = error_of(MLP.replace("relu", "re\x00lu"))
    assert "unexpected character '\\x00'" in err.message
    assert (err.span.line, err.span.col) == (4, 10)


def test_lone_surrogate():
    err = error_of(MLP.replace("relu", "re\udc80lu"))
    assert "'\\udc80'" in err.message
    str(err).encode("utf-8", "backslashreplace")  # renders


def test_trailing_comma():
    assert_error(MLP.replace("w=8, a=8)", "w=8, a=8,)"), "no trailing commas", 3, 42, caret=",")
    assert_error(MLP.replace("[64]", "[64,]"), "no trailing commas", 2, 26, caret=",")
    assert_error(MLP.replace("output y", "output y,"), "no trailing commas", 6, 11)


def test_output_without_names():
    assert_error(MLP.replace("output y", "output"), "'output' needs the name of at least one layer", 6, 3, caret="output")


def test_stage_parameters_without_parentheses():
    assert_error(MLP + "train {\n  stage warmup epochs=5\n}\n", "the parameters of stage 'warmup' go in parentheses", 9, 16)


def test_input_without_shape():
    assert_error(MLP.replace("ufixed<8,4>[64]", "ufixed<8,4>"), "missing the shape of input 'x', e.g. ufixed<8,4>[64]", 3, 3)
    assert_error(MLP.replace("ufixed<8,4>[64]", "int8(64)"), "missing the shape of input 'x', e.g. int8[64]", 2, 16, caret="(")


def test_common_slips():
    assert_error(MLP + "train {\n  lr = 0,001\n}\n", "numbers use '.' as the decimal point", 9, 9, caret=",")
    assert_error(MLP + "train {\n  epochs = 3;\n}\n", "without ';'", 9, 13, caret=";")
    assert_error(MLP.replace("units=64", "units='64'"), "strings are written in double quotes", 3, 23)


def test_expected_tokens_in_words():
    err = error_of(MLP.replace("relu(h1)", "relu(h1) 5"))
    assert err.message == "unexpected number '5'"
    assert err.expected == "'}', '@', a name, 'input' or 'output'"
    err = error_of("model m { input x: int8[4] h = relu(x) output h } }")
    assert "unexpected '}'" in err.message
    assert "'model'" in err.expected and "'train'" in err.expected and "end of the file" in err.expected


def test_value_expected_in_words():
    err = error_of(MLP.replace("units=64", "units=)"))
    assert "value" in err.expected


# ---------------------------------------------------------------- names and graph


def test_empty_file_has_no_model():
    assert_error("", "no model in this file", 1, 1)
    assert_error("# only a comment\n\n", "no model in this file", 1, 1)


def test_train_without_model():
    assert_error(TRAIN, "no model in this file (only a train section)", 1, 1, caret="train")


def test_two_models():
    assert_error(MLP + MLP, "a file holds one model", 8, 1, caret="model")


def test_two_train_sections():
    assert_error(MLP + TRAIN + TRAIN, "a file holds one train section", 11, 1, caret="train")


def test_duplicate_name():
    assert_error(MLP.replace("r1 = relu", "h1 = relu"), "duplicate name 'h1' (first defined at line 3:3)", 4, 3, caret="h1")


def test_layer_named_like_input():
    assert_error(MLP.replace("r1 = relu", "x = relu"), "duplicate name 'x' (first defined at line 2:9)", 4, 3)


def test_unknown_tensor():
    err = assert_error(MLP.replace("relu(h1)", "relu(h2)"), "unknown tensor 'h2'", 4, 13, caret="h2")
    assert "x, h1, r1, y" in err.expected


def test_unknown_tensor_suggestion():
    assert_error(MLP.replace("relu(h1)", "relu(hh1)"), "unknown tensor 'hh1'; did you mean 'h1'?", 4, 13)


def test_forward_reference_is_allowed():
    text = MLP.replace("  r1 = relu(h1)\n", "").replace("  output y", "  r1 = relu(h1)\n  output y")
    spec = parse(text)
    assert [lay.name for lay in spec.model.layers] == ["h1", "y", "r1"]
    assert spec.model.layer("y").shape == (10,)


def test_cycle():
    assert_error(MLP.replace("dense(x,", "dense(r1,"), "cycle in the model graph: r1 -> h1 -> r1", 3, 14, caret="r1")


def test_self_cycle():
    assert_error(MLP.replace("relu(h1)", "relu(r1)"), "cycle in the model graph: r1 -> r1", 4, 13)


def test_unknown_output():
    err = assert_error(MLP.replace("output y", "output z"), "unknown output 'z'", 6, 10, caret="z")
    assert err.expected == "the name of a layer: h1, r1, y"


def test_output_is_an_input():
    assert_error(MLP.replace("output y", "output y, x"), "output 'x' is a model input", 6, 13)


def test_output_listed_twice():
    assert_error(MLP.replace("output y", "output y, y"), "output 'y' is listed twice", 6, 13)


def test_two_output_statements():
    assert_error(MLP.replace("output y", "output y\n  output r1"), "a second output statement", 7, 3)


def test_unused_layer():
    assert_error(MLP.replace("output y", "output r1"), "layer 'y' is never used", 5, 3, caret="y")


def test_unused_input():
    text = MLP.replace("input x: ufixed<8,4>[64]", "input x: ufixed<8,4>[64]\n  input z: int8[4]")
    assert_error(text, "input 'z' is never used", 3, 3)


def test_no_output():
    assert_error(MLP.replace("  output y\n", ""), "model 'm' has no output", 6, 1, caret="}")


def test_no_input():
    assert_error("model m {\n  y = relu(x)\n  output y\n}\n", "model 'm' has no input", 1, 7)


def test_no_layers():
    assert_error("model m {\n  input x: int8[4]\n  output x\n}\n", "model 'm' has no layers", 1, 7)


# ---------------------------------------------------------------- types and shapes


def test_unknown_type():
    assert_error(MLP.replace("ufixed<8,4>", "float32"), "unknown type 'float32'", 2, 12, caret="float32")


def test_fixed_needs_params():
    assert_error(MLP.replace("ufixed<8,4>", "fixed"), "'fixed' needs <bits,frac>", 2, 12)


def test_int_takes_no_params():
    assert_error(MLP.replace("ufixed<8,4>", "int8<8,0>"), "'int8' takes no <bits,frac>", 2, 12)


def test_input_bits_out_of_range():
    assert_error(MLP.replace("ufixed<8,4>", "ufixed<17,4>"), "input bit width must be from 1 to 16, got 17", 2, 19, caret="17")
    assert_error(MLP.replace("ufixed<8,4>", "int0"), "input bit width must be from 1 to 16, got 0", 2, 12)


def test_fraction_out_of_range():
    assert_error(MLP.replace("ufixed<8,4>", "ufixed<8,9>"), "fractional bits must be from 0 to the total bits (8), got 9", 2, 21)


def test_input_shape_rank():
    assert_error(MLP.replace("[64]", "[1, 2, 3, 4]"), "an input shape has 1 to 3 dimensions", 2, 23)
    assert_error(MLP.replace("[64]", "[]"), "an input shape has 1 to 3 dimensions", 2, 23)


def test_input_dimension_zero():
    assert_error(MLP.replace("[64]", "[0]"), "a dimension must be from 1", 2, 24, caret="0")


def test_dense_needs_flat_input():
    assert_error(MLP.replace("[64]", "[1, 8, 8]"), "dense needs a 1-D [K] input, but 'x' has shape [1, 8, 8]; flatten first", 3, 8, caret="dense")


def test_conv_needs_image():
    assert_error(CNN.replace("[1, 8, 8]", "[64]"), "conv2d needs a [C, H, W] input, but 'x' has shape [64]", 3, 8)


def test_conv_kernel_too_large():
    assert_error(CNN.replace("kernel=3, padding=1", "kernel=11, padding=1"), "conv2d kernel 11 does not fit the input: 'x' has shape [1, 8, 8], padded by 1", 3, 30, caret="kernel=11")


def test_pool_kernel_too_large():
    assert_error(CNN.replace("maxpool(r1, kernel=2)", "maxpool(r1, kernel=9)"), "maxpool kernel 9 is larger than the input: 'r1' has shape [8, 8, 8]", 5, 8)


def test_patch_does_not_divide():
    assert_error(VIT.replace("patch=2", "patch=3"), "patch_embed: patch 3 does not divide the image: 'x' has shape [1, 8, 8]", 3, 7)


def test_encoder_heads_do_not_divide():
    assert_error(VIT.replace("heads=2", "heads=3"), "encoder: the width 32 of [17, 32] (from 't') is not divisible by heads=3", 4, 7)


def test_encoder_needs_tokens():
    assert_error(VIT.replace("encoder(t,", "encoder(x,").replace("t = patch_embed(x, patch=2, dim=32)", "t = patch_embed(x, patch=2, dim=32)\n  z = relu(t)").replace("cls_head(e,", "cls_head(e,").replace("output y", "output y, z"),
                 "encoder needs a [N, D] (tokens) input, but 'x' has shape [1, 8, 8]; use patch_embed first", 5, 7)


def test_cls_head_needs_tokens():
    assert_error(VIT.replace("cls_head(e,", "cls_head(x,").replace("output y", "output y, e"), "cls_head needs a [N, D] (tokens) input", 5, 7)


def test_shapes_inferred():
    spec = parse(CNN)
    assert [lay.shape for lay in spec.model.layers] == [(8, 8, 8), (8, 8, 8), (8, 4, 4), (128,), (10,)]
    spec = parse(VIT)
    assert [lay.shape for lay in spec.model.layers] == [(17, 32), (17, 32), (10,)]
    spec = parse(CNN.replace("kernel=3, padding=1", "kernel=3, stride=2"))
    assert spec.model.layer("c1").shape == (8, 3, 3)


def test_pool_stride_filled():
    spec = parse(CNN)
    assert spec.model.layer("p1").op.stride == 2
    spec = parse(CNN.replace("maxpool(r1, kernel=2)", "maxpool(r1, kernel=3, stride=1)"))
    assert spec.model.layer("p1").op.stride == 1 and spec.model.layer("p1").shape == (8, 6, 6)


# ---------------------------------------------------------------- parameters


def test_unknown_parameter():
    err = assert_error(MLP.replace("units=64", "unit=64"), "unknown parameter 'unit' for dense; expected one of: units, bias", 3, 17, caret="unit")
    assert err.expected == "units=... (the closest parameter name)"


def test_duplicate_parameter():
    assert_error(MLP.replace("units=64", "units=64, units=3"), "duplicate parameter 'units' for dense (first given at 3:17)", 3, 27, caret="units")


def test_missing_parameter():
    assert_error(MLP.replace("x, units=64", "x"), "dense needs the parameter 'units'", 3, 8, caret="dense", expected="units=N")


def test_parameter_type():
    assert_error(MLP.replace("units=64", "units=6.4"), "dense: 'units' must be a whole number", 3, 23, caret="6.4")
    assert_error(MLP.replace("units=64", "units=64, bias=1"), "dense: 'bias' must be true or false, got 1", 3, 32)


def test_parameter_range():
    assert_error(MLP.replace("units=64", "units=0"), "dense: 'units' must be from 1 to 1048576, got 0", 3, 23)
    assert_error(MLP.replace("units=64", "units=-3"), "got -3", 3, 23, caret="-3")


def test_enum_parameter():
    assert_error(MLP.replace("a=8)", "a=8, per=chanel)"), "@quant: 'per' must be tensor or channel, got 'chanel'; did you mean 'channel'?", 3, 48, caret="chanel")


def test_op_takes_one_input():
    assert_error(MLP.replace("units=64", "64"), "dense takes one input tensor; parameters are written name=value", 3, 17, caret="64")


def test_op_input_must_be_a_name():
    assert_error(MLP.replace("relu(h1)", "relu(3)"), "the input of relu must be a tensor name, got 3", 4, 13)


def test_op_needs_input():
    assert_error(MLP.replace("relu(h1)", "relu()"), "relu needs an input tensor", 4, 8)


def test_op_without_parameters():
    assert_error(MLP.replace("relu(h1)", "relu(h1, slope=2)"), "relu takes no parameters, got 'slope'", 4, 17)


def test_positional_after_named():
    assert_error(MLP.replace("dense(x, units=64)", "dense(units=64, x)"), "a positional argument after named parameters", 3, 24)


# ---------------------------------------------------------------- annotations


def test_quant_bits_out_of_range():
    assert_error(MLP.replace("w=8", "w=17"), "@quant: 'w' must be from 2 to 16, got 17", 3, 36, caret="17")
    assert_error(MLP.replace("w=8", "w=1"), "@quant: 'w' must be from 2 to 16, got 1", 3, 36)
    assert_error(MLP.replace("a=8", "a=0"), "@quant: 'a' must be from 2 to 16, got 0", 3, 41)


def test_quant_needs_w_or_a():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(per=channel)"), "@quant needs w=...", 3, 27)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant"), "@quant needs w=...", 3, 27)


def test_annotation_needs_parameters():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=8) @bitserial"), "@bitserial needs parameters: @bitserial(lanes=L)", 3, 39)


def test_annotation_not_applicable():
    err = assert_error(MLP.replace("relu(h1)", "relu(h1) @quant(w=8)"), "@quant does not apply to relu", 4, 17, caret="@quant(w=8)")
    assert "dense" in err.expected
    assert_error(MLP.replace("@quant(w=8, a=8)", "@tokens(keep=0.5)"), "@tokens does not apply to dense", 3, 27)
    assert_error(VIT.replace("heads=2, mlp=64)", "heads=2, mlp=64) @quant(w=8) @cim(rows=8, cols=8)"), "@cim does not apply to encoder", 4, 47)


def test_duplicate_annotation():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=8) @quant(a=8)"), "duplicate annotation @quant (the first is at line 3:27)", 3, 39, caret="@quant(a=8)")


def test_binary_conflicts_with_quant_w():
    text = MLP.replace("  y = dense(r1, units=10)", "  s = sign(r1)\n  y = dense(s, units=10) @quant(w=4) @binary")
    assert_error(text, "@binary conflicts with @quant", 6, 38, caret="@binary")


def test_binary_with_quant_a_is_fine():
    text = MLP.replace("  y = dense(r1, units=10)", "  s = sign(r1)\n  y = dense(s, units=10) @quant(a=8) @binary")
    spec = parse(text)
    assert spec.model.layer("y").annotations.binary is not None


def test_binary_needs_binary_input():
    text = MLP.replace("dense(r1, units=10)", "dense(r1, units=10) @binary")
    assert_error(text, "@binary needs +1/-1 inputs, but 'r1' is not the output of sign(...)", 5, 13, caret="r1")


def test_binary_input_through_flatten():
    text = CNN.replace("f = flatten(p1)", "s = sign(p1)\n  f = flatten(s)").replace("dense(f, units=10)", "dense(f, units=10) @binary")
    assert parse(text).model.layer("y").annotations.binary is not None
    one_bit = MLP.replace("ufixed<8,4>[64]", "uint1[64]").replace("dense(x, units=64) @quant(w=8, a=8)", "dense(x, units=64) @binary")
    assert_error(one_bit, "@binary needs +1/-1 inputs, but 'x' is not the output of sign(...)", 3, 14, caret="x")


def test_aqfp_requires_binary():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@aqfp(group=4, T=8)"), "@aqfp needs @binary", 3, 27)


def test_aqfp_group_larger_than_fan_in():
    text = MLP.replace("ufixed<8,4>[64]", "uint1[8]").replace("dense(x, units=64) @quant(w=8, a=8)", "dense(x, units=64) @binary @aqfp(group=16, T=8)")
    assert_error(text, "@aqfp: group=16 is larger than the 8 inputs", 3, 35)


def test_aqfp_group_larger_than_the_channels_at_one_kernel_position():
    """A conv's crossbar groups hold input channels at one kernel position: 6 channels x 9 positions take
    groups of at most 6 (a group of 20 would be one group of the 6), though the fan-in is 54."""
    text = ("model m {\n  input x: ufixed<8,4>[1, 8, 8]\n  c = conv2d(x, channels=6, kernel=3) @quant(w=8, a=8)\n"
            "  s = sign(c)\n  b = conv2d(s, channels=4, kernel=3) @binary @aqfp(group={g}, T=4)\n  output b\n}\n")
    assert_error(text.replace("{g}", "7"), "@aqfp: group=7 is larger than the 6 input channels at each of the 9 kernel "
                 "positions of 'b'", 5, 47)
    parse(text.replace("{g}", "6"))


def test_aqfp_seed_nonzero():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@binary @aqfp(group=4, T=8, seed=0)"), "@aqfp: 'seed' must be from 1", 3, 60)


def test_bitserial_conflicts():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=8) @bitserial(lanes=4) @cim(rows=8, cols=8)"), "@bitserial conflicts with @cim", 3, 39)
    text = MLP.replace("  y = dense(r1, units=10)", "  s = sign(r1)\n  y = dense(s, units=10) @bitserial(lanes=4) @binary")
    assert_error(text, "@bitserial conflicts with @binary", 6, 26)


def test_cim_conflicts_with_binary():
    text = MLP.replace("  y = dense(r1, units=10)", "  s = sign(r1)\n  y = dense(s, units=10) @cim(rows=8, cols=8) @binary")
    assert_error(text, "@cim conflicts with @binary", 6, 26)


@pytest.mark.parametrize("ann", ["@bitsparse(target=4)", "@trunc(bits=[4])", "@bitserial(lanes=4)", "@cim(rows=8, cols=8)"])
def test_needs_quant_w(ann):
    assert_error(MLP.replace("@quant(w=8, a=8)", ann), f"{ann.split('(')[0]} needs @quant with a weight width", 3, 27)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(a=8) " + ann), f"{ann.split('(')[0]} needs @quant with a weight width", 3, 27, caret="@quant(a=8)")


def test_trunc_bits_at_most_w():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @trunc(bits=[4, 6])"), "@trunc: 6 bits is more than the weight width w=4", 3, 39)


def test_trunc_bits_range_and_duplicates():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @trunc(bits=[4, 0])"), "each entry of 'bits' must be from 1 to 16, got 0", 3, 55, caret="0")
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @trunc(bits=[4, 4])"), "@trunc: 4 bits is listed twice", 3, 55)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @trunc(bits=[])"), "'bits' must not be empty", 3, 51)


def test_bitsparse_target_at_most_w():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @bitsparse(target=6)"), "@bitsparse: target=6 bits is more than the weight width w=4", 3, 39)


def test_cim_array_too_small():
    err = assert_error(
        MLP.replace("@quant(w=8, a=8)", "@quant(w=8) @cim(rows=64, cols=3, cell=2)"),
        "@cim: a 64x3 array cannot hold one column slice: w=8 bits in 2-bit cells need 4 columns", 3, 39,
    )
    assert err.expected == "cols >= 4"


def test_cim_cell_adc_dac_ranges():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @cim(rows=8, cols=8, cell=6)"), "@cim: cell=6 bits is more than the weight width w=4", 3, 39)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @cim(rows=8, cols=8, adc=17)"), "@cim: 'adc' must be from 1 to 16, got 17", 3, 64)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @cim(rows=8, cols=8, dac=9)"), "@cim: 'dac' must be from 1 to 8, got 9", 3, 64)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @cim(rows=0, cols=8)"), "@cim: 'rows' must be from 1 to 65536, got 0", 3, 49)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@quant(w=4) @cim(rows=8, cols=8, noise=-0.1)"), "@cim: 'noise' must be >= 0 and <= 1, got -0.1", 3, 66)


@pytest.mark.parametrize("keep, col", [("0", 48), ("1.5", 48), ("-0.2", 48)])
def test_keep_ratio_outside_range(keep, col):
    text = VIT.replace("mlp=64)", f"mlp=64) @tokens(keep={keep})")
    err = assert_error(text, f"@tokens: 'keep' must be > 0 and <= 1, got {keep}", 4, col, caret=keep)
    assert err.expected == "a number > 0 and <= 1"


def test_keep_one_is_fine():
    assert parse(VIT.replace("mlp=64)", "mlp=64) @tokens(keep=1)")).model.layer("e").annotations.tokens.keep == 1.0


def test_prune_forms():
    assert_error(MLP.replace("@quant(w=8, a=8)", "@prune(start=3)"), "@prune needs sparsity=..., nm=N:M, or block=[R, C]", 3, 27)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@prune(nm=2:4, sparsity=0.5)"), "@prune(nm=N:M) takes no sparsity or block", 3, 42)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@prune(nm=4:2)"), "@prune: nm=4:2 must keep N of M weights", 3, 37, caret="4:2")
    assert_error(MLP.replace("@quant(w=8, a=8)", "@prune(block=[4, 4])"), "@prune(block=...) needs sparsity=...", 3, 27)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@prune(sparsity=1.0)"), "@prune: 'sparsity' must be > 0 and < 1, got 1", 3, 43)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@prune(nm=2)"), "@prune: 'nm' must be a ratio N:M", 3, 37)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@prune(block=[4])"), "'block' must be a list of 2 whole numbers, got 1", 3, 40)
    assert_error(MLP.replace("@quant(w=8, a=8)", "@prune(sparsity=0.5, start=5, end=5)"), "@prune: end=5 must come after start=5", 3, 61)


def test_prune_nm_must_divide_fan_in():
    text = MLP.replace("[64]", "[66]").replace("@quant(w=8, a=8)", "@prune(nm=2:4)")
    assert_error(text, "groups of 4 run along the inputs, but a weight matrix of 'h1' has 66 inputs", 3, 27)


def test_prune_block_must_tile():
    text = MLP.replace("@quant(w=8, a=8)", "@prune(block=[3, 4], sparsity=0.5)")
    assert_error(text, "@prune: blocks of 3x4 do not tile the 64x64 weight matrix of 'h1'", 3, 27)


def test_prune_epochs_within_training():
    text = MLP.replace("@quant(w=8, a=8)", "@prune(sparsity=0.5, end=40)") + TRAIN
    assert_error(text, "@prune: end=40 is after the end of training (30 epochs)", 3, 27)
    text = MLP.replace("@quant(w=8, a=8)", "@prune(sparsity=0.5, start=30)") + TRAIN
    assert_error(text, "@prune: start=30 is not before the end of training (30 epochs)", 3, 27)


# ---------------------------------------------------------------- train


def test_train_defaults_and_values():
    spec = parse(MLP)
    assert spec.train.epochs == 30 and spec.train.data == "digits"
    spec = parse(MLP + 'train {\n  data = "my data.npz"\n  optimizer = sgd\n  lr = 1e-2\n  weight_decay = 0\n}\n')
    assert spec.train.data == "my data.npz" and spec.train.optimizer.value == "sgd" and spec.train.lr == 0.01
    assert spec.train.weight_decay == 0.0 and isinstance(spec.train.weight_decay, float)


def test_train_unknown_key():
    assert_error(MLP + "train {\n  epoch = 3\n}\n", "unknown parameter 'epoch' for train; expected one of: data, epochs", 9, 3, caret="epoch")


def test_train_duplicate_key():
    assert_error(MLP + "train {\n  epochs = 3\n  epochs = 4\n}\n", "duplicate parameter 'epochs' for train", 10, 3)


def test_train_bad_values():
    assert_error(MLP + "train {\n  optimizer = adan\n}\n", "did you mean 'adam'?", 9, 15)
    assert_error(MLP + "train {\n  data = mnist\n}\n", "train: unknown data set 'mnist'", 9, 10)
    assert_error(MLP + "train {\n  lr = 0\n}\n", "train: 'lr' must be > 0", 9, 8)
    assert_error(MLP + "train {\n  lr = 1e999\n}\n", "train: 'lr' must be a finite number", 9, 8)
    assert_error(MLP + 'train {\n  data = "a\\nb"\n}\n', "unsupported escape '\\n' in a string", 9, 10)
    assert_error(MLP + 'train {\n  data = ""\n}\n', "'data' must not be an empty path", 9, 10)


def test_stage_epochs_must_sum():
    text = MLP + "train {\n  epochs = 30\n  stage a(epochs=5)\n  stage b(epochs=20)\n}\n"
    err = assert_error(text, "epochs = 30, but the stages add up to 25 (a 5 + b 20)", 9, 12, caret="30")
    assert "epochs = 25" in err.expected


def test_epochs_is_sum_of_stages():
    spec = parse(MLP + "train {\n  stage a(epochs=5, compress=none)\n  stage b(epochs=20, lr=0.01, compress=[quant])\n}\n")
    assert spec.train.epochs == 25
    a, b = spec.train.stages
    assert (a.name, a.epochs, a.lr, a.compress) == ("a", 5, None, ())
    assert (b.name, b.epochs, b.lr, b.compress) == ("b", 20, 0.01, ("quant",))


def test_stage_errors():
    assert_error(MLP + "train {\n  stage a(epochs=5)\n  stage a(epochs=5)\n}\n", "duplicate stage 'a'", 10, 9)
    assert_error(MLP + "train {\n  stage a(lr=0.1)\n}\n", "stage 'a' needs the parameter 'epochs'", 9, 9)
    assert_error(MLP + "train {\n  stage a(epochs=5, compress=[qaunt])\n}\n", "'qaunt' is not an annotation name; did you mean 'quant'?", 9, 31)
    assert_error(MLP + "train {\n  stage a(epochs=5, compress=[quant, quant])\n}\n", "'quant' is listed twice", 9, 38)
    assert_error(MLP + "train {\n  stage a(epochs=5, compress=[prune])\n}\n", "stage 'a' compresses 'prune', but no layer has @prune", 9, 3)
    assert_error(MLP + "train {\n  stage a(epochs=5, compress=some)\n}\n", "'compress' must be none, all or a list", 9, 30)


def test_reserved_words_are_not_names():
    err = error_of(MLP.replace("r1 = relu(h1)", "model = relu(h1)"))
    assert err.span.line == 4



def test_bitserial_on_the_vit_kinds():
    """@bitserial(lanes=L) maps every linear sub-layer of a ViT layer to a bit-serial MAC: lanes at most
    the smallest fan-in of those linears (patch_embed: C*P*P; encoder: min(D, mlp); cls_head: D)."""
    text = (VIT.replace("dim=32)", "dim=32) @quant(w=8, a=8) @bitserial(lanes=4)")
            .replace("mlp=64)", "mlp=64) @quant(w=8, a=8) @bitserial(lanes=32)")
            .replace("classes=10)", "classes=10) @quant(w=8, a=8) @bitserial(lanes=4)"))
    layers = {lay.name: lay for lay in parse(text, "f.cdsl").model.layers}
    assert [layers[n].annotations.bitserial.lanes for n in "tey"] == [4, 32, 4]
    assert_error(VIT.replace("dim=32)", "dim=32) @quant(w=8) @bitserial(lanes=5)"),
                 "@bitserial: lanes=5 is more than the 4 inputs of the narrowest linear sub-layer of 't'", 3, 51,
                 caret="@bitserial(lanes=5)", expected="lanes from 1 to 4")
    assert_error(VIT.replace("mlp=64)", "mlp=64) @quant(w=8) @bitserial(lanes=33)"),
                 "lanes=33 is more than the 32 inputs of the narrowest linear sub-layer of 'e'", 4, 47, caret="@bitserial(lanes=33)")
    assert_error(VIT.replace("classes=10)", "classes=10) @quant(w=8) @bitserial(lanes=64)"),
                 "lanes=64 is more than the 32 inputs", 5, 43, caret="@bitserial(lanes=64)")
    assert_error(VIT.replace("mlp=64)", "mlp=64) @bitserial(lanes=4)"),
                 "@bitserial needs @quant with a weight width", 4, 35)
    assert_error(VIT.replace("mlp=64)", "mlp=64) @quant(w=8) @bitserial(lanes=4) @trunc(bits=[4])"),
                 "@trunc does not apply to encoder", 4, 67)


def test_tokens_heads_divide_the_width():
    """The selector splits each token's D features into `heads` groups of D/heads: a heads count that
    does not divide D is refused at the annotation (it crashed training with a reshape error)."""
    assert parse(VIT.replace("mlp=64)", "mlp=64) @tokens(keep=0.5, heads=4)")).model.layer("e").annotations.tokens.heads == 4
    assert_error(VIT.replace("mlp=64)", "mlp=64) @tokens(keep=0.5, heads=3)"),
                 "@tokens: the selector's heads=3 do not divide the width 32 of 'e'", 4, 35,
                 caret="@tokens(keep=0.5, heads=3)", expected="heads dividing 32")


def test_tokens_need_a_candidate():
    """A selector on a one-token stream (only the class token) has nothing to choose: refused at the
    annotation (training crashed in an activation observer on an empty tensor)."""
    text = "model m {\n  input x: int8[1, 8]\n  e = encoder(x, heads=2, mlp=8) @tokens(keep=0.5)\n  y = cls_head(e, classes=2)\n  output y\n}\n"
    assert_error(text, "@tokens: the input of 'e' has 1 token (the class token only): the selector has no candidate", 3, 34,
                 caret="@tokens(keep=0.5)", expected="a token stream of at least 2 tokens")
    assert parse(text.replace("int8[1, 8]", "int8[2, 8]")).model.layer("e").annotations.tokens.keep == 0.5
