"""Stream many inferences back to back through a network (`cdsl.hw.network.Network`) in Amaranth's
simulator: every input's valid always high (frames one after another, `last` on each frame's final
word), every output's ready always high. Returns the outputs frame by frame and the cycle of each
output frame's last transfer (cycle 0: the first input offered), from which the measured initiation
interval (II) follows. For the throughput tests and `benchmarks/throughput.py`; a Python testbench
(one wake-up per cycle), so meant for small networks and a few thousand cycles per inference.

    frames, ends = run_back_to_back(net, {"i_x": [frame0, frame1, ...]}, {"o_y": 10})
"""

from __future__ import annotations

from amaranth.sim import Simulator


class SimTimeout(RuntimeError):
    pass


async def write_config(ctx, dut, config) -> None:
    """Amaranth testbench: the register writes `config` ((addr, data) pairs) on `dut.ctrl`, one per
    cycle, before anything else is driven."""
    for addr, value in config:
        ctx.set(dut.ctrl.valid, 1)
        ctx.set(dut.ctrl.payload, {"addr": addr, "data": value})
        await ctx.tick()
    if config:
        ctx.set(dut.ctrl.valid, 0)


def run_back_to_back(dut, inputs: dict[str, list[list[int]]], outputs: dict[str, int], *, config=(),
                     max_cycles: int = 2_000_000):
    count = len(next(iter(inputs.values())))
    streams = {name: [(w, int(k == len(f) - 1)) for f in frames for k, w in enumerate(f)]
               for name, frames in inputs.items()}
    got: dict[str, list[list[int]]] = {name: [[]] for name in outputs}
    ends: dict[str, list[int]] = {name: [] for name in outputs}

    async def testbench(ctx):
        await write_config(ctx, dut, config)
        sent = {name: 0 for name in streams}
        for name in outputs:
            ctx.set(getattr(dut, name).ready, 1)
        cycle = 0
        while any(len(v) < count for v in ends.values()):
            if cycle >= max_cycles:
                raise SimTimeout(f"after {max_cycles} cycles: frames out {({n: len(v) for n, v in ends.items()})}")
            for name, words in streams.items():
                port = getattr(dut, name)
                k = sent[name]
                ctx.set(port.valid, k < len(words))
                if k < len(words):
                    ctx.set(port.payload, {"data": words[k][0], "last": words[k][1]})
            for name, words in streams.items():
                if sent[name] < len(words) and ctx.get(getattr(dut, name).ready):
                    sent[name] += 1
            for name, n in outputs.items():
                port = getattr(dut, name)
                if ctx.get(port.valid):
                    payload = ctx.get(port.payload)
                    frame = got[name][-1]
                    frame.append(int(payload.data))
                    if bool(payload.last) != (len(frame) == n):
                        raise AssertionError(f"{name}: last={int(payload.last)} on word {len(frame) - 1} of {n}")
                    if len(frame) == n:
                        ends[name].append(cycle)
                        got[name].append([])
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return {name: frames[:count] for name, frames in got.items()}, ends
