"""Back to back in amaranth.sim: many inferences streamed into the network top (input valid always
high, output ready always high). Every output frame equals the golden model's, the first one ends
at the single-inference cycle model, and every interval between output frames equals the modelled
initiation interval (`cdsl.hw.plan.initiation_interval`)."""

import numpy as np
import pytest
import torch

from tb.cim_cases import cim_net
from tb.network_check import check_network, config_words
from tb.random_models import (digits_mlp, pooled_join_cnn, random_bnn, random_convnet, random_mlp, random_residual,
                              random_two_heads, random_two_inputs)

from cdsl.contract.golden import golden
from cdsl.hw.network import Network, input_port, output_port
from cdsl.hw.plan import fold_report, initiation_interval, network_cycles, output_cycles, plan_network
from cdsl.sim.back_to_back import run_back_to_back


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
        assert ends[port][0] + 1 == output_cycles(plan, settings=settings)[o], f"seed={seed}"
    # an inference ends with its last output word (an output off the bottleneck's path may run ahead)
    done = np.max([ends[output_port(o)] for o in intmodel.outputs], axis=0)
    assert list(np.diff(done)) == [ii] * (frames - 1), f"seed={seed}: measured {np.diff(done)}, II {ii}"
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
    check_back_to_back(random_two_inputs(seed=6), seed=6)  # an input joined with an engine's output
    check_back_to_back(random_two_heads(seed=6), seed=6)  # a fork into two outputs
    check_back_to_back(random_residual(seed=6), seed=6)
    check_back_to_back(random_residual(seed=6, lanes=3), seed=6, settings={"fc2": {"precision": 2}})


def test_cim_net_back_to_back():
    check_back_to_back(cim_net(seed=3), seed=3)


def test_aqfp_bnn_back_to_back():
    check_back_to_back(random_bnn(seed=4), seed=4)
    check_back_to_back(random_bnn(seed=4, T=1), seed=4)


# ---------------------------------------------------------------- folding in two dimensions (lanes x PE)


@pytest.mark.parametrize("options, folding", [
    ({}, [(8, 8), (5, 1), (1, 1)]),  # the bit-serial layer (lanes fixed by the spec) at PE 8
    ({"lanes": {"fc2": 2, "fc3": 1}}, [(8, 8), (2, 4), (1, 1)]),  # and, its lanes fixed too, a bit-parallel one
])
def test_pe_folding_single_and_back_to_back(options, folding):
    im = digits_mlp(9)
    plan = plan_network(im, target_ii=512, **options)
    assert [(n.lanes, n.pe) for n in plan.nodes] == folding
    check_network(im, seed=9, samples=2, backpressure=True, target_ii=512, **options)
    check_back_to_back(im, seed=9, frames=4, target_ii=512, **options)


def test_target_ii_out_of_reach_balances_against_the_reached_ii():
    im = digits_mlp(9)
    assert ([(n.lanes, n.pe) for n in plan_network(im, target_ii=64).nodes]
            == [(n.lanes, n.pe) for n in plan_network(im, target_ii=512).nodes])


@pytest.mark.parametrize("bitserial", [False, True])
def test_pe_on_convs_reorders_through_the_output_buffer(bitserial):
    """A conv with several output pixels at PE 4: the rows' sums go through the double-buffered output
    buffer and leave in (C, H, W) order; pooling and a join downstream (pooled_join_cnn) or not."""
    im = random_convnet(seed=31, conv_bitserial_lanes=1) if bitserial else pooled_join_cnn(5)
    plan = plan_network(im, target_ii=300)
    c1 = plan.node("c1")
    assert (c1.lanes, c1.pe) == (1, 4) and c1.pixels == 36
    settings = {"c1": {"precision": 3}} if bitserial else None
    check_network(im, seed=31, samples=2, backpressure=True, settings=settings, target_ii=300)
    check_back_to_back(im, seed=31, frames=4, settings=settings, target_ii=300)


def test_pe_bitserial_every_precision():
    im = random_mlp([16, 16, 8], seed=13, w_bits=[8, 4], bitserial_lanes=[4, 2], sparsity=0.3)
    plan = plan_network(im, target_ii=130)
    assert [n.pe for n in plan.nodes] == [4, 2]
    for p1 in (0, 1, 3, 8):
        settings = {"fc1": {"precision": p1}, "fc2": {"precision": min(p1, 4)}}
        check_network(im, seed=13 + p1, samples=1, settings=settings, backpressure=p1 == 3, target_ii=130)
        check_back_to_back(im, seed=13 + p1, frames=3, settings=settings, target_ii=130)


def test_target_ii_reached_or_explained():
    im = digits_mlp(9)
    for target in (4000, 1024, 600, 512):
        plan = plan_network(im, target_ii=target)
        assert initiation_interval(plan)[0] <= target
        assert fold_report(plan, target_ii=target)[0].startswith(f"--target-ii {target}: reached")
    plan = plan_network(im, target_ii=300)
    assert initiation_interval(plan) == (512, "fc1")
    assert fold_report(plan, target_ii=300) == [
        "--target-ii 300 is out of reach: II 512, set by fc1 (lanes 8 fixed by the spec; "
        "PE 8: PE 16 exceeds its 8 steps per output (the shared requantization takes one per cycle))"]


def test_pe_is_refused_where_it_does_not_fit():
    conv = plan_network(random_convnet(seed=23), target_ii=10).node("c1")
    assert conv.pe == 4 and "does not divide its 4 output channels" in conv.pe_problem(3)
    cim = plan_network(cim_net(seed=3), target_ii=10).node("fc")
    assert cim.pe == 1 and "CIM" in cim.pe_problem(5)
    aqfp = plan_network(random_bnn(seed=4), target_ii=10).node("b")
    assert aqfp.pe == 1 and "one unit per engine" in aqfp.pe_problem(2)


def test_latency_folding_reaches_its_bound_and_keeps_the_ii():
    im = pooled_join_cnn(5)
    plan = plan_network(im, target_cycles=1)
    values = plan.node_settings(None)
    for n in plan.nodes:  # out of reach: every foldable engine at its smallest delay
        if hasattr(n, "foldings"):
            assert n.delay(values[n.name]) == min(n.with_folding(la, pe).delay(values[n.name]) for la, pe in n.foldings())
    assert fold_report(plan, target_cycles=1)[0].startswith("--target-cycles 1 is out of reach")
    both = plan_network(im, target_ii=400, target_cycles=900)
    assert initiation_interval(both)[0] <= 400 and network_cycles(both) <= 900
    check_back_to_back(im, seed=8, frames=3, target_ii=400, target_cycles=900)
