"""Measure simulated cycles per second of the harness flow (cocotb + Verilator, bulk-loaded).

    python -m cdsl.sim.speed [--samples 2000] [--k 64] [--n 10] [--per-run 1] [--public-all] [--cocotb-clock]

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

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SerialDense", "serial_dense_ref", "serial_dense_cycles", "bench_weights", "run_bench", "main"]

# ---------------------------------------------------------------- the design: SerialDense
# Input stream `i`: `k` signed(`width`) activations per sample; output stream `o`: `n` signed
# dot products `sum_j w[r][j] * x[j]` (r = 0..n-1), one MAC per clock, weights in a ROM
# (`amaranth.lib.memory.Memory` with `init`). Cycles per sample: `k` to load, then `k + 1` per row
# (k MACs, one cycle to hand the row's result over) when the output is always ready.


def serial_dense_ref(weights: list[list[int]], x: list[int]) -> list[int]:
    return [sum(w * v for w, v in zip(row, x)) for row in weights]


def serial_dense_cycles(*, k: int, n: int) -> int:
    """Cycles from the harness start to the last output word, output always ready, input ready."""
    return k + n * (k + 1)


class SerialDense(wiring.Component):
    def __init__(self, *, weights: list[list[int]], width: int = 8):
        if not weights or not all(isinstance(row, list) and row for row in weights):
            raise ValueError(f"SerialDense: weights must be a non-empty list of non-empty rows, not {weights!r:.60}")
        k = len(weights[0])
        if any(len(row) != k for row in weights):
            raise ValueError(f"SerialDense: every weight row must have {k!r} entries")
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        if any(not lo <= w <= hi for row in weights for w in row):
            raise ValueError(f"SerialDense: weights must fit signed({width!r})")
        self._weights = [list(row) for row in weights]
        self._k = k
        self._n = len(weights)
        self._width = width
        self._acc_width = 2 * width + max(1, (k - 1).bit_length())
        super().__init__({
            "i": In(stream.Signature(signed(width))),
            "o": Out(stream.Signature(signed(self._acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        k, n, width = self._k, self._n, self._width
        xmem = memory.Memory(shape=signed(width), depth=k, init=[])
        wrom = memory.Memory(shape=signed(width), depth=k * n, init=[w for row in self._weights for w in row])
        m.submodules.xmem = xmem
        m.submodules.wrom = wrom
        x_wr = xmem.write_port()
        x_rd = xmem.read_port(domain="comb")
        w_rd = wrom.read_port(domain="comb")

        col = Signal(range(k))
        row = Signal(range(n))
        acc = Signal(signed(self._acc_width))
        product = x_rd.data * w_rd.data
        last_col = col == k - 1
        last_row = row == n - 1

        m.d.comb += [
            x_wr.addr.eq(col),
            x_wr.data.eq(self.i.payload),
            x_rd.addr.eq(col),
            w_rd.addr.eq(row * k + col),
            self.o.payload.eq(acc),
        ]
        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += [self.i.ready.eq(1), x_wr.en.eq(self.i.valid)]
                with m.If(self.i.valid):
                    m.d.sync += col.eq(0 if k == 1 else col + 1)
                    with m.If(last_col):
                        m.d.sync += [col.eq(0), row.eq(0), acc.eq(0)]
                        m.next = "MAC"
            with m.State("MAC"):
                m.d.sync += acc.eq(acc + product)
                with m.If(last_col):
                    m.d.sync += col.eq(0)
                    m.next = "EMIT"
                with m.Else():
                    m.d.sync += col.eq(col + 1)
            with m.State("EMIT"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += acc.eq(0)
                    with m.If(last_row):
                        m.d.sync += row.eq(0)
                        m.next = "LOAD"
                    with m.Else():
                        m.d.sync += row.eq(row + 1)
                        m.next = "MAC"
        return m


# ---------------------------------------------------------------- the benchmark


def bench_weights(*, seed: int, k: int, n: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(-128, 127) for _ in range(k)] for _ in range(n)]


def run_bench(*, samples: int = 2000, k: int = 64, n: int = 10, samples_per_run: int = 1,
              public_all: bool = False, seed: int = 1, sim_clock: bool = True):
    from cdsl.hw.verilog_text import verilog_text

    from cdsl.sim.build import BuildOptions
    from cdsl.sim.harness import Harness
    from cdsl.sim.runner import run_cocotb

    weights = bench_weights(seed=7, k=k, n=n)
    harness = Harness(dut=SerialDense(weights=weights), depths={"i": k * samples_per_run, "o": n * samples_per_run})
    text = verilog_text(harness, name="bench_top")
    cfg = {"k": k, "n": n, "samples": samples, "samples_per_run": samples_per_run, "weight_seed": 7}
    return run_cocotb(verilog=text, toplevel="bench_top", test_module="cdsl.sim.speed_bench",
                      extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_BENCH": json.dumps(cfg)},
                      seed=seed, build_options=BuildOptions(public_all=public_all, sim_clock=sim_clock))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdsl.sim.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--per-run", type=int, default=1, help="samples loaded per start/done")
    parser.add_argument("--public-all", action="store_true", help="keep cocotb's --public-flat-rw")
    parser.add_argument("--cocotb-clock", action="store_true",
                        help="cocotb's clock (a VPI callback per edge) instead of the clock in the simulator's C++ main")
    args = parser.parse_args(argv)
    result = run_bench(samples=args.samples, k=args.k, n=args.n, samples_per_run=args.per_run,
                       public_all=args.public_all, sim_clock=not args.cocotb_clock)
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
