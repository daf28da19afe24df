"""`cdsl sim RUN_DIR [--n N] [--wave FILE]`: run test samples through the generated RTL in Verilator.

Simulates `RUN_DIR/rtl/network.sv` as `cdsl gen` wrote it (generated first with the default options
if there is no rtl/). Prints each sample's RTL output words and predicted class, cycles per
inference and simulated cycles per second. `--wave FILE` (.fst or .vcd) records a waveform for
GTKWave or Surfer. `--precision`/`--set` write runtime settings into the design's registers.
"""

from __future__ import annotations

from pathlib import Path

from cdsl.errors import CdslError
from cdsl.flow import SAMPLES, add_settings_options, add_simulator_option


def register(sub) -> None:
    p = sub.add_parser("sim", help="simulate the generated RTL in Verilator on test samples")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder with intmodel/ (from cdsl train or cdsl run)")
    p.add_argument("--n", type=SAMPLES, default=10, metavar="N", help="test samples (default 10)")
    p.add_argument("--wave", type=Path, metavar="FILE", help="write a waveform (.fst or .vcd)")
    add_settings_options(p)
    add_simulator_option(p)
    p.set_defaults(func=run)


def check_wave_path(wave: Path) -> None:
    """The waveform can be written where asked, in a format this machine can write (exit 2 otherwise)."""
    import tempfile

    from cdsl.sim.toolchain import fst_supported

    if wave.suffix not in (".fst", ".vcd"):
        raise CdslError(f"--wave {str(wave)!r}: the file name must end in .fst or .vcd", name="cdsl sim")
    if wave.suffix == ".fst" and not fst_supported():
        raise CdslError(f"--wave {str(wave)!r}: Verilator's FST writer needs the lz4 headers (apt-get install "
                        "liblz4-dev); write a .vcd file instead", name="cdsl sim")
    if wave.is_dir():
        raise CdslError(f"--wave {str(wave)!r}: a folder, not a file name", name="cdsl sim")
    parent = wave.resolve().parent
    try:  # the folder is made as asked, and a file can be written in it (root may not write in /proc)
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".cdsl-wave-"):
            pass
    except OSError as err:
        raise CdslError(f"--wave {str(wave)!r}: cannot write there ({err.strerror or err})", name="cdsl sim") from None


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cdsl.contract.golden import argmax_lowest, quantize_input
    from cdsl.files import locked
    from cdsl.flow import design_settings, load_design, load_run_intmodel, parse_settings, progress_bar, resolve_run
    from cdsl.hw.plan import token_nodes
    from cdsl.sim.cosim import simulate, token_counts
    from cdsl.sw.evaluate import load_run

    console = Console(highlight=False)
    if args.wave is not None:
        if args.simulator != "verilator":
            raise CdslError(f"--wave: waveforms are written by Verilator runs; leave out --simulator {args.simulator}",
                            name="cdsl sim")
        check_wave_path(args.wave)
    settings = parse_settings(args)
    run_dir = resolve_run(args.run_dir)
    with locked(run_dir, shared=(run_dir / "rtl").exists()):  # exclusive when it generates rtl/ first
        intmodel = load_run_intmodel(run_dir)
        design = load_design(run_dir, intmodel, log=console.print)
        settings = design_settings(design, settings, str(run_dir))
        _, _, data = load_run(run_dir)
        if not 1 <= args.n <= len(data.y_test):
            raise CdslError(f"--n {args.n}: the test split has {len(data.y_test)} samples", name="cdsl sim")
        x = quantize_input(intmodel, data.x_test[:args.n])
        tokens = None
        if token_nodes(design.plan):  # the model's cycles per sample follow its kept tokens (golden trace)
            tokens = token_counts(intmodel, design, x, settings)
        with progress_bar(console, len(x)) as progress:
            r = simulate(design, x, settings=settings, waves=None if args.wave is None else args.wave.resolve(),
                         progress=progress, simulator=args.simulator, tokens=tokens)
    model = r.predicted_per_sample
    for name in intmodel.outputs:  # a table per output stream (a model may have several heads)
        words = r.outputs[name].reshape(len(x), -1)
        pred = argmax_lowest(words)
        table = Table(title=f"{intmodel.name}: RTL outputs ({name})")
        for col in ("sample", "label", "RTL class", "cycles", "model", "output words"):
            table.add_column(col, justify="right" if col != "output words" else "left")
        for s in range(len(x)):
            table.add_row(str(s), str(int(data.y_test[s])), str(int(pred[s])), str(int(r.cycles[s])), str(int(model[s])),
                          " ".join(str(int(v)) for v in words[s]))
        console.print(table)
    console.print(f"simulated {design.verilog_path} (sha256 {design.sha256[:16]})")
    if r.predicted is None:
        console.print(f"cycles per inference: {float(r.cycles.mean()):.0f} (cycle model: {r.predicted_cycles})")
    else:
        console.print(f"cycles per inference: mean {float(r.cycles.mean()):.1f} (cycle model per sample, from its kept "
                      f"tokens: mean {float(model.mean()):.1f}; {r.predicted_cycles} at full token counts)")
    console.print(f"simulated {r.total_cycles} cycles in {r.sim_seconds:.2f} s = {r.cycles_per_second:,.0f} cycles/s; "
                  f"{r.build_note}")
    if r.waves is not None:
        console.print(f"waveform: {r.waves}")
    return 0
