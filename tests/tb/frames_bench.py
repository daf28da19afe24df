"""cocotb test: frames of varying length through a one-input, one-output engine in the bulk-load
harness, outputs captured until `last`, clean (each frame's cycles recorded) and throttled.

`$CDSL_FRAMES_CASE` holds {"samples": [[word, ...], ...], "expected": [[word, ...], ...]}. Results
(`write_results`): {"cycles": [per sample, clean run], "counts": [output words per sample]}.
"""

from __future__ import annotations

import json
import os

import cocotb

from cdsl.sim.drivers import HarnessDriver, tb_seed, write_results
from cdsl.sim.scoreboard import Scoreboard


@cocotb.test()
async def frames(dut):
    with open(os.environ["CDSL_FRAMES_CASE"]) as fh:
        case = json.load(fh)
    seed = tb_seed()
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    cycles, counts = [], []
    for throttle in (None, 1 + seed % 60000):
        sb = Scoreboard(name=f"frames (throttle {throttle})", seed=seed)
        for s, (words, want) in enumerate(zip(case["samples"], case["expected"])):
            run = await drv.run(words, seed=throttle)
            sb.compare(want, run.words, sample=s, port="o")
            if throttle is None:
                cycles.append(run.cycles)
                counts.append(len(run.words))
        sb.raise_if_failed()
    write_results({"cycles": cycles, "counts": counts})
