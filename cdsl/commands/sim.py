"""`cdsl sim RUN_DIR [--n N] [--wave FILE]`: run test samples through the network RTL in Verilator.

Prints each sample's RTL output words and predicted class, cycles per inference and simulated
cycles per second. `--wave FILE` (.fst or .vcd) records a waveform for GTKWave or Surfer.
"""

from __future__ import annotations

from pathlib import Path

from cdsl.flow import add_hw_options, add_precision_option


def register(sub) -> None:
    p = sub.add_parser("sim", help="simulate the network RTL in Verilator on test samples")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder with intmodel/ (from cdsl train or cdsl run)")
    p.add_argument("--n", type=int, default=10, metavar="N", help="test samples (default 10)")
    p.add_argument("--wave", type=Path, metavar="FILE", help="write a waveform (.fst or .vcd)")
    add_hw_options(p)
    add_precision_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    from cdsl.errors import CdslError
    from cdsl.flow import hardware_error, parse_precisions, progress_bar, resolve_run
    from cdsl.hw.plan import UnsupportedModel
    from cdsl.sim.cosim import simulate
    from cdsl.sw.evaluate import load_run
    from cdsl.contract.golden import argmax_lowest, quantize_input
    from cdsl.contract.intmodel import IntModel

    console = Console(highlight=False)
    if args.wave is not None and args.wave.suffix not in (".fst", ".vcd"):
        raise CdslError(f"--wave {str(args.wave)!r}: the file name must end in .fst or .vcd", name="cdsl sim")
    run_dir = resolve_run(args.run_dir)
    intmodel = IntModel.load(run_dir / "intmodel")
    _, _, data = load_run(run_dir)
    if not 1 <= args.n <= len(data.y_test):
        raise CdslError(f"--n {args.n}: the test split has {len(data.y_test)} samples", name="cdsl sim")
    x = quantize_input(intmodel, data.x_test[:args.n])
    with progress_bar(console, len(x)) as progress:
        try:
            r = simulate(intmodel, x, precisions=parse_precisions(args.precision), default_lanes=args.lanes,
                         target_cycles=args.target_cycles,
                         waves=None if args.wave is None else args.wave.resolve(), progress=progress)
        except (UnsupportedModel, ValueError) as err:
            raise hardware_error(intmodel.name, err, str(run_dir)) from None
    pred = argmax_lowest(torch.as_tensor(r.outputs))
    table = Table(title=f"{intmodel.name}: RTL outputs ({intmodel.outputs[0]})")
    for col in ("sample", "label", "RTL class", "cycles", "output words"):
        table.add_column(col, justify="right" if col != "output words" else "left")
    for s in range(len(x)):
        table.add_row(str(s), str(int(data.y_test[s])), str(int(pred[s])), str(int(r.cycles[s])),
                      " ".join(str(int(v)) for v in r.outputs[s]))
    console.print(table)
    console.print(f"cycles per inference: {float(r.cycles.mean()):.0f} (cycle model: {r.predicted_cycles})")
    console.print(f"simulated {r.total_cycles} cycles in {r.sim_seconds:.2f} s = {r.cycles_per_second:,.0f} cycles/s; "
                  f"Verilator build {'cached' if r.cache_hit else f'{r.build_seconds:.1f} s'}")
    if r.waves is not None:
        console.print(f"waveform: {r.waves}")
    return 0
