"""cocotb test: outputs of varying length captured until `last` (tests/hw/test_variable_length.py).

`$CDSL_VL_CASE` holds {"samples": [[word, ...], ...], "expected": [[word, ...], ...]}; each sample is
one harness run with no expected count on the output (`expect_o` = 0), clean and throttled.
"""

from __future__ import annotations

import json
import os

import cocotb

from cdsl.sim.drivers import HarnessDriver, tb_seed, write_results
from cdsl.sim.scoreboard import Scoreboard


@cocotb.test()
async def until_last(dut):
    with open(os.environ["CDSL_VL_CASE"]) as fh:
        case = json.load(fh)
    seed = tb_seed()
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    counts = []
    for throttle in (None, 1 + seed % 60000):
        sb = Scoreboard(name=f"compactor (throttle {throttle})", seed=seed)
        for s, (words, want) in enumerate(zip(case["samples"], case["expected"])):
            run = await drv.run(words, seed=throttle)
            sb.compare(want, run.words, sample=s, port="o")
            if throttle is None:
                counts.append(len(run.words))
        sb.raise_if_failed()
    write_results({"counts": counts})
