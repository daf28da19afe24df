"""Binary networks (a fixed-point layer, sign, a binary layer, sign, a fixed-point classifier) in
amaranth.sim against the golden model: the AQFP accumulator at several runtime T (0 = noise-free) and
seeds, dense and conv (zero padding, 2x2 kernel positions, a partial group of 1, one group per step),
and a deterministic binary layer on the bit-parallel MAC; cycles equal the plan's."""

import pytest

from tb.network_check import check_network
from tb.random_models import random_bnn

from cdsl.hw.plan import plan_network


@pytest.mark.parametrize("settings", [{}, {"T": 0}, {"T": 1}, {"T": 3, "seed": 77}])
def test_dense_aqfp_network(settings):
    im = random_bnn(seed=31, group=4)  # 10 inputs: groups of 4, 4 and a partial 2
    check_network(im, seed=31, samples=2, settings={"b": settings} if settings else None, default_lanes=4,
                  backpressure=settings == {"T": 3, "seed": 77})


def test_conv_aqfp_network_one_group_per_step():
    im = random_bnn(seed=32, conv=True, group=2, T=2)  # 3 channels: a group of 2 and a partial 1, 4 taps
    plan = check_network(im, seed=32, samples=1, default_lanes=2, lanes={"b": 1})
    b = plan.node("b")
    assert b.lanes == 2 and b.steps == 2 * 4  # one group of 2 lanes per step: 2 channel blocks x 4 taps
    assert [n.name for n in plan.nodes] == ["c1", "s1", "b", "s2", "y"]


def test_deterministic_binary_network():
    im = random_bnn(seed=33, group=None)
    plan = check_network(im, seed=33, samples=2, default_lanes=4)
    assert plan.node("b").unit.describe() == "bit-parallel MAC"


def test_aqfp_lanes_default_to_the_whole_crossbar():
    plan = plan_network(random_bnn(seed=34, group=4))
    b = plan.node("b")
    assert b.lanes == 10 and b.lanes_fixed and b.steps == 1
    assert plan.node("b").settings()[0].name == "T" and [r.setting.name for r in plan.registers] == ["T", "seed"]
