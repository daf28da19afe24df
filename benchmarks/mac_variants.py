"""Is a shift-accumulate smaller than the bit-serial MAC's shifter? Both datapaths synthesized, printed.

    .venv/bin/python benchmarks/mac_variants.py [--lanes 4,8,16] [--a-bits 8] [--w-bits 8] [--fan-in 64]

cdsl's bit-serial MAC (`hw/bitserial_mac.py`) fetches step-major: all set planes of a step, then the
next step; each cycle adds `lane_sum << plane` (a shifter of the narrow lane sum, 0..B-1 places) to the
row's accumulator, so a row's planes may be any subset (MSQ's per-row plane masks) and TruncQuant's
precision cut simply stops early. The textbook alternative is plane-major with a shift-accumulate:
`acc = 2*acc ± plane_sum`, no shifter, but the engine must replay a row's steps once per plane, spend a
doubling cycle on each plane a row skips, and scale by 2^cut after a truncated row.

This prints the LUT4 (iCE40, `synth_ice40 -noflatten`, as `cdsl report` runs it) of the product MAC
and of the shift-accumulate datapath alone, `SketchShiftAccumulate` below: its lanes, adder tree,
negation and doubling, and nothing of the plane sequencing it would need in every engine (so its
figure is a lower bound, the saving an upper bound). Not a product engine: nothing else uses it.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path


def sketch_shift_accumulate(*, lanes: int, a_bits: int, acc_width: int):
    """The plane-major datapath: per cycle one step of one plane; `double` on a plane's first step,
    `neg` on the MSB plane, `last` on the row's last cycle (then the sum leaves and acc clears)."""
    from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
    from amaranth.lib import data, stream, wiring
    from amaranth.lib.wiring import In, Out

    from cdsl.hw.bitserial_mac import adder_tree

    layout = data.StructLayout({"x": data.ArrayLayout(a_bits, lanes), "bits": lanes, "double": 1, "neg": 1,
                                "last": 1})

    class SketchShiftAccumulate(wiring.Component):
        def __init__(self):
            super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(signed(acc_width)))})

        def elaborate(self, platform):
            m = Module()
            p = self.i.payload
            acc = Signal(signed(acc_width))
            total = adder_tree(m, [Mux(p.bits[j], p.x[j], 0) for j in range(lanes)])
            wide = Cat(total, Const(0, 1)).as_signed()
            operand = Mux(p.neg, ~wide, wide)  # with the carry-in p.neg: -plane_sum on the MSB plane
            acc_next = Signal(signed(acc_width))
            m.d.comb += acc_next.eq(Mux(p.double, acc << 1, acc) + operand + p.neg)
            advance = ~self.o.valid | self.o.ready
            m.d.comb += self.i.ready.eq(advance)
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(self.i.valid & advance):
                m.d.sync += acc.eq(acc_next)
                with m.If(p.last):
                    m.d.sync += [self.o.payload.eq(acc_next), self.o.valid.eq(1), acc.eq(0)]
            return m

    return SketchShiftAccumulate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lanes", default="4,8,16")
    ap.add_argument("--a-bits", type=int, default=8, help="unsigned activation bits (default 8)")
    ap.add_argument("--w-bits", type=int, default=8, help="signed weight bits (default 8)")
    ap.add_argument("--fan-in", type=int, default=64, help="inputs per output, for the accumulator width (64: the "
                                                            "digits MLP's h1)")
    args = ap.parse_args()

    from amaranth.back import verilog
    from rich.console import Console
    from rich.table import Table

    from cdsl.hw.bitserial_mac import BitSerialMac
    from cdsl.report.synth import synthesize

    acc_width = args.a_bits + args.w_bits + math.ceil(math.log2(args.fan_in)) + 1
    console = Console(highlight=False, width=140)
    table = Table(title=f"bit-serial MAC datapaths, {args.a_bits}-bit activations x {args.w_bits}-bit weights, "
                        f"{acc_width}-bit accumulator, iCE40")
    for col in ("lanes", "cdsl MAC (step-major, narrow shifter) LUT4", "shift-accumulate sketch LUT4",
                "saving at most", "LUT4 / lane: cdsl", "sketch"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="cdsl-mac-variants-") as tmp:
        for lanes in (int(v) for v in args.lanes.split(",")):
            luts = []
            for label, comp in (("mac", BitSerialMac(lanes=lanes, a_width=args.a_bits, a_signed=False,
                                                     w_bits=args.w_bits, acc_width=acc_width)),
                                ("sketch", sketch_shift_accumulate(lanes=lanes, a_bits=args.a_bits,
                                                                   acc_width=acc_width))):
                path = Path(tmp) / f"{label}{lanes}.sv"
                path.write_text(verilog.convert(comp, name="network"))
                console.print(f"synthesizing {label}, {lanes} lanes ...")
                luts.append(synthesize(path, "ice40")[0].total["luts"])
            mac, sketch = luts
            table.add_row(str(lanes), str(mac), str(sketch), f"{mac - sketch} ({(mac - sketch) / mac:.0%})",
                          f"{mac / lanes:.1f}", f"{sketch / lanes:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
