"""cocotb testbench of a token selector engine in the bulk-load Harness (host: `cdsl.sim.blocks.token_selector`).

`$CDSL_SELECTOR_CASE` is an .npz with `tokens` int64 [S, N*D] (one row per sample), `lengths` int64 [S]
(the words of each sample's frame: its first rows, the last word flagged `last`), `thresholds`
int64 [S] (the `threshold` input during each sample) and `throttle` (int64 [1]: an LFSR seed, 0 for
none). Every sample is run once with the outputs always ready (its
cycles are the cycle model's) and, with a throttle seed, once more under random back-pressure.
The outputs go to `$CDSL_SELECTOR_OUT` (.npz): `out`, `out_len`, `count` and `cycles` per sample
(clean run), `out_throttled`, `out_len_throttled`, `count_throttled` (throttled run, when asked).
"""

from __future__ import annotations

import os

import cocotb
import numpy as np

from cdsl.sim.drivers import HarnessDriver, write_results


@cocotb.test()
async def selector_samples(dut):
    with np.load(os.environ["CDSL_SELECTOR_CASE"]) as case:
        tokens, frames = case["tokens"], case["lengths"]
        thresholds, throttle = case["thresholds"], int(case["throttle"][0])
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    depth = drv.ports["o"].depth
    runs = [("", None)] + ([("_throttled", throttle)] if throttle else [])
    arrays: dict[str, np.ndarray] = {"cycles": np.zeros(len(tokens), dtype=np.int64)}
    for suffix, seed in runs:
        out = np.zeros((len(tokens), depth), dtype=np.int64)
        lengths = np.zeros(len(tokens), dtype=np.int64)
        counts = np.full(len(tokens), -1, dtype=np.int64)
        for s, row in enumerate(tokens):
            dut.threshold.value = int(thresholds[s])
            run = await drv.run({"i": row[: frames[s]].tolist()}, seed=seed if seed is None else (seed + s) % 0xFFFF + 1)
            words, count = run.outputs["o"], run.outputs["count"]
            out[s, :len(words)] = words[:depth]
            lengths[s] = len(words)
            counts[s] = count[0] if len(count) == 1 else -1
            if seed is None:
                arrays["cycles"][s] = run.cycles
        arrays[f"out{suffix}"], arrays[f"out_len{suffix}"], arrays[f"count{suffix}"] = out, lengths, counts
    np.savez(os.environ["CDSL_SELECTOR_OUT"], **arrays)
    write_results({"samples": int(len(tokens)), "total_cycles": int(arrays["cycles"].sum())})
