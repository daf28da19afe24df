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



@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_add_engine_ends_shorter_frames_where_their_inputs_end(stall):
    """A token stream after a selector: frames of fewer words than the stream type's, one after another;
    the output's `last` is the inputs' (not a count of the type's words), under stalls too."""
    import random

    from amaranth.sim import Simulator

    t = QType(8, True, 0.1)
    node = add_node(t, t, t, 12)
    seed = 9
    rng = random.Random(seed)
    lengths = [3, 12, 1, 7]
    frames = [([rng.randint(-128, 127) for _ in range(n)], [rng.randint(-128, 127) for _ in range(n)]) for n in lengths]
    dut = node.component()
    got = []

    async def bench(ctx):
        words = [(a, b, int(j == len(fa) - 1)) for fa, fb in frames for j, (a, b) in enumerate(zip(fa, fb))]
        sent = [0, 0]
        cycle = 0
        while len(got) < len(words):
            assert cycle < 5000, f"timeout (seed={seed})"
            offers = []
            for k, port in enumerate((dut.i0, dut.i1)):
                offer = sent[k] < len(words) and rng.random() >= stall
                ctx.set(port.valid, offer)
                if sent[k] < len(words):
                    ctx.set(port.payload, {"data": words[sent[k]][k], "last": words[sent[k]][2]})
                offers.append(offer)
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            for k, port in enumerate((dut.i0, dut.i1)):
                if offers[k] and ctx.get(port.ready):
                    sent[k] += 1
            if ready and ctx.get(dut.o.valid):
                payload = ctx.get(dut.o.payload)
                got.append((int(payload.data), int(payload.last)))
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = []
    for fa, fb in frames:
        ys = add(np.array(fa), np.array(fb), mult_a=node.mult_a, mult_b=node.mult_b, shift=node.shift, qmin=t.qmin,
                 qmax=t.qmax).tolist()
        want += [(y, int(j == len(ys) - 1)) for j, y in enumerate(ys)]
    assert got == want, f"seed={seed} stall={stall}"
