"""Training of binary layers (`@binary`, `@binary @aqfp`): the sampled forward pass matches the integer
accumulator in distribution, eval mode and export agree with the golden model sample by sample, and
what a binary layer cannot be is refused at export with a located error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cdsl.contract.golden import golden, quantize_input
from cdsl.contract.ref import aqfp_accumulator as ref
from cdsl.contract.ref.mac import ParallelCore
from cdsl.dsl import parse
from cdsl.errors import CdslError
from cdsl.flow import spec_problems
from cdsl.sw.build import build
from cdsl.sw.cores import twin_for
from cdsl.sw.cores.aqfp import AqfpTwin, layer_groups
from cdsl.sw.cores.binary import BinaryTwin, signed_weights
from cdsl.sw.layers import Grid, Products
from cdsl.sw.train import train
from tb.aqfp_cases import TINY_AQFP as AQFP, TINY_BNN as SPEC

def spec(binary: str = AQFP):
    return parse(SPEC.format(binary=binary))


def test_the_aqfp_twin_covers_binary():
    b = spec().model.layer("b")
    assert type(twin_for(b.annotations)) is AqfpTwin
    assert type(twin_for(spec("@binary").model.layer("b").annotations)) is BinaryTwin


def test_sampled_counts_match_the_integer_accumulator_in_distribution():
    """For fixed +1/-1 inputs and weights, the training forward's count (sum of binomials) and the integer
    accumulator's count over 300 seeds (LFSR draws) have the mean and variance of the same binomials."""
    torch.manual_seed(0)
    net = build(spec())
    net.set_compress(None)
    net.train()
    block = net.blocks["b"]
    twin = block.core
    x = torch.where(torch.rand(5, 20) < 0.5, 1.0, -1.0)
    p = Products(module=block, x=x, in_grid=Grid(torch.tensor(1.0), 2, True), w=block.masked_weight(), w_codes=None,
                 w_scale=None, b=None)
    w = signed_weights(p.w, block.mask).detach()
    groups = layer_groups(w.shape, twin.group)
    runs = 300
    sampled = torch.stack([twin.sampled_count(p, w, groups).detach() for _ in range(runs)])  # [R, 5, 6]
    table, partial = twin.tables(groups)
    lfsr = torch.stack([ref.aqfp_margin(x.long(), w.long(), groups=groups, table=table, table_partial=partial,
                                        tau=np.zeros(6, dtype=np.int64), T=twin.T, seed=s) >> ref.TAU_FRAC
                        for s in range(1, runs + 1)]).double()
    # the binomials, from the table codes written out: p = table[d + size] / 256 per group
    probs = torch.zeros(5, 6)
    var = torch.zeros(5, 6)
    xs, ws = x.long().tolist(), w.long().tolist()
    for i in range(5):
        for o in range(6):
            for m, members in enumerate([range(0, 8), range(8, 16), range(16, 20)]):
                d = sum(xs[i][k] * ws[o][k] for k in members)
                code = (table if len(members) == 8 else partial)[d + len(members)] / 256
                probs[i, o] += code
                var[i, o] += code * (1 - code)
    mean, variance = twin.T * probs, twin.T * var
    for counts in (sampled.double(), lfsr):
        err = (counts.mean(dim=0) - mean).abs()
        assert torch.all(err <= 5 * torch.sqrt(variance / runs) + 1e-9), (counts.mean(dim=0), mean)
        ratio = counts.var(dim=0) / variance.clamp(min=1e-9)
        assert torch.all((variance < 0.05) | ((ratio > 0.6) & (ratio < 1.6))), ratio


def test_sampled_gradient_is_that_of_the_expected_count():
    torch.manual_seed(1)
    net = build(spec())
    net.set_compress(None)
    net.train()
    block = net.blocks["b"]
    x = torch.where(torch.rand(4, 20) < 0.5, 1.0, -1.0).requires_grad_(True)

    def products():
        p = Products(module=block, x=x, in_grid=Grid(torch.tensor(1.0), 2, True), w=block.masked_weight(),
                     w_codes=None, w_scale=None, b=None)
        return p, signed_weights(p.w, block.mask)

    p, w = products()
    groups = layer_groups(w.shape, block.core.group)
    block.core.sampled_count(p, w, groups).sum().backward()
    grad_sampled = x.grad.clone()
    x.grad = None
    p, w = products()
    d = block.core.group_currents(p, w, groups)
    sigma = torch.tensor([max(ref.gray_sigma(groups.group_size(g), gray=2.0, atten=0.0625), 1.0) for g in range(3)])
    expected = 8 * 0.5 * (1 + torch.erf(d / (sigma.reshape(1, 1, -1) * math.sqrt(2))))
    expected.sum().backward()
    assert torch.allclose(grad_sampled, x.grad)


@pytest.mark.parametrize("binary", [AQFP, "@binary"])
def test_eval_mode_and_export_agree_with_golden(binary):
    result = train(spec(binary), float_twin=False)
    im = result.intmodel
    b = im.layer("b").payload
    assert set(np.unique(b.weight)) <= {-1, 1} and b.w_bits == 2 and b.requant.qmin == -2 and b.requant.qmax == 1
    if binary == AQFP:
        core = b.core
        assert isinstance(core, ref.AqfpCore) and (core.group, core.taps, core.T, core.seed) == (8, 1, 8, 3)
        assert core.t_max == 64 and core.table_partial.shape == (9,) and b.bias is None
        twin = result.net.blocks["b"].core
        t = twin.norm.threshold()
        assert np.array_equal(core.tau, np.clip(np.ceil(t / 8 * 65536), 0, 3 * 65536 + 1).astype(np.int64))
    else:
        assert isinstance(b.core, ParallelCore)
        assert np.array_equal(b.bias, -np.clip(np.ceil(result.net.blocks["b"].core.norm.threshold()), -21, 21))
    assert result.metrics["golden"]["agreement"] == 1.0
    x = result.data.x_test[:64]
    _, trace = golden(im, quantize_input(im, x), trace=True)
    assert torch.equal(result.net.trace_codes(x)["s2"], trace["s2"])


@pytest.mark.parametrize("text,message", [
    (SPEC.replace("  s2 = sign(b)\n  y = dense(s2,", "  y = dense(b,").format(binary=AQFP),
     "only sign(...) may read it"),
    (SPEC.format(binary="@quant(a=8) @binary"), "@quant(a=...)"),
])
def test_what_a_binary_layer_cannot_be_is_refused_before_training(text, message):
    problems = spec_problems(parse(text))
    assert [stage for stage, _ in problems] == ["export"] and message in problems[0][1].message


def test_a_binary_layer_on_one_bit_inputs_is_refused_by_the_checker():
    """A 1-bit input holds 0/1 codes, not +1/-1: the spec already says so, before any training."""
    text = ("model m {\n  input x: uint1[64]\n  b = dense(x, units=6) @binary @aqfp(group=16, T=4)\n"
            "  s = sign(b)\n  y = dense(s, units=10) @quant(w=8, a=8)\n  output y\n}\ntrain { epochs = 1 }\n")
    with pytest.raises(CdslError, match=r"@binary needs \+1/-1 inputs, but 'x' is not the output of sign"):
        parse(text)
