"""cocotb testbench: a whole network, many samples, through the bulk-load Harness.

The host (`cdsl.sim.cosim.simulate`) writes `$CDSL_COSIM_CASE`, an .npz with
- `samples`: int64 [N, words]: each row is one harness run (prefix words, then the input frame),
- `n_out`: the output words per sample,
and reads back `$CDSL_COSIM_OUT` (.npz: `outputs` int64 [N, n_out], `cycles` int64 [N]) and the
JSON results (`write_results`: simulated cycles, wall seconds). Comparison against the golden
model happens on the host, where the scoreboard can name the layer and element.

Progress: every few samples the testbench writes "done total" to `$CDSL_PROGRESS` (if set).
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np

from cdsl.sim.drivers import HarnessDriver, write_results

_PROGRESS_EVERY = 16


def _progress(done: int, total: int) -> None:
    path = os.environ.get("CDSL_PROGRESS")
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{done} {total}\n")
        os.replace(tmp, path)


@cocotb.test()
async def network_samples(dut):
    with np.load(os.environ["CDSL_COSIM_CASE"]) as case:
        samples = case["samples"]
        n_out = int(case["n_out"])
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    outputs = np.zeros((len(samples), n_out), dtype=np.int64)
    cycles = np.zeros(len(samples), dtype=np.int64)
    wall = time.perf_counter()
    for s, words in enumerate(samples.tolist()):
        run = await drv.run(words, n_out=n_out)
        outputs[s] = run.outputs
        cycles[s] = run.cycles
        if s % _PROGRESS_EVERY == _PROGRESS_EVERY - 1:
            _progress(s + 1, len(samples))
    wall = time.perf_counter() - wall
    _progress(len(samples), len(samples))
    np.savez(os.environ["CDSL_COSIM_OUT"], outputs=outputs, cycles=cycles)
    total = int(cycles.sum())
    write_results({"total_cycles": total, "wall_s": wall, "cycles_per_s": total / wall if wall > 0 else None,
                   "driver": drv.stats})
