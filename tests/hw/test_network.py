"""Network (whole IntModels) in amaranth.sim against the golden model, and the cycle model."""

from dataclasses import dataclass

import pytest

from tb.network_check import check_network
from tb.random_models import random_convnet, random_mlp

from cdsl.contract import codec
from cdsl.contract.intmodel import Payload
from cdsl.hw.network import Network
from cdsl.hw.plan import network_cycles, plan_network


@pytest.mark.parametrize("seed", [1, 2])
def test_mlp_bit_parallel(seed):
    check_network(random_mlp([16, 8, 4], seed=seed), seed=seed, default_lanes=4, backpressure=True)


def test_mlp_bitserial_every_precision():
    seed = 11
    im = random_mlp([16, 8, 4], seed=seed, w_bits=[8, 4], bitserial_lanes=[4, 2], sparsity=0.3)
    for p1 in range(0, 9):
        p2 = min(p1, 4)
        check_network(im, seed=seed + p1, samples=1, settings={"fc1": {"precision": p1}, "fc2": {"precision": p2}},
                      backpressure=p1 == 5)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_convnet(pool):
    seed = 21 if pool == "max" else 22
    im = random_convnet(seed=seed, pool=pool)
    plan = check_network(im, seed=seed, default_lanes=2, backpressure=True)
    # r1 is fused (unsigned input), r2 is a real ReLU (signed input), flatten is free
    assert [n.name for n in plan.nodes] == ["c1", "p1", "c2", "r2", "fc"]
    assert [n.inputs for n in plan.nodes] == [("x",), ("c1",), ("p1",), ("c2",), ("r2",)]


def test_convnet_bitserial_conv():
    im = random_convnet(seed=31, conv_bitserial_lanes=1)
    check_network(im, seed=31, samples=1, settings={"c1": {"precision": 5}})


def test_folding_meets_target():
    im = random_mlp([64, 64, 32, 10], seed=3)
    loose = plan_network(im, target_cycles=10**6)
    assert [n.lanes for n in loose.nodes] == [1, 1, 1]
    tight = plan_network(im, target_cycles=700)
    assert network_cycles(tight) <= 700
    assert network_cycles(plan_network(im, default_lanes=1)) > 700
    impossible = plan_network(im, target_cycles=10)
    assert [n.lanes for n in impossible.nodes] == [64, 64, 32]  # every layer at its maximum


@codec.serializable("test_no_engine")
@dataclass(frozen=True, eq=False)
class NoEnginePayload(Payload):
    """A kind with a golden step but no hardware planner (every real kind has one)."""

    def run(self, layer, inputs, settings):
        return inputs[0]


def test_a_kind_without_engine_is_refused():
    from cdsl.contract.intmodel import IntLayer, IntModel
    from cdsl.hw.registry import UnsupportedModel

    im = random_mlp([16, 8, 4], seed=1)
    last = im.layers[-1]
    odd = IntLayer("s", (last.name,), (last.out_shape,), (last.out_type,), last.out_shape, last.out_type,
                   NoEnginePayload())
    bad = IntModel(im.name, im.inputs, (*im.layers, odd), ("s",))
    with pytest.raises(UnsupportedModel, match="layer 's': test_no_engine has no hardware engine yet"):
        plan_network(bad)


# ---------------------------------------------------------------- graphs: forks, joins, several inputs and outputs


def test_residual_join_with_fifos():
    from tb.random_models import random_residual

    im = random_residual(seed=51)
    plan = check_network(im, seed=51, samples=3, default_lanes=4, backpressure=True)
    join = plan.node("s")
    assert join.inputs == ("fc2", "fc1")  # both ReLUs are fused: the join reads the engines' streams
    # the skip input (fc1) holds three inferences: fc2, which feeds only the other input, holds two
    assert [(b.node, b.index, b.depth) for b in plan.buffers] == [("s", 0, 12), ("s", 1, 36)]


def test_residual_with_a_bitserial_branch_every_precision():
    from tb.random_models import random_residual

    im = random_residual(seed=52, lanes=3)
    for p in (0, 2, 5, 8):
        check_network(im, seed=52 + p, samples=1, settings={"fc2": {"precision": p}}, default_lanes=2)


def test_two_outputs_from_a_fork():
    from tb.random_models import random_two_heads

    im = random_two_heads(seed=53)
    plan = check_network(im, seed=53, samples=2, settings={"yb": {"precision": 3}}, default_lanes=2,
                         backpressure=True)
    assert [o.stream for o in plan.outputs] == ["ya", "yb"] and not plan.buffers


def test_two_inputs_joined_and_forked():
    from tb.random_models import random_two_inputs

    im = random_two_inputs(seed=54)
    plan = check_network(im, seed=54, samples=2, default_lanes=2, backpressure=True)
    assert plan.node("s").inputs == ("fa", "xb") and plan.node("yb").inputs == ("xb",)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # the aborted elaboration's engines
def test_a_width_mismatch_between_engines_is_an_elaboration_error():
    """wiring.connect refuses a stream whose payload shape differs from what its reader expects."""
    import dataclasses
    import gc

    from amaranth.back import rtlil

    from tb.random_models import random_residual

    plan = plan_network(random_residual(seed=55))
    fc2 = plan.node("fc2")
    narrow = dataclasses.replace(fc2, in_types=(dataclasses.replace(fc2.in_types[0], bits=7),))
    bad = dataclasses.replace(plan, nodes=tuple(narrow if n.name == "fc2" else n for n in plan.nodes))
    with pytest.raises(Exception, match="(?i)shape|signature|mismatch"):
        rtlil.convert(Network(plan=bad))
    gc.collect()  # the aborted elaboration's engines warn when collected: here, under this test's filter
