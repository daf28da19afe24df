"""Back to back in amaranth.sim: many inferences streamed into the network top (input valid always
high, output ready always high). Every output frame equals the golden model's, the first one ends
at the single-inference cycle model, and every interval between output frames equals the modelled
initiation interval (`cdsl.hw.plan.initiation_interval`)."""

import numpy as np
import pytest
import torch

from tb.back_to_back import run_back_to_back
from tb.cim_cases import cim_net
from tb.network_check import config_words
from tb.random_models import (U8, S8, add, flatten, maxpool, random_bnn, random_conv, random_convnet, random_dense,
                              random_mlp, random_residual, relu)

from cdsl.contract.golden import golden
from cdsl.contract.intmodel import IntInput, IntModel, QType
from cdsl.hw.network import Network, input_port, output_port
from cdsl.hw.plan import initiation_interval, network_cycles, plan_network


def digits_mlp(seed: int) -> IntModel:
    """The shape and mapping of examples/mlp.cdsl: 64 -> 64 (bit-serial, 8 lanes) -> 32 (4-bit, 2:4) -> 10."""
    return random_mlp([64, 64, 32, 10], seed=seed, w_bits=[8, 4, 8], bitserial_lanes=[8, None, None],
                      sparsity=0.3)


def pooled_join_cnn(seed: int) -> IntModel:
    """x [1,6,6] -> c1 3x3 pad 1 [4,6,6] -> relu -> maxpool 2 [4,3,3] -> c2 3x3 pad 1 -> relu
    -> s = add(r2, p1) (a join around c2) -> flatten -> fc [5]."""
    rng = np.random.default_rng(seed)
    c1 = random_conv(rng, "c1", "x", (1, 6, 6), 4, 3, in_type=U8, out_type=U8, padding=1)
    r1 = relu("r1", "c1", c1.out_shape, U8)
    p1 = maxpool("p1", "r1", c1.out_shape, U8, kernel=2)
    c2 = random_conv(rng, "c2", "p1", p1.out_shape, 4, 3, in_type=U8, out_type=QType(8, False, 0.05), padding=1,
                     w_bits=4)
    r2 = relu("r2", "c2", c2.out_shape, c2.out_type)
    s = add("s", r2, p1, out_type=QType(8, False, 0.1))
    f = flatten("f", "s", s.out_shape, s.out_type)
    fc = random_dense(rng, "fc", "f", f.out_shape[0], 5, in_type=s.out_type, out_type=S8)
    return IntModel("pooled_join", (IntInput("x", (1, 6, 6), U8),), (c1, r1, p1, c2, r2, s, f, fc), ("fc",))


def check_back_to_back(intmodel, *, seed, frames=5, settings=None, **plan_kwargs):
    plan = plan_network(intmodel, **plan_kwargs)
    rng = np.random.default_rng(seed)
    xs = {}
    for inp in intmodel.inputs:
        x = rng.integers(inp.qtype.qmin, inp.qtype.qmax + 1, size=(frames, *inp.shape))
        x[1] = inp.qtype.qmax
        x[2] = inp.qtype.qmin
        xs[inp.name] = x
    want = golden(intmodel, {k: torch.tensor(v) for k, v in xs.items()}, settings=settings)
    want = want if isinstance(want, dict) else {intmodel.outputs[0]: want}
    got, ends = run_back_to_back(
        Network(plan=plan), {input_port(k): [v[s].reshape(-1).tolist() for s in range(frames)] for k, v in xs.items()},
        {output_port(o): int(np.prod(intmodel.shape_of(o))) for o in intmodel.outputs},
        config=config_words(plan, settings or {}))
    ii, _ = initiation_interval(plan, settings=settings)
    for o in intmodel.outputs:
        port = output_port(o)
        for s in range(frames):
            assert got[port][s] == want[o][s].reshape(-1).tolist(), f"seed={seed} frame={s} output={o}"
        assert ends[port][0] + 1 == network_cycles(plan, settings=settings), f"seed={seed}"
        assert list(np.diff(ends[port])) == [ii] * (frames - 1), f"seed={seed}: measured {np.diff(ends[port])}, II {ii}"
    return plan, ii


def test_digits_mlp_shape_back_to_back():
    plan, ii = check_back_to_back(digits_mlp(7), seed=7, frames=4)
    slowest = max(n.delay(plan.node_settings(None)[n.name]) for n in plan.nodes)
    assert ii <= slowest  # the acceptance figure: II within 2% of the slowest engine's cycles (here at or below)


def test_bitserial_precision_exposes_the_restart():
    im = random_mlp([16, 8, 4], seed=12, bitserial_lanes=[16, 2])
    for p in (1, 3):  # one plane per step: the generator's restart shows; three: it is hidden
        check_back_to_back(im, seed=12 + p, settings={"fc1": {"precision": p}, "fc2": {"precision": p}})


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_convnet_back_to_back(pool):
    check_back_to_back(random_convnet(seed=23, pool=pool), seed=23, default_lanes=2)


def test_cnn_with_pool_and_join_back_to_back():
    plan, _ = check_back_to_back(pooled_join_cnn(5), seed=5, default_lanes=2)
    assert [b.depth for b in plan.buffers] == [36, 36 * 3]  # the skip input waits for c2's two frames


def test_residual_back_to_back():
    check_back_to_back(random_residual(seed=6), seed=6)
    check_back_to_back(random_residual(seed=6, lanes=3), seed=6, settings={"fc2": {"precision": 2}})


def test_cim_net_back_to_back():
    check_back_to_back(cim_net(seed=3), seed=3)


def test_aqfp_bnn_back_to_back():
    check_back_to_back(random_bnn(seed=4), seed=4)
    check_back_to_back(random_bnn(seed=4, T=1), seed=4)
