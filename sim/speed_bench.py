"""cocotb test: simulated cycles per second of `SerialDense` in the `Harness` (see cdsl.sim.speed).

Environment: `CDSL_HARNESS`, `CDSL_BENCH` (JSON: k, n, samples, samples_per_run, weight_seed).
Checks every output against `serial_dense_ref` and every run's cycles against the model, then
writes {cycles, wall_s, cycles_per_s, load_s, ...} with `write_results`.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb

from cdsl.sim.speed import bench_weights, serial_dense_cycles, serial_dense_ref
from cdsl.sim.drivers import HarnessDriver, tb_seed, write_results
from cdsl.sim.scoreboard import Scoreboard


@cocotb.test()
async def bench_serial_dense(dut):
    cfg = json.loads(os.environ["CDSL_BENCH"])
    k, n, count, per_run = cfg["k"], cfg["n"], cfg["samples"], cfg["samples_per_run"]
    weights = bench_weights(seed=cfg["weight_seed"], k=k, n=n)
    seed = tb_seed()
    rng = random.Random(seed)
    samples = [[rng.randint(-128, 127) for _ in range(k)] for _ in range(count)]
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    wall = time.perf_counter()
    batch = await drv.run_samples(samples, n_out=n, samples_per_run=per_run)
    wall = time.perf_counter() - wall
    sb = Scoreboard(name="serial_dense bench", seed=seed)
    for s, (x, got) in enumerate(zip(samples, batch.outputs)):
        sb.compare(serial_dense_ref(weights, x), got, sample=s, port="o")
    sb.raise_if_failed()
    if per_run == 1:
        expected = serial_dense_cycles(k=k, n=n)
        assert set(batch.cycles) == {expected}, f"cycles {sorted(set(batch.cycles))!r}, model {expected!r}"
    write_results({"samples": count, "cycles": batch.total_cycles, "wall_s": wall,
                   "cycles_per_s": batch.total_cycles / wall, "cycles_per_sample": batch.total_cycles / count,
                   "seed": seed, "summary": sb.summary(), **drv.stats})
