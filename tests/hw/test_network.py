"""Network (whole IntModels) in amaranth.sim against cdsl.contract.golden.golden, and the cycle model."""

import dataclasses

import numpy as np
import pytest
import torch

from cdsl.dsl import ir
from cdsl.hw.network import Network, precision_port
from cdsl.hw.plan import EngineKind, network_cycles, plan_network
from tb.pysim import run_streams
from cdsl.contract.ref.bitserial_mac import truncate
from tb.random_models import random_convnet, random_mlp
from cdsl.contract.golden import golden
from cdsl.contract.intmodel import IntModel


def truncated(intmodel: IntModel, precisions: dict[str, int]) -> IntModel:
    """The IntModel whose weights are truncated to each bit-serial layer's runtime precision."""
    layers = []
    for lay in intmodel.layers:
        p = precisions.get(lay.name, 0)
        if p and lay.annotations.bitserial is not None:
            lay = dataclasses.replace(lay, weight=truncate(lay.weight, lay.w_bits, p))
        layers.append(lay)
    return dataclasses.replace(intmodel, layers=tuple(layers))


def check_network(intmodel, *, seed, samples=2, precisions=None, backpressure=False, **plan_kwargs):
    net = Network(plan=plan_network(intmodel, **plan_kwargs))
    rng = np.random.default_rng(seed)
    inp = intmodel.inputs[0]
    xs = rng.integers(inp.qtype.qmin, inp.qtype.qmax + 1, size=(samples, *inp.shape))
    xs[0] = inp.qtype.qmax  # all max
    want = golden(truncated(intmodel, precisions or {}), torch.tensor(xs)).reshape(samples, -1).tolist()
    ports = {precision_port(k): v for k, v in (precisions or {}).items()}
    for s in range(samples):
        got, cycles = run_streams(net, xs[s].reshape(-1).tolist(), n_out=len(want[s]), ports=ports)
        assert got == want[s], f"seed={seed} sample={s} precisions={precisions}"
        assert cycles == network_cycles(net.plan, precisions=precisions), f"seed={seed}"
    if backpressure:
        got, _ = run_streams(net, xs[-1].reshape(-1).tolist(), n_out=len(want[-1]), ports=ports, seed=seed,
                             in_stall=0.3, out_stall=0.4)
        assert got == want[-1], f"seed={seed} precisions={precisions} (backpressure)"
    return net


@pytest.mark.parametrize("seed", [1, 2])
def test_mlp_bit_parallel(seed):
    check_network(random_mlp([16, 8, 4], seed=seed), seed=seed, default_lanes=4, backpressure=True)


def test_mlp_bitserial_every_precision():
    seed = 11
    im = random_mlp([16, 8, 4], seed=seed, w_bits=[8, 4], bitserial_lanes=[4, 2], sparsity=0.3)
    for p1 in range(0, 9):
        p2 = min(p1, 4)
        check_network(im, seed=seed + p1, samples=1, precisions={"fc1": p1, "fc2": p2}, backpressure=p1 == 5)


@pytest.mark.parametrize("pool", [ir.PoolKind.MAX, ir.PoolKind.AVG])
def test_convnet(pool):
    seed = 21 if pool is ir.PoolKind.MAX else 22
    im = random_convnet(seed=seed, pool=pool)
    net = check_network(im, seed=seed, default_lanes=2, backpressure=True)
    kinds = [e.kind for e in net.plan.engines]
    # r1 is fused (unsigned input), r2 is a real ReLU (signed input), flatten is free
    assert kinds == [EngineKind.CONV, EngineKind.MAXPOOL if pool is ir.PoolKind.MAX else EngineKind.AVGPOOL,
                     EngineKind.CONV, EngineKind.RELU, EngineKind.DENSE]


def test_convnet_bitserial_conv():
    im = random_convnet(seed=31, conv_bitserial_lanes=1)
    check_network(im, seed=31, samples=1, precisions={"c1": 5})


def test_folding_meets_target():
    im = random_mlp([64, 64, 32, 10], seed=3)
    loose = plan_network(im, target_cycles=10**6)
    assert [e.lanes for e in loose.engines] == [1, 1, 1]
    tight = plan_network(im, target_cycles=700)
    assert network_cycles(tight) <= 700
    assert network_cycles(plan_network(im, default_lanes=1)) > 700
    impossible = plan_network(im, target_cycles=10)
    assert [e.lanes for e in impossible.engines] == [64, 64, 32]  # every layer at its maximum


def test_unsupported_annotations_are_refused():
    im = random_mlp([16, 8, 4], seed=1)
    fc1 = im.layers[0]
    cim = dataclasses.replace(fc1, annotations=ir.Annotations(quant=ir.Quant(w=8, a=8), cim=ir.Cim(rows=16, cols=8)))
    bad = dataclasses.replace(im, layers=(cim, *im.layers[1:]))
    from cdsl.hw.plan import UnsupportedModel

    with pytest.raises(UnsupportedModel, match="@cim"):
        plan_network(bad)
