"""Measure simulated cycles per second of the harness flow (cocotb + Verilator, bulk-loaded).

    python -m cdsl.sim.bench [--samples 2000] [--k 64] [--n 10] [--per-run 1] [--public-all]

Design: `SerialDense` (k int8 inputs -> n outputs, one MAC per cycle, k + n*(k+1) cycles per
sample; 714 for 64 -> 10) wrapped in `Harness`. Each sample: its k words are written into the input
memory through handles, `start` pulsed, Python sleeps until `done`; outputs read back and checked
against the reference, cycles checked against the model. Prints build time (cache hit or not),
simulated cycles, wall time of the simulation loop, and cycles per second.
"""

from __future__ import annotations

import argparse
import json
import random

__all__ = ["bench_weights", "run_bench", "main"]


def bench_weights(*, seed: int, k: int, n: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(-128, 127) for _ in range(k)] for _ in range(n)]


def run_bench(*, samples: int = 2000, k: int = 64, n: int = 10, samples_per_run: int = 1,
              public_all: bool = False, seed: int = 1):
    from amaranth.back import verilog

    from cdsl.sim.build import BuildOptions
    from cdsl.sim.demo.serial_dense import SerialDense
    from cdsl.sim.harness import Harness
    from cdsl.sim.runner import run_cocotb

    weights = bench_weights(seed=7, k=k, n=n)
    harness = Harness(dut=SerialDense(weights=weights), in_depth=k * samples_per_run,
                      out_depth=n * samples_per_run)
    text = verilog.convert(harness, name="bench_top")
    cfg = {"k": k, "n": n, "samples": samples, "samples_per_run": samples_per_run, "weight_seed": 7}
    return run_cocotb(verilog=text, toplevel="bench_top", test_module="cdsl.sim.tb.bench",
                      extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_BENCH": json.dumps(cfg)},
                      seed=seed, build_options=BuildOptions(public_all=public_all))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdsl.sim.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--per-run", type=int, default=1, help="samples loaded per start/done")
    parser.add_argument("--public-all", action="store_true", help="keep cocotb's --public-flat-rw")
    args = parser.parse_args(argv)
    result = run_bench(samples=args.samples, k=args.k, n=args.n, samples_per_run=args.per_run,
                       public_all=args.public_all)
    print(result.summary())
    print(f"build: {'cache hit' if result.build.hit else 'compiled'} in {result.build.seconds:.2f} s ({result.build.directory})")
    if not result.passed:
        print(result.log_text(tail=40))
        return 1
    d = result.data
    print(f"{d['samples']} samples, {d['cycles_per_sample']:.0f} cycles/sample, {d['cycles']} cycles "
          f"in {d['wall_s']:.3f} s: {d['cycles_per_s']:,.0f} simulated cycles/s")
    print(f"  of which: writing inputs {d['load_s']:.3f} s, start..done {d['sim_s']:.3f} s, "
          f"reading outputs {d['read_s']:.3f} s, {d['runs']} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
