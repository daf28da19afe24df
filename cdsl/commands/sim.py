"""`cdsl sim RUN_DIR [--n N] [--wave FILE]`: run test samples through the generated RTL in Verilator.

Simulates `RUN_DIR/rtl/network.v` as `cdsl gen` wrote it (generated first with the default options
if there is no rtl/). Prints each sample's RTL output words and predicted class, cycles per
inference and simulated cycles per second. `--wave FILE` (.fst or .vcd) records a waveform for
GTKWave or Surfer. `--precision`/`--set` write runtime settings into the design's registers.
"""

from __future__ import annotations

from pathlib import Path

from cdsl.flow import add_settings_options


def register(sub) -> None:
    p = sub.add_parser("sim", help="simulate the generated RTL in Verilator on test samples")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder with intmodel/ (from cdsl train or cdsl run)")
    p.add_argument("--n", type=int, default=10, metavar="N", help="test samples (default 10)")
    p.add_argument("--wave", type=Path, metavar="FILE", help="write a waveform (.fst or .vcd)")
    add_settings_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cdsl.contract.golden import argmax_lowest, quantize_input
    from cdsl.errors import CdslError
    from cdsl.files import locked
    from cdsl.flow import design_settings, load_design, load_intmodel, parse_settings, progress_bar, resolve_run
    from cdsl.sim.cosim import simulate
    from cdsl.sw.evaluate import load_run

    console = Console(highlight=False)
    if args.wave is not None and args.wave.suffix not in (".fst", ".vcd"):
        raise CdslError(f"--wave {str(args.wave)!r}: the file name must end in .fst or .vcd", name="cdsl sim")
    settings = parse_settings(args)
    run_dir = resolve_run(args.run_dir)
    with locked(run_dir, shared=(run_dir / "rtl").exists()):  # exclusive when it generates rtl/ first
        intmodel = load_intmodel(run_dir / "intmodel")
        design = load_design(run_dir, intmodel, log=console.print)
        settings = design_settings(design, settings, str(run_dir))
        _, _, data = load_run(run_dir)
        if not 1 <= args.n <= len(data.y_test):
            raise CdslError(f"--n {args.n}: the test split has {len(data.y_test)} samples", name="cdsl sim")
        x = quantize_input(intmodel, data.x_test[:args.n])
        with progress_bar(console, len(x)) as progress:
            r = simulate(design, x, settings=settings, waves=None if args.wave is None else args.wave.resolve(),
                         progress=progress)
    first = intmodel.outputs[0]
    pred = argmax_lowest(r.outputs[first])
    table = Table(title=f"{intmodel.name}: RTL outputs ({first})")
    for col in ("sample", "label", "RTL class", "cycles", "output words"):
        table.add_column(col, justify="right" if col != "output words" else "left")
    for s in range(len(x)):
        table.add_row(str(s), str(int(data.y_test[s])), str(int(pred[s])), str(int(r.cycles[s])),
                      " ".join(str(int(v)) for v in r.outputs[first][s]))
    console.print(table)
    console.print(f"simulated {design.verilog_path} (sha256 {design.sha256[:16]})")
    console.print(f"cycles per inference: {float(r.cycles.mean()):.0f} (cycle model: {r.predicted_cycles})")
    console.print(f"simulated {r.total_cycles} cycles in {r.sim_seconds:.2f} s = {r.cycles_per_second:,.0f} cycles/s; "
                  f"Verilator build {'cached' if r.cache_hit else f'{r.build_seconds:.1f} s'}")
    if r.waves is not None:
        console.print(f"waveform: {r.waves}")
    return 0
