"""cocotb testbench of a whole network: many samples through the bulk-load Harness, a batch per run.

The harness holds `samples` samples (`Harness(samples=K)`, in the manifest): each batch of up to K
samples is written into its memories, run with one `start`/`done` (the harness runs the samples one
after another, each with the config words first, so each sample's cycles are those of a run of its
own, read from `mem_cycles`), and read back; Python wakes once per batch.

The host (`cdsl.sim.cosim.simulate`) writes `$CDSL_COSIM_CASE`, an .npz with
- `in:<port>`: int64 [N, words] per input port (one row per sample);
- `expect:<port>`: the words each output port must deliver;
- `config`: int64 [words], the register writes (packed {addr, data}) made before every sample;
and reads back `$CDSL_COSIM_OUT` (.npz: `out:<port>` int64 [N, words], `count:<port>` int64 [N],
`probe:<port>` int64 [N, words] and `probe_count:<port>` when the harness captures probes,
`cycles` int64 [N]) and the JSON results (`write_results`: simulated cycles, wall seconds).
Comparison against the golden model happens on the host, where the scoreboard can name the layer.

Progress: after every batch the testbench writes "done total" to `$CDSL_PROGRESS` (if set).
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np

from cdsl.sim.drivers import HarnessDriver, write_results

def _progress(done: int, total: int) -> None:
    path = os.environ.get("CDSL_PROGRESS")
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{done} {total}\n")
        os.replace(tmp, path)


def _padded(rows: list[list[int]], width: int) -> np.ndarray:
    out = np.zeros((len(rows), width), dtype=np.int64)
    for s, row in enumerate(rows):
        out[s, :len(row)] = row[:width]
    return out


@cocotb.test()
async def network_samples(dut):
    with np.load(os.environ["CDSL_COSIM_CASE"]) as case:
        inputs = {k.split(":", 1)[1]: case[k] for k in case.files if k.startswith("in:")}
        expect = {k.split(":", 1)[1]: int(case[k]) for k in case.files if k.startswith("expect:")}
        config = case["config"].tolist()
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    samples = len(next(iter(inputs.values())))
    got: dict[str, list] = {}
    cycles = np.zeros(samples, dtype=np.int64)
    wall = time.perf_counter()
    lists = {port: words.tolist() for port, words in inputs.items()}
    for first in range(0, samples, drv.samples):
        group = range(first, min(first + drv.samples, samples))
        runs = await drv.run_batch([{port: rows[s] for port, rows in lists.items()} for s in group],
                                   expect=expect, config=config)
        for s, run in zip(group, runs):
            cycles[s] = run.cycles
            for kind, captured in (("out", run.outputs), ("probe", run.probes)):
                for port, words in captured.items():
                    got.setdefault(f"{kind}:{port}", []).append(words)
        _progress(group[-1] + 1, samples)
    wall = time.perf_counter() - wall
    _progress(samples, samples)
    arrays = {"cycles": cycles}
    for key, rows in got.items():
        kind, port = key.split(":", 1)
        arrays[key] = _padded(rows, drv.ports[port].depth)
        arrays[f"{kind}_count:{port}"] = np.array([len(r) for r in rows], dtype=np.int64)
    np.savez(os.environ["CDSL_COSIM_OUT"], **arrays)
    total = int(cycles.sum())
    write_results({"total_cycles": total, "wall_s": wall, "cycles_per_s": total / wall if wall > 0 else None,
                   "driver": drv.stats})
