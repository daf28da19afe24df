"""Per-layer figures: parameters, MACs, bits, sparsity, mapping, compression ratio."""

from __future__ import annotations

import pytest

from cdsl.dsl import parse, parse_file
from cdsl.dsl.analysis import layer_stats, totals
from dsl_helpers import CNN, EXAMPLES, MLP, VIT


def stats_by_name(spec):
    return {s.name: s for s in layer_stats(spec)}


def example(stem):
    return parse_file([p for p in EXAMPLES if p.stem == stem][0])


def test_mlp_example_figures():
    s = stats_by_name(example("mlp"))
    assert s["x"].op == "input" and s["x"].a_bits == 8
    h1, h2, y = s["h1"], s["h2"], s["y"]
    assert (h1.weights, h1.other, h1.macs, h1.w_bits, h1.a_bits) == (4096, 64, 4096, 8, 8)
    assert h1.mapping == "bitserial(8 lanes)"
    assert (y.weights, y.other, y.macs, y.w_bits, y.a_bits) == (320, 10, 320, 8, 8)
    assert (h2.weights, h2.nonzero, h2.sparsity, h2.w_bits) == (2048, 1024, "2:4", 4)
    assert h2.mapping == "parallel"
    assert s["r1"].a_bits == 8 and s["r1"].mapping == "-" and s["r1"].params == 0
    t = totals(layer_stats(example("mlp")))
    assert t.params == 4160 + 2080 + 330
    assert t.float_bits == 32 * (4096 + 2048 + 320)
    assert t.compressed_bits == 8 * 4096 + 4 * 1024 + 8 * 320
    assert t.ratio == pytest.approx(206848 / 39424)


def test_cnn_example_figures():
    s = stats_by_name(example("cnn"))
    c1, c2 = s["c1"], s["c2"]
    assert (c1.weights, c1.other, c1.macs) == (8 * 1 * 9, 8, 1 * 9 * 8 * 8 * 8)
    assert (c2.weights, c2.macs) == (16 * 8 * 9, 8 * 9 * 16 * 4 * 4)
    # 72 inputs over 64 rows -> 2 row tiles; 4-bit weights in 2-bit cells = 2 columns each, 16 outputs fit one tile
    assert c2.tiles == 2 and c2.mapping == "cim 64x32 x 2 tiles"
    assert s["p2"].shape == (16, 2, 2) and s["p2"].macs == 0


def test_bnn_example_figures():
    s = stats_by_name(example("bnn"))
    h2 = s["h2"]
    assert h2.w_bits == 1 and h2.compressed_bits == 128 * 128 and h2.mapping == "aqfp(group 16, T=16)"
    assert s["s1"].a_bits == 1


def test_vit_example_figures():
    s = stats_by_name(example("vit"))
    t, e1, e2, y = s["t"], s["e1"], s["e2"], s["y"]
    assert (t.weights, t.other, t.macs) == (32 * 4, 32 + 32 + 17 * 32, 16 * 4 * 32)
    assert e1.weights == 3 * 32 * 32 + 32 * 32 + 2 * 32 * 64
    assert e1.other == 2 * 32 + 3 * 32 + 32 + 2 * 32 + 64 + 32
    # keep 0.7 of 16 patch tokens -> 12, plus the class token and one package token; e2 runs on e1's
    assert e1.macs == e2.macs == 14 * (3 * 1024 + 1024 + 2 * 32 * 64) + 2 * 14 * 14 * 32
    assert "tokens(keep 0.7)" in e1.mapping and "tokens" not in e2.mapping
    text = [p for p in EXAMPLES if p.stem == "vit"][0].read_text()
    plain = stats_by_name(parse(text.replace(" @tokens(keep=0.7, heads=2)", "")))
    assert plain["e1"].macs == plain["e2"].macs == 17 * (3 * 1024 + 1024 + 2 * 32 * 64) + 2 * 17 * 17 * 32
    assert (y.weights, y.other, y.macs) == (320, 64 + 10, 320)


def test_unquantized_layer_counts_float32():
    s = stats_by_name(parse(MLP))
    assert s["y"].w_bits is None and s["y"].compressed_bits == 32 * 640 and s["y"].a_bits is None


def test_unstructured_and_block_sparsity():
    s = stats_by_name(parse(MLP.replace("@quant(w=8, a=8)", "@quant(w=8) @prune(sparsity=0.75)")))
    assert s["h1"].nonzero == 1024 and s["h1"].sparsity == "75%"
    s = stats_by_name(parse(MLP.replace("@quant(w=8, a=8)", "@prune(block=[4, 4], sparsity=0.5)")))
    assert s["h1"].nonzero == 2048 and s["h1"].sparsity == "block 4x4 50%"


def test_cim_tiles_count_rows_and_columns():
    # 64 inputs over 16 rows -> 4; 64 outputs x 4 columns each in 32 columns (8 per tile) -> 8
    s = stats_by_name(parse(MLP.replace("@quant(w=8, a=8)", "@quant(w=8) @cim(rows=16, cols=32, cell=2)")))
    assert s["h1"].tiles == 32 and s["h1"].mapping == "cim 16x32 x 32 tiles"


def test_conv_stride_and_flatten():
    s = stats_by_name(parse(CNN.replace("padding=1", "stride=2")))
    assert s["c1"].shape == (8, 3, 3) and s["c1"].macs == 9 * 8 * 9
    assert s["f"].shape == (8,)
    s = stats_by_name(parse(VIT))
    assert s["e"].macs == 17 * (3 * 1024 + 1024 + 2 * 32 * 64) + 2 * 17 * 17 * 32
