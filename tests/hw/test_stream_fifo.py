"""StreamFifo, the join buffers of a network: words offered one per cycle are all taken (the cycle model
counts a FIFO as LATENCY cycles, never a stall), in order, for every depth."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from cdsl.hw.stream_fifo import LATENCY, StreamFifo
from cdsl.hw.streams import frame_signature


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_takes_a_word_per_cycle_up_to_its_depth(depth):
    """A depth-2 FIFO refused the second of two back-to-back words for a cycle, so a width-1 encoder's
    proj and fc2 (two 1-word tokens into a residual add's FIFO of 2) ran one cycle later each than the
    model: `cdsl verify` found every sample 2 cycles slow."""
    fifo = StreamFifo(signature=frame_signature(8, True), depth=depth)
    ready, out = [], []

    async def bench(ctx):
        ctx.set(fifo.o.ready, 0)
        for k in range(depth):  # the consumer is idle: the words must still all fit, one per cycle
            ctx.set(fifo.i.valid, 1)
            ctx.set(fifo.i.payload, {"data": 10 + k, "last": int(k == depth - 1)})
            ready.append(ctx.get(fifo.i.ready))
            await ctx.tick()
        ctx.set(fifo.i.valid, 0)
        for _ in range(LATENCY):
            await ctx.tick()
        ctx.set(fifo.o.ready, 1)
        for _ in range(depth):
            assert ctx.get(fifo.o.valid)
            out.append(int(ctx.get(fifo.o.payload).data))
            await ctx.tick()

    sim = Simulator(fifo)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert ready == [1] * depth and out == [10 + k for k in range(depth)], (ready, out)
