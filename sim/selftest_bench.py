"""cocotb tests of the self-test: `MacStream` inside the `Harness`, bulk-loaded (`cdsl doctor --smoke`,
tests/sim/test_smoke.py).

Environment: `CDSL_HARNESS` (the harness manifest), `CDSL_SMOKE_K` (words per dot product),
`CDSL_SMOKE_WIDTH` (operand bits), `CDSL_SMOKE_SAMPLES` (random samples). Writes to
`CDSL_RESULTS`: per-test cycle counts and the simulated cycles per second.
"""

from __future__ import annotations

import os
import random
import time

import cocotb

from cdsl.sim.selftest import mac_stream_ref
from cdsl.sim.drivers import HarnessDriver, tb_seed, to_unsigned, write_results
from cdsl.sim.scoreboard import Scoreboard

_results: dict = {}


def _params() -> tuple[int, int, int]:
    return int(os.environ["CDSL_SMOKE_K"]), int(os.environ["CDSL_SMOKE_WIDTH"]), int(os.environ.get("CDSL_SMOKE_SAMPLES", "50"))


def _pack(pairs: list[tuple[int, int]], width: int) -> list[int]:
    # StructLayout {a, b}: a in the low `width` bits, b above it.
    return [to_unsigned(a, width) | to_unsigned(b, width) << width for a, b in pairs]


def _samples(rng: random.Random, *, k: int, width: int, count: int) -> list[list[tuple[int, int]]]:
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    corners = [
        [(hi, hi)] * k,                                   # all max
        [(lo, lo)] * k,                                   # all min: largest positive products
        [(lo, hi)] * k,                                   # most negative sum
        [(0, 0)] * k,                                     # zeros
        [((hi if j % 2 else lo), (lo if j % 3 else hi)) for j in range(k)],   # alternating signs
        [(1, -1)] * k,
    ]
    randoms = [[(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(k)] for _ in range(count)]
    return corners + randoms


def _save(name: str, data: dict) -> None:
    _results[name] = data
    write_results(_results)


@cocotb.test()
async def harness_one_sample_per_run(dut):
    """Random and corner samples, one per run: exact values and cycles == k + 1 each."""
    k, width, count = _params()
    seed = tb_seed()
    rng = random.Random(seed)
    # A run of this design takes k + 1 cycles: anything past 100k is a hang (e.g. a wrong k).
    drv = HarnessDriver.from_env(dut, max_cycles=100_000)
    await drv.reset()
    samples = _samples(rng, k=k, width=width, count=count)
    wall = time.perf_counter()
    batch = await drv.run_samples([_pack(s, width) for s in samples], n_out=1)
    wall = time.perf_counter() - wall
    sb = Scoreboard(name="mac_stream harness", seed=seed)
    for s, (pairs, got) in enumerate(zip(samples, batch.outputs)):
        sb.compare(mac_stream_ref(pairs, k), got, sample=s, port="o")
    sb.raise_if_failed()
    assert set(batch.cycles) == {k + 1}, (
        f"cycles per sample {sorted(set(batch.cycles))!r}, expected {k + 1!r} (seed {seed})")
    _save("one_per_run", {"samples": len(samples), "cycles": batch.cycles, "wall_s": wall,
                          "cycles_per_s": batch.total_cycles / wall, "seed": seed})


@cocotb.test()
async def harness_many_samples_per_run(dut):
    """Four samples per run (k + 1 cycles each, the output register stalls input one cycle)."""
    k, width, count = _params()
    seed = tb_seed() + 1
    rng = random.Random(seed)
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    every = _samples(rng, k=k, width=width, count=count)
    samples = every[:len(every) // 4 * 4]
    batch = await drv.run_samples([_pack(s, width) for s in samples], n_out=1, samples_per_run=4)
    sb = Scoreboard(name="mac_stream harness x4", seed=seed)
    for s, (pairs, got) in enumerate(zip(samples, batch.outputs)):
        sb.compare(mac_stream_ref(pairs, k), got, sample=s, port="o")
    sb.raise_if_failed()
    assert len(batch.cycles) == len(samples) // 4 and set(batch.cycles) == {4 * (k + 1)}, (
        f"cycles per run of 4 {sorted(set(batch.cycles))!r}, expected {4 * (k + 1)!r} (seed {seed})")
    _save("four_per_run", {"samples": len(samples), "cycles": batch.cycles, "seed": seed})


@cocotb.test()
async def harness_throttled(dut):
    """LFSR back-pressure inside the harness: same values, more cycles; seed 0 turns it off."""
    k, width, count = _params()
    seed = tb_seed() + 2
    rng = random.Random(seed)
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    samples = _samples(rng, k=k, width=width, count=count)
    words = [_pack(s, width) for s in samples]
    throttled = await drv.run_samples(words, n_out=1, seed=1 + seed % 60000)
    clean = await drv.run_samples(words, n_out=1, seed=0)
    sb = Scoreboard(name="mac_stream harness throttled", seed=seed)
    for s, (pairs, got) in enumerate(zip(samples, throttled.outputs)):
        sb.compare(mac_stream_ref(pairs, k), got, sample=s, port="o")
    sb.raise_if_failed()
    assert set(clean.cycles) == {k + 1}, f"unthrottled cycles {sorted(set(clean.cycles))!r} (seed {seed})"
    assert throttled.total_cycles > clean.total_cycles, (
        f"throttling did not stall: {throttled.total_cycles!r} vs {clean.total_cycles!r} (seed {seed})")
    _save("throttled", {"cycles": throttled.cycles, "clean_cycles": clean.total_cycles, "seed": seed})
