"""Run a component with stream ports `i` and `o` in Amaranth's Python simulator.

For block and small-network tests (the fast, bulk-loaded Verilator flow is `cdsl.sim`).

    outputs, cycles = run_streams(dut, words, n_out=..., ports={"precision": 4},
                                  seed=1, in_stall=0.3, out_stall=0.3)

Words are offered on `i` in order (valid dropped on random cycles with probability `in_stall`),
`o.ready` is dropped with probability `out_stall`. `cycles` counts from the first cycle
an input is offered (valid high) to the cycle of the last output transfer, inclusive.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator


class SimTimeout(RuntimeError):
    pass


def run_streams(dut, inputs, *, n_out: int, ports: dict | None = None, seed: int = 0, in_stall: float = 0.0,
                out_stall: float = 0.0, max_cycles: int = 200_000, vcd: str | None = None):
    inputs = list(inputs)
    rng = random.Random(seed)
    result: dict = {"outputs": [], "first_in": None, "last_out": None}

    async def testbench(ctx):
        for name, value in (ports or {}).items():
            ctx.set(getattr(dut, name), value)
        idx = 0
        outs = result["outputs"]
        cycle = 0
        while len(outs) < n_out:
            if cycle >= max_cycles:
                raise SimTimeout(f"no result after {max_cycles} cycles: {len(outs)}/{n_out} outputs, "
                                 f"{idx}/{len(inputs)} inputs taken (seed={seed})")
            offer = idx < len(inputs) and rng.random() >= in_stall
            ready = rng.random() >= out_stall
            ctx.set(dut.i.valid, offer)
            if idx < len(inputs):
                ctx.set(dut.i.payload, inputs[idx])
            ctx.set(dut.o.ready, ready)
            if offer and result["first_in"] is None:
                result["first_in"] = cycle
            if offer and ctx.get(dut.i.ready):
                idx += 1
            if ready and ctx.get(dut.o.valid):
                outs.append(_as_int(ctx.get(dut.o.payload)))
                result["last_out"] = cycle
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    cycles = result["last_out"] - result["first_in"] + 1 if result["first_in"] is not None else 0
    return result["outputs"], cycles


def _as_int(value):
    return int(value) if not hasattr(value, "as_value") else value
