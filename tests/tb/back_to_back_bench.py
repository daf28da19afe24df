"""cocotb: many inferences back to back into a generated `network` top (Verilog), driven on its stream
ports directly: every input's valid always high (frames one after another, `last` on each frame's
final word), every output's ready always high, no register writes. Writes, per output port, the
words of each frame and the cycle of each frame's last transfer (cycle 0: the first input offered).

The case comes in `$CDSL_B2B` as JSON: {"inputs": {port: {"bits": b, "frames": [[word, ...], ...]}},
"outputs": {port: {"bits": b, "signed": s, "words": n}}, "frames": F}. Ports are the Network's
(`i_<input>`, `o_<output>`; Verilog `__payload` holds data in the low bits and `last` above).
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from cdsl.sim.drivers import write_results


@cocotb.test()
async def back_to_back(dut):
    case = json.loads(os.environ["CDSL_B2B"])
    frames = case["frames"]
    streams = {}
    for port, spec in case["inputs"].items():
        mask = (1 << spec["bits"]) - 1
        streams[port] = [(w & mask) | (int(k == len(f) - 1) << spec["bits"]) for f in spec["frames"]
                         for k, w in enumerate(f)]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    if hasattr(dut, "ctrl__valid"):
        dut.ctrl__valid.value = 0
    for port in streams:
        getattr(dut, f"{port}__valid").value = 0
    for port in case["outputs"]:
        getattr(dut, f"{port}__ready").value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    sent = {port: 0 for port in streams}
    got = {port: [[]] for port in case["outputs"]}
    ends = {port: [] for port in case["outputs"]}
    cycle = 0
    limit = case.get("max_cycles", 2_000_000)
    while any(len(v) < frames for v in ends.values()) and cycle < limit:
        for port, words in streams.items():
            k = sent[port]
            getattr(dut, f"{port}__valid").value = int(k < len(words))
            if k < len(words):
                getattr(dut, f"{port}__payload").value = words[k]
        await ReadOnly()
        for port, words in streams.items():
            if sent[port] < len(words) and int(getattr(dut, f"{port}__ready").value):
                sent[port] += 1
        for port, spec in case["outputs"].items():
            if int(getattr(dut, f"{port}__valid").value):
                payload = int(getattr(dut, f"{port}__payload").value)
                value = payload & ((1 << spec["bits"]) - 1)
                if spec["signed"] and value >> (spec["bits"] - 1):
                    value -= 1 << spec["bits"]
                frame = got[port][-1]
                frame.append(value)
                last = payload >> spec["bits"] & 1
                assert bool(last) == (len(frame) == spec["words"]), f"{port}: last={last} on word {len(frame) - 1}"
                if len(frame) == spec["words"]:
                    ends[port].append(cycle)
                    got[port].append([])
        await RisingEdge(dut.clk)
        cycle += 1
    write_results({"outputs": {p: v[:frames] for p, v in got.items()}, "ends": ends, "cycles": cycle})
