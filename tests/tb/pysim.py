"""Run a component with stream ports in Amaranth's Python simulator (block and small-network tests;
the fast, bulk-loaded Verilator flow is `cdsl.sim`).

    outputs, cycles = run_streams(dut, words, n_out=..., ports={"precision": 4},
                                  seed=1, in_stall=0.3, out_stall=0.3)
    outs, cycles = run_graph(net, {"i_x": words}, {"o_y": 10}, config=[(0, 4)])

`run_streams` drives a component's stream `i` and reads its stream `o`; `run_graph` drives any set
of input stream ports at once and reads any set of output stream ports, after writing `config`
(register writes `(addr, data)`) on `ctrl`. A port whose payload is a frame
(`cdsl.hw.streams.frame_layout`) gets `last` on its final word, and its outputs are checked to end
with `last` exactly on the expected final word. Input valid is dropped on random cycles with
probability `in_stall`, output ready with `out_stall`. `cycles` counts from the first cycle an
input is offered to the cycle of the last output transfer, inclusive.
"""

from __future__ import annotations

import random

from amaranth.lib import data
from amaranth.sim import Simulator

from cdsl.sim.back_to_back import SimTimeout, write_config


def _is_frame(port) -> bool:
    layout = port.payload.shape() if hasattr(port.payload, "shape") else None
    return isinstance(layout, data.StructLayout) and set(layout.members) == {"data", "last"}


def _value(payload):
    return int(payload) if not hasattr(payload, "as_value") else payload


def run_graph(dut, inputs: dict[str, list], outputs: dict[str, int], *, ports: dict | None = None,
              config=(), seed: int = 0, in_stall: float = 0.0, out_stall: float = 0.0,
              max_cycles: int = 400_000, vcd: str | None = None):
    """Drive `inputs` (port -> words) and collect `outputs` (port -> word count); see the module docstring."""
    rng = random.Random(seed)
    got: dict[str, list] = {name: [] for name in outputs}
    state = {"first_in": None, "last_out": None}

    async def testbench(ctx):
        for name, value in (ports or {}).items():
            ctx.set(getattr(dut, name), value)
        await write_config(ctx, dut, config)
        sent = {name: 0 for name in inputs}
        cycle = 0
        while any(len(got[n]) < want for n, want in outputs.items()):
            if cycle >= max_cycles:
                raise SimTimeout(f"no result after {max_cycles} cycles: outputs {({n: len(v) for n, v in got.items()})}"
                                 f" of {outputs}, inputs taken {sent} (seed={seed})")
            offers = {}
            for name, words in inputs.items():
                port = getattr(dut, name)
                k = sent[name]
                offers[name] = k < len(words) and rng.random() >= in_stall
                ctx.set(port.valid, offers[name])
                if k < len(words):
                    word = words[k]
                    ctx.set(port.payload, {"data": word, "last": int(k == len(words) - 1)} if _is_frame(port) else word)
                if offers[name] and state["first_in"] is None:
                    state["first_in"] = cycle
            readies = {name: rng.random() >= out_stall for name in outputs}
            for name, ready in readies.items():
                ctx.set(getattr(dut, name).ready, ready)
            for name, offered in offers.items():
                if offered and ctx.get(getattr(dut, name).ready):
                    sent[name] += 1
            for name, ready in readies.items():
                port = getattr(dut, name)
                if ready and ctx.get(port.valid) and len(got[name]) < outputs[name]:
                    payload = ctx.get(port.payload)
                    if _is_frame(port):
                        final = len(got[name]) == outputs[name] - 1
                        if bool(payload.last) != final:
                            raise AssertionError(f"{name}: last={int(payload.last)} on word {len(got[name])} of "
                                                 f"{outputs[name]} (seed={seed})")
                        got[name].append(_value(payload.data))
                    else:
                        got[name].append(_value(payload))
                    state["last_out"] = cycle
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
    cycles = state["last_out"] - state["first_in"] + 1 if state["first_in"] is not None else 0
    return got, cycles


def run_streams(dut, inputs, *, n_out: int, ports: dict | None = None, seed: int = 0, in_stall: float = 0.0,
                out_stall: float = 0.0, max_cycles: int = 200_000, vcd: str | None = None):
    """A component with one stream in (`i`) and one out (`o`): (outputs, cycles)."""
    got, cycles = run_graph(dut, {"i": list(inputs)}, {"o": n_out}, ports=ports, seed=seed, in_stall=in_stall,
                            out_stall=out_stall, max_cycles=max_cycles, vcd=vcd)
    return got["o"], cycles


__all__ = ["run_graph", "run_streams", "SimTimeout"]
