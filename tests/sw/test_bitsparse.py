"""MSQ in the software path: the LSB penalty, dropping bits, the width in checkpoints and the export, the
Hessian estimate against an exact trace, the drop rule, and the parameter cost against plain QAT.

Expected values are written out from the rules (Python integers, an exact Hessian by torch.func),
never taken from the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from cdsl.contract.golden import golden, quantize_input
from cdsl.dsl import parse
from cdsl.sw.build import build
from cdsl.sw.evaluations._baseline import without
from cdsl.sw.evaluations.bitsparse import trainable_parameters
from cdsl.sw.export import export
from cdsl.sw.objectives import bitsparse as msq
from cdsl.sw.quantizers.bitsparse import BitSparseQuant
from cdsl.sw.train import classification_loss

SPEC = """
model m {
  input x: ufixed<8,4>[64]
  h1 = dense(x, units=64) @quant(w=8, a=8) @bitsparse(target=%(t)s, strength=0.001) @bitserial(lanes=8)
  r1 = relu(h1)
  h2 = dense(r1, units=32) @quant(w=8, a=8) @bitsparse(target=%(t)s, strength=0.001) @bitserial(lanes=8)
  r2 = relu(h2)
  y = dense(r2, units=10) @quant(w=8, a=8) @bitsparse(target=%(t)s, strength=0.001)
  output y
}
"""
SIZES = {"h1": 64 * 64, "h2": 64 * 32, "y": 32 * 10}


def quantizer(bits=8, scale=0.01) -> BitSparseQuant:
    q = BitSparseQuant(target=4, strength=1e-3, bits=bits, channels=1, per_channel=False, learned=True)
    with torch.no_grad():
        q.log_scale.fill_(math.log(scale))
    return q


def on_codes(codes, scale=0.01, jitter=None):
    """Weights at scale * (code + jitter), jitter in (-0.5, 0.5): their codes are `codes`."""
    codes = torch.tensor(codes, dtype=torch.float64)
    jitter = torch.zeros_like(codes) if jitter is None else torch.tensor(jitter, dtype=torch.float64)
    return (scale * (codes + jitter)).float().reshape(1, -1).requires_grad_()


def test_lsb_penalty_counts_odd_codes_and_pushes_them_to_the_nearest_even_code():
    q = quantizer()
    codes = list(range(-128, 128))
    jitter = [0.3 if c % 3 == 0 else -0.3 for c in codes]
    w = on_codes(codes, jitter=jitter)
    penalty = q.lsb_penalty(w)
    assert penalty.item() == pytest.approx(sum(c % 2 for c in codes) / 128)  # |LSB| in units of the half range
    penalty.backward()
    step = -w.grad.flatten()  # gradient descent direction
    for c, j, g in zip(codes, jitter, step.tolist()):
        if c % 2 == 0:
            assert g == 0, c
        else:
            nearest_even = c + 1 if j > 0 else c - 1  # the coarse grid point the weight rounds to
            assert g == pytest.approx((1 if nearest_even > c + j else -1) / (0.01 * 128), rel=1e-4), c


@pytest.mark.parametrize("k", [1, 2, 3])
def test_drop_keeps_the_range_and_nests_the_grids(k):
    q = quantizer()
    codes = list(range(-128, 128))
    w = on_codes(codes, jitter=[0.2] * len(codes))
    q.drop(k, sensitivity=0.5, lsb_sparsity=0.9)
    assert (q.bits, q.qmin, q.qmax) == (8 - k, -(1 << (7 - k)), (1 << (7 - k)) - 1)
    assert q.effective_scale(w).item() == pytest.approx(0.01 * 2 ** k)
    new = q.codes(w, q.effective_scale(w)).flatten().tolist()
    for c, n in zip(codes, new):
        if c % (1 << k) == 0 and c < 128 - (1 << k):
            assert n == c >> k, c  # codes whose k low bits were zero keep their value exactly
        assert abs(n * (1 << k) - c) <= (1 << (k - 1)) + 1 or n == q.qmax, c  # rounded to the coarser grid
    assert q.history == [{"epoch": 0, "from": 8, "to": 8 - k, "sensitivity": 0.5, "lsb_sparsity": 0.9}]


def test_drop_nests_the_grids_with_max_abs_scales_too():
    q = BitSparseQuant(target=4, strength=1e-3, bits=8, channels=3, per_channel=True, learned=False)
    w = torch.randn(3, 20, generator=torch.Generator().manual_seed(0))
    before = q.effective_scale(w)
    assert torch.allclose(before, w.abs().amax(dim=1) / 127)
    q.drop(3, sensitivity=0.0, lsb_sparsity=1.0)
    assert torch.allclose(q.effective_scale(w), before * 8)


def test_drop_is_checked():
    q = quantizer(bits=4)
    for bad in (0, 3, 1.0):
        with pytest.raises(ValueError, match="k must be an int in 1..2"):
            q.drop(bad, sensitivity=0.0, lsb_sparsity=1.0)


@pytest.fixture()
def net():
    torch.manual_seed(0)
    n = build(parse(SPEC % {"t": 4}))
    n.set_compress(None)
    n.calibrate(torch.rand(64, 64) * 15)
    return n


def layers_of(net):
    return dict(zip(("h1", "h2", "y"), msq.sparsified_layers(net)))


def test_the_width_survives_a_checkpoint_and_reaches_the_integer_model(net):
    m, q = layers_of(net)["h1"]
    q.drop(3, sensitivity=0.1, lsb_sparsity=0.95)
    fresh = build(parse(SPEC % {"t": 4}))
    fresh.load_state_dict(net.state_dict())
    fresh.set_compress(None)
    assert fresh.blocks["h1"].wq.bits == 5 and fresh.blocks["h1"].wq.history == q.history
    im = export(fresh)
    pay = im.layer("h1").payload
    assert pay.w_bits == 5 and pay.weight.min() >= -16 and pay.weight.max() <= 15
    assert [im.layer(n).payload.w_bits for n in ("h2", "y")] == [8, 8]
    x = torch.rand(40, 64) * 15
    want = golden(im, quantize_input(im, x), trace=True)[1]
    got = fresh.trace_codes(x)
    for name in ("h1", "h2", "y"):
        assert (got[name] != want[name]).double().mean().item() <= 1e-3, name


def on_even_codes(net, names):
    """Move the weights of `names` onto even codes (LSB sparsity 1)."""
    with torch.no_grad():
        for name in names:
            m = net.blocks[name]
            s = m.wq.effective_scale(m.weight).reshape(-1, 1)
            m.weight.copy_(2 * s * torch.round(m.weight / (2 * s)))


def checked(net, monkeypatch, sensitivities):
    monkeypatch.setattr(msq, "hessian_traces", lambda *a, **k: list(sensitivities))
    layers = msq.sparsified_layers(net)
    for _, q in layers:
        q.check_due = True
    msq.check(net, layers, torch.rand(8, 64), torch.zeros(8, dtype=torch.int64))
    return {name: q for name, (_, q) in zip(("h1", "h2", "y"), layers)}


def test_check_drops_two_bits_below_the_mean_sensitivity_and_one_above(net, monkeypatch):
    on_even_codes(net, ("h1", "h2", "y"))
    qs = checked(net, monkeypatch, [1.0, 3.0, 8.0])  # mean 4: h1, h2 below, y above
    assert {n: q.bits for n, q in qs.items()} == {"h1": 6, "h2": 6, "y": 7}
    assert all(q.regularizing and not q.check_due for q in qs.values())  # 6.05 bits on average: above 4
    assert [h["sensitivity"] for h in qs["h1"].history] == [1.0] and qs["y"].sensitivity == 8.0


def test_check_skips_layers_whose_lsb_is_not_sparse(net, monkeypatch):
    on_even_codes(net, ("h2",))
    qs = checked(net, monkeypatch, [1.0, 3.0, 8.0])
    assert {n: q.bits for n, q in qs.items()} == {"h1": 8, "h2": 6, "y": 8}


def test_check_drops_no_more_than_the_budget_needs_then_stops(monkeypatch):
    torch.manual_seed(0)
    net = build(parse(SPEC % {"t": 7}))
    net.set_compress(None)
    net.calibrate(torch.rand(64, 64) * 15)
    on_even_codes(net, ("h1", "h2", "y"))
    qs = checked(net, monkeypatch, [1.0, 3.0, 8.0])
    # budget 7: h1 drops 2 (ceil((8 - 7) * 6464 / 4096) = 2 needed), the average is then 6.73: done
    assert {n: q.bits for n, q in qs.items()} == {"h1": 6, "h2": 8, "y": 8}
    assert not any(q.regularizing for q in qs.values())
    again = checked(net, monkeypatch, [1.0, 3.0, 8.0])
    assert {n: q.bits for n, q in again.items()} == {"h1": 6, "h2": 8, "y": 8}


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # inside torch.func
def test_hutchinson_estimate_matches_the_exact_hessian_trace():
    torch.manual_seed(1)
    spec = parse("model t { input x: ufixed<8,4>[6]\n  y = dense(x, units=4) @quant(w=8, a=8) @bitsparse(target=4)\n"
                 "  output y }")
    net = build(spec)
    net.set_compress(None)
    x, y = torch.rand(16, 6) * 15, torch.arange(16) % 4
    net.calibrate(x)
    net.eval()
    weight = net.blocks["y"].weight

    def loss_of(w):
        return classification_loss(torch.func.functional_call(net, {"blocks.y.weight": w}, (x,)), y)

    exact = torch.func.hessian(loss_of)(weight.detach()).reshape(weight.numel(), -1).diagonal().sum().item()
    (estimate,) = msq.hessian_traces(net, msq.sparsified_layers(net), x, y, samples=4000, seed=0)
    assert exact > 0
    assert estimate == pytest.approx(exact / weight.numel(), rel=0.05)


def test_msq_costs_no_more_trainable_parameters_than_plain_qat():
    spec = parse(SPEC % {"t": 4})
    assert trainable_parameters(build(spec)) == trainable_parameters(build(without(spec, "bitsparse")))


def test_objective_checks_once_per_epoch_and_adds_the_lsb_penalty(net, monkeypatch):
    calls = []
    monkeypatch.setattr(msq, "hessian_traces", lambda *a, **k: calls.append(1) or [1.0, 3.0, 8.0])
    x, y = torch.rand(32, 64) * 15, torch.arange(32) % 10
    net.eval()  # no moving-average updates: the loss can be recomputed below
    net.start_epoch(5, 30)
    loss, out = net.objective(x, y)
    loss_again, _ = net.objective(x, y)
    assert len(calls) == 1 and not any(q.check_due for _, q in msq.sparsified_layers(net))
    odd = 0.0
    for m, q in msq.sparsified_layers(net):  # strength * (odd codes) / 2**(bits-1) per layer
        codes = q.codes(m.weight, q.effective_scale(m.weight)).detach().flatten().tolist()
        odd += 1e-3 * sum(int(c) % 2 for c in codes) / (1 << (q.bits - 1))
    ce = torch.nn.functional.cross_entropy(out, y).item()
    assert loss.item() == pytest.approx(ce + odd, rel=1e-5) and loss_again.item() == pytest.approx(loss.item())
    msq.stop_regularizing(msq.sparsified_layers(net))
    assert net.objective(x, y)[0].item() == pytest.approx(ce, rel=1e-6)
