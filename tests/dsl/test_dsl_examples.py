"""Every bundled example parses, is canonical, and round-trips through the printer."""

from __future__ import annotations

import pytest

from cdsl.dsl import format_source, ir, load_source, parse, parse_file, print_spec
from dsl_helpers import EXAMPLES


def test_there_are_four_examples():
    assert {p.stem for p in EXAMPLES} >= {"mlp", "cnn", "bnn", "vit"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_is_canonical_and_round_trips(path):
    source = load_source(path)
    spec = parse_file(path)
    assert format_source(source.text, source.name) == source.text
    assert parse(print_spec(spec)) == spec
    assert parse(format_source(source.text)) == spec
    # the canonical print of the IR is itself stable
    assert print_spec(parse(print_spec(spec))) == print_spec(spec)


def test_mlp_ir():
    spec = parse_file([p for p in EXAMPLES if p.stem == "mlp"][0])
    m = spec.model
    assert m.name == "digits_mlp" and m.outputs == ("y",)
    assert m.inputs[0] == ir.Input("x", ir.FixedType(8, 4, False), (64,))
    h1, r1, h2, r2, y = m.layers
    assert h1.op == ir.Dense(64) and h1.shape == (64,)
    assert h1.annotations.quant == ir.Quant(w=8, a=8) and h1.annotations.bitserial == ir.BitSerial(8)
    assert h2.annotations.prune == ir.Prune(ir.PrunePattern.NM, n=2, m=4)
    assert isinstance(r1.op, ir.ReLU) and r2.inputs == ("h2",)
    assert y.shape == (10,)
    t = spec.train
    assert (t.epochs, t.batch, t.optimizer, t.lr, t.seed) == (30, 64, ir.Optimizer.ADAM, 0.003, 0)
    assert t.stages == (ir.Stage("warmup", 5, None, ()), ir.Stage("qat", 25, None, None))


def test_cnn_ir():
    m = parse_file([p for p in EXAMPLES if p.stem == "cnn"][0]).model
    assert [lay.shape for lay in m.layers] == [(8, 8, 8), (8, 8, 8), (8, 4, 4), (16, 4, 4), (16, 4, 4), (16, 2, 2), (64,), (10,)]
    assert m.layer("c1").annotations.quant.per is ir.Granularity.CHANNEL
    assert m.layer("c2").annotations.cim == ir.Cim(64, 32, 2, 1, 6, ir.Granularity.CHANNEL, 0.02)
    assert m.layer("p2").op == ir.Pool(ir.PoolKind.AVG, 2, 2)


def test_bnn_ir():
    m = parse_file([p for p in EXAMPLES if p.stem == "bnn"][0]).model
    h2 = m.layer("h2")
    assert h2.annotations.binary == ir.Binary() and h2.annotations.aqfp == ir.Aqfp(16, 16, 7)
    assert isinstance(m.layer("s1").op, ir.Sign)


def test_vit_ir():
    spec = parse_file([p for p in EXAMPLES if p.stem == "vit"][0])
    m = spec.model
    assert m.layer("t").shape == (17, 32) and m.layer("t").op == ir.PatchEmbed(2, 32)
    assert m.layer("e1").annotations.tokens == ir.Tokens(0.7, 2) and m.layer("e2").annotations.tokens is None
    assert m.layer("y").op == ir.ClsHead(10)
    assert spec.train.optimizer is ir.Optimizer.ADAMW and spec.train.weight_decay == 0.05


def test_spans_on_nodes():
    spec = parse_file([p for p in EXAMPLES if p.stem == "cnn"][0])
    c2 = spec.model.layer("c2")
    assert (c2.span.line, c2.span.col) == (10, 3)
    assert c2.span.end_line == 12
    assert (c2.annotations.cim.span.line, c2.annotations.cim.span.col) == (12, 5)
    assert spec.model.inputs[0].span.line == 5
    assert spec.train.span.line == 21
