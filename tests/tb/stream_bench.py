"""cocotb tests: bare `MacStream` driven by the per-clock stream driver/monitor with random stalls.

Environment: `CDSL_SMOKE_K`, `CDSL_SMOKE_WIDTH`, `CDSL_SMOKE_SAMPLES` (see cdsl.sim.selftest_bench).
"""

from __future__ import annotations

import os
import random

import cocotb

from cdsl.sim.selftest import acc_width, mac_stream_ref
from cdsl.sim.drivers import StreamDriver, StreamMonitor, reset, start_clock, tb_seed, to_unsigned, write_results
from cdsl.sim.scoreboard import Scoreboard


async def _run(dut, *, valid_prob: float, ready_prob: float, seed: int) -> tuple[Scoreboard, int]:
    k, width = int(os.environ["CDSL_SMOKE_K"]), int(os.environ["CDSL_SMOKE_WIDTH"])
    count = int(os.environ.get("CDSL_SMOKE_SAMPLES", "50"))
    rng = random.Random(seed)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    pairs = [(hi, hi)] * k + [(lo, lo)] * k + [(lo, hi)] * k
    pairs += [(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(count * k)]
    words = [to_unsigned(a, width) | to_unsigned(b, width) << width for a, b in pairs]
    expected = mac_stream_ref(pairs, k)

    await start_clock(dut)
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await reset(dut)
    drv = StreamDriver(dut, "i", valid_prob=valid_prob, rng=random.Random(seed + 1))
    mon = StreamMonitor(dut, "o", signed=True, ready_prob=ready_prob, rng=random.Random(seed + 2))
    assert mon.width == acc_width(k=k, width=width)
    sender = cocotb.start_soon(drv.send(words, timeout_cycles=50 * len(words) + 100))
    got = await mon.receive(len(expected), timeout_cycles=50 * len(words) + 100)
    cycles = await sender
    sb = Scoreboard(name=f"mac_stream stream valid={valid_prob} ready={ready_prob}", seed=seed)
    for s, (e, a) in enumerate(zip(expected, got)):
        sb.compare([e], [a], sample=s, port="o")
    sb.raise_if_failed()
    return sb, cycles


@cocotb.test()
async def stream_backpressure(dut):
    """Random valid and ready stalls on both sides."""
    sb, cycles = await _run(dut, valid_prob=0.6, ready_prob=0.5, seed=tb_seed())
    write_results({"samples": sb.samples, "send_cycles": cycles, "seed": tb_seed()})


@cocotb.test()
async def stream_full_rate(dut):
    """No stalls: k + 1 cycles per group (one stall cycle while the output register is full)."""
    k = int(os.environ["CDSL_SMOKE_K"])
    sb, cycles = await _run(dut, valid_prob=1.0, ready_prob=1.0, seed=tb_seed() + 7)
    assert cycles <= sb.samples * (k + 1) + 2, f"{cycles!r} cycles for {sb.samples!r} groups of {k!r}"
