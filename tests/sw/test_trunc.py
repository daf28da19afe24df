"""TruncQuant in the software path: the truncation arithmetic, the quantizer, the objective, the agreement of
the training network with the golden model at every precision, and the `cdsl eval` section.

Expectations are plain statements in Python integers (`(w >> s) << s`) or written out here, never
the code under test.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cdsl.contract.golden import golden, predict, quantize_input
from cdsl.contract.ref import bitserial_mac
from cdsl.dsl import parse, print_spec
from cdsl.errors import CdslError
from cdsl.flow import spec_problems
from cdsl.sw.build import build
from cdsl.sw.evaluate import evaluate_run
from cdsl.sw.evaluations._baseline import without
from cdsl.sw.evaluations.trunc import parse_precisions
from cdsl.sw.quantizers.trunc import TruncQuant, trunc_quantizers, truncate_codes, truncated
from cdsl.sw.train import save_run, train

SPEC = """
model t {
  input x: ufixed<8,4>[64]
  h1 = dense(x, units=16) @quant(w=8, a=8) @trunc(bits=[8, 4]) @bitserial(lanes=8)
  r1 = relu(h1)
  h2 = dense(r1, units=16) @quant(w=8, a=8) @trunc(bits=[6, 4, 2]) @bitserial(lanes=4)
  r2 = relu(h2)
  y = dense(r2, units=10) @quant(w=8, a=8)
  output y
}
train {
  epochs = 6
  stage warmup(epochs=1, compress=none)
  stage qat(epochs=5, compress=[quant, trunc])
}
"""


def shift_truncate(w: int, bits: int, precision: int) -> int:
    """TruncQuant's truncation in Python integers: drop the low bits by an arithmetic shift (floor)."""
    s = bits - precision
    return (w >> s) << s


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12, 16])
def test_truncate_codes_is_the_shift_on_random_and_extreme_weights(bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    rng = random.Random(bits)
    ws = sorted({lo, lo + 1, -1, 0, 1, hi - 1, hi}) + [rng.randint(lo, hi) for _ in range(300)]
    for p in range(1, bits + 1):
        want = [shift_truncate(w, bits, p) for w in ws]
        assert truncate_codes(torch.tensor(ws, dtype=torch.float32), bits, p).tolist() == want, p
        assert bitserial_mac.truncate(np.array(ws), bits, p).tolist() == want, p  # what golden and the RTL use
    assert truncate_codes(torch.tensor(ws, dtype=torch.float32), bits, 0).tolist() == ws


def test_quantizer_truncates_its_codes_and_passes_gradients_straight_through():
    q = TruncQuant(precisions=(4, 2), bits=8, channels=1, per_channel=False, learned=True)
    assert q.precisions == (8, 4, 2)
    w = (torch.randn(16, 12, generator=torch.Generator().manual_seed(0)) * 0.2).requires_grad_()
    q.calibrate(w)
    full = q.codes(w, q.effective_scale(w)).detach()
    for p in (4, 2):
        q.set_precision(p)
        w.grad = None
        s = q.effective_scale(w).detach()
        codes = q.codes(w, s)
        assert codes.detach().flatten().tolist() == [shift_truncate(int(c), 8, p) for c in full.flatten()]
        (codes * s).sum().backward()
        assert torch.equal(w.grad, torch.ones_like(w))  # max-abs calibrated: nothing clamps
    for bad in (-1, 9, True, 4.0):
        with pytest.raises(ValueError, match="precision must be an int in 0..8"):
            q.set_precision(bad)
    with pytest.raises(ValueError, match="precisions must lie in 1..8"):
        TruncQuant(precisions=(9,), bits=8, channels=1, per_channel=False)


def test_trained_precision_is_the_lowest_listed_at_or_above():
    q = TruncQuant(precisions=(6, 4, 2), bits=8, channels=1, per_channel=False)
    assert [q.trained_precision(p) for p in (9, 8, 7, 6, 5, 4, 3, 2, 1)] == [8, 8, 8, 6, 6, 4, 4, 2, 2]


def _error_at(annotations: str, at: str) -> CdslError:
    """The error of building a one-layer model with `annotations`; its span must point at `at` on line 2."""
    line = f"  y = dense(x, units=10) @quant(w=8, a=8) {annotations}"
    with pytest.raises(CdslError) as info:
        build(parse(f"model m {{ input x: ufixed<8,4>[64]\n{line}\n  output y }}"))
    err = info.value
    assert (err.span.line, err.span.col) == (2, line.index(at) + 1), err
    return err


def test_trunc_needs_a_mac_with_a_runtime_precision():
    err = _error_at("@trunc(bits=[4])", "@trunc")
    assert "@trunc on layer 'y' needs a MAC that truncates its weights at run time" in err.message
    assert "@bitserial" in err.expected


def test_trunc_and_bitsparse_on_one_layer_are_refused_at_the_second():
    err = _error_at("@bitsparse(target=4) @trunc(bits=[4]) @bitserial(lanes=8)", "@trunc")
    assert "@bitsparse and @trunc each decide how the weights of layer 'y' are quantized" in err.message


@pytest.mark.parametrize("annotations,at,message", [
    ("@trunc(bits=[4])", "@trunc", "@trunc on layer 'y' needs a MAC that truncates its weights at run time"),
    ("@trunc(bits=[4]) @cim(rows=16, cols=8)", "@trunc",
     "@trunc on layer 'y' needs a MAC that truncates its weights at run time"),
    ("@bitsparse(target=4) @trunc(bits=[4]) @bitserial(lanes=8)", "@trunc",
     "@bitsparse and @trunc each decide how the weights of layer 'y' are quantized"),
])
def test_what_training_refuses_of_a_trunc_layer_cdsl_check_finds_first(annotations, at, message):
    """`cdsl check` (spec_problems) names, located, what building the network would refuse: no spec passes the
    check and then fails at the start of training."""
    line = f"  y = dense(x, units=10) @quant(w=8, a=8) {annotations}"
    problems = spec_problems(parse(f"model m {{ input x: ufixed<8,4>[64]\n{line}\n  output y }}"))
    assert [(stage, err.message[:len(message)]) for stage, err in problems] == [("train", message)], problems
    err = problems[0][1]
    assert (err.span.line, err.span.col) == (2, line.index(at) + 1), err
    assert _error_at(annotations, at).message == err.message  # the same error training raises


def test_a_trunc_layer_on_the_bit_serial_mac_has_no_problem():
    line = "  y = dense(x, units=10) @quant(w=8, a=8) @trunc(bits=[6, 3, 1]) @bitserial(lanes=3)"
    assert spec_problems(parse(f"model m {{ input x: ufixed<8,4>[64]\n{line}\n  output y }}")) == []


@pytest.fixture(scope="module")
def net_and_batch():
    torch.manual_seed(0)
    net = build(parse(SPEC))
    net.set_compress(None)
    x = torch.rand(32, 64) * 15
    y = torch.arange(32) % 10
    net.calibrate(x)
    return net, x, y


def test_objective_runs_every_precision_once_and_sums_the_losses(net_and_batch):
    net, x, y = net_and_batch
    net.eval()  # no moving-average updates: the passes can be recomputed below
    seen = {name: [] for name in ("h1", "h2")}
    hooks = [net.blocks[n].register_forward_hook(lambda m, i, o, n=n: seen[n].append(m.wq.precision)) for n in seen]
    try:
        loss, out = net.objective(x, y)
    finally:
        for h in hooks:
            h.remove()
    # passes at 8 (all full), 6, 4, 2: h1 (set 8, 4) runs at 8, 8, 4, 4; h2 (set 6, 4, 2 of 8) at 8, 6, 4, 2
    assert seen == {"h1": [0, 8, 4, 4], "h2": [0, 6, 4, 2]}
    assert all(q.precision == 0 for q in trunc_quantizers(net))
    # the loss written out: CE at full precision + per lower pass 0.5 CE + 0.5 CE against the full softmax
    full = net(x)
    want = F.cross_entropy(full, y)
    teacher = F.softmax(full, dim=-1)
    for p1, p2 in ((8, 6), (4, 4), (4, 2)):
        net.blocks["h1"].wq.set_precision(p1)
        net.blocks["h2"].wq.set_precision(p2)
        low = net(x)
        want = want + 0.5 * F.cross_entropy(low, y) - 0.5 * (teacher * F.log_softmax(low, dim=-1)).sum(-1).mean()
    for q in trunc_quantizers(net):
        q.set_precision(0)
    assert torch.allclose(loss, want) and torch.equal(out, full)
    net.set_compress(("quant",))  # a stage without trunc: the plain objective, one pass
    assert torch.allclose(net.objective(x, y)[0], F.cross_entropy(full, y))
    net.set_compress(None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    result = train(parse(SPEC), float_twin=False)
    run = save_run(result, tmp_path_factory.mktemp("trunc") / "run", spec_text=SPEC)
    return result, run


def test_training_network_equals_golden_at_every_precision(trained):
    """At precision p the fake-quant forward pass and the golden model with LAYER.precision=p compute the
    same codes, layer by layer (but for rare float near-ties)."""
    result, _ = trained
    im, x_float = result.intmodel, result.data.x_test
    x = quantize_input(im, x_float)
    for p in (8, 6, 5, 4, 2, 1):
        _, want = golden(im, x, settings={"h1": {"precision": p}, "h2": {"precision": p}}, trace=True)
        with truncated(result.net, p):
            got = result.net.trace_codes(x_float)
        for name in ("h1", "h2", "y"):
            assert (got[name] != want[name]).double().mean().item() <= 1e-3, (p, name)
    # and precision changes the integers: at 2 bits the codes differ from full precision
    assert not torch.equal(golden(im, x, settings={"h1": {"precision": 2}}), golden(im, x))


def test_eval_section_trains_then_finds_the_baseline(trained):
    result, run = trained
    res = evaluate_run(run, options={"precisions": "8,4,2"})
    (section,) = [s for s in res["sections"] if s.title.startswith("runtime truncation")]
    assert [row[0] for row in section.rows] == [8, 4, 2]
    im, data = result.intmodel, result.data
    x = quantize_input(im, data.x_test)
    for row in section.rows:
        settings = {"h1": {"precision": row[0]}, "h2": {"precision": row[0]}}
        acc = float((predict(im, x, settings=settings) == data.y_test).double().mean())
        assert row[1] == f"{100 * acc:.2f}%"
    assert any("trained now into" in n and "no-trunc" in n for n in section.notes)
    # each layer's own set (with its full width), not their union [8, 6, 4, 2], which h1 never trained at 6 or 2
    assert "trained for h1 [8, 4], h2 [8, 6, 4, 2]" in section.notes[0]
    baseline_spec = (run / "baselines" / "no-trunc" / "spec.cdsl").read_text()
    assert "@trunc" not in baseline_spec and "compress=[quant])" in baseline_spec
    again = [s for s in evaluate_run(run, options={"precisions": "8,4,2"})["sections"] if s.title == section.title][0]
    assert again.rows == section.rows and any(n.startswith("conventional: found in") for n in again.notes)


@pytest.mark.parametrize("argv,message", [
    (["--aqfp-groups", "4"], "--aqfp-groups does not apply: no layer of the model has @aqfp"),
    (["--cim-draws", "2"], "--cim-draws does not apply: no layer of the model has @cim"),
    (["--keeps", "0.5"], "--keeps does not apply: no layer of the model has @tokens"),
])
def test_an_eval_option_of_an_annotation_the_run_lacks_is_refused(trained, capsys, argv, message):
    """It was ignored without a word (the user reads a table that never used it): one line, exit 2."""
    from cdsl.cli import main

    _, run = trained
    assert main(["eval", str(run), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_baseline_spec_drops_the_annotation_everywhere():
    spec = parse(SPEC)
    base = without(spec, "trunc")
    assert all(lay.annotations.trunc is None for lay in base.model.layers)
    assert base.model.layer("h1").annotations.bitserial == spec.model.layer("h1").annotations.bitserial
    assert [st.compress for st in base.train.stages] == [(), ("quant",)]
    assert parse(print_spec(base)) == base


@pytest.mark.parametrize("text", ["8,x", "", "9", "0,4", "4;2"])
def test_bad_precisions_are_user_errors(text):
    with pytest.raises(CdslError, match="expected whole numbers from 1 to 8"):
        parse_precisions(text, default=(8,), widest=8)
    assert parse_precisions(None, default=(8, 4), widest=8) == (8, 4)
    assert parse_precisions("6, 3", default=(8,), widest=8) == (6, 3)
