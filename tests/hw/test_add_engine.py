"""AddEngine in amaranth.sim against cdsl.contract.ref.add: random, extreme and saturating pairs, stalls."""

import numpy as np
import pytest

from tb import random_models as M
from tb.pysim import run_graph

from cdsl.contract.intmodel import IntInput, IntModel, QType
from cdsl.contract.ref.add import add
from cdsl.hw.plan import plan_network


def add_node(ta: QType, tb: QType, out: QType, width: int):
    a, b = IntInput("a", (width,), ta), IntInput("b", (width,), tb)
    layer = M.add("s", a, b, out_type=out)
    plan = plan_network(IntModel("join", (a, b), (layer,), ("s",)))
    (node,) = plan.nodes
    return node


@pytest.mark.parametrize("ta,tb,out", [
    (QType(8, False, 0.1), QType(8, False, 0.07), QType(8, False, 0.12)),
    (QType(8, True, 0.05), QType(6, False, 0.2), QType(8, True, 0.3)),
    (QType(4, True, 1.0), QType(4, True, 1.0), QType(4, True, 1.0)),  # saturates often
])
def test_add_engine(ta, tb, out):
    width = 23
    node = add_node(ta, tb, out, width)
    rng = np.random.default_rng(ta.bits * 100 + tb.bits)
    cases = [(np.full(width, ta.qmax), np.full(width, tb.qmax)), (np.full(width, ta.qmin), np.full(width, tb.qmin)),
             (np.zeros(width, np.int64), np.zeros(width, np.int64)),
             (rng.integers(ta.qmin, ta.qmax + 1, width), rng.integers(tb.qmin, tb.qmax + 1, width))]
    for k, (a, b) in enumerate(cases):
        want = add(a, b, mult_a=node.mult_a, mult_b=node.mult_b, shift=node.shift, qmin=out.qmin, qmax=out.qmax)
        for stall in (0.0, 0.4):
            got, cycles = run_graph(node.component(), {"i0": a.tolist(), "i1": b.tolist()}, {"o": width}, seed=k,
                                    in_stall=stall, out_stall=stall)
            assert got["o"] == want.tolist(), f"case {k} stall {stall}"
            if not stall:
                assert cycles == width + node.delay({}), f"case {k}"
