"""`cdsl gen SPEC_OR_RUN_DIR [-o OUT]`: the network's Verilog and manifest from an integer model.

Given a run folder (written by `cdsl train`, holding `intmodel/`), it generates from that IntModel
into `RUN_DIR/rtl` (or OUT). Given an IntModel folder, OUT is required. Given a `.cdsl` spec, it
trains first (as `cdsl train SPEC -o RUN_DIR` would, into `--run-dir`, default runs/<model name>)
and then generates. OUT receives `network.sv` and `manifest.json` (see `cdsl.hw.generate`): what
`cdsl sim` and `cdsl verify` then simulate, unchanged.
"""

from __future__ import annotations

from pathlib import Path

from cdsl.flow import EPOCHS, add_hw_options


def register(sub) -> None:
    p = sub.add_parser("gen", help="generate the network's Verilog and manifest (from a run folder, or train a spec first)")
    p.add_argument("source", metavar="SPEC_OR_RUN_DIR", help="a run folder with intmodel/, or a .cdsl spec (trained first)")
    p.add_argument("-o", "--output", metavar="OUT", help="folder for network.sv and manifest.json (default RUN_DIR/rtl)")
    add_hw_options(p)
    p.add_argument("--run-dir", metavar="RUN_DIR", help="where to train a spec (default runs/<model name>)")
    p.add_argument("--epochs", type=EPOCHS, help="epochs when training a spec")
    p.add_argument("--lint", action="store_true", help="run verilator --lint-only -Wall on the result (exit 1 on an error or an undocumented warning)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console

    from cdsl.errors import CdslError
    from cdsl.files import locked
    from cdsl.flow import cycle_table, generate_design, load_intmodel, load_run_intmodel, resolve_intmodel
    from cdsl.hw.plan import fold_report
    from cdsl.sim.lint import lint

    console = Console(highlight=False, width=max(Console().width, 130))
    folder = resolve_intmodel(args.source, run_dir=args.run_dir, epochs=args.epochs, log=console.print)
    if args.output:
        out = Path(args.output)
    elif folder.name == "intmodel":
        out = folder.parent / "rtl"
    else:
        raise CdslError("an integer model folder outside a run folder needs -o OUT", name=str(folder))
    in_run = folder.name == "intmodel" and (folder.parent / "spec.cdsl").is_file()
    intmodel = load_run_intmodel(folder.parent) if in_run else load_intmodel(folder)
    run_dir = folder.parent if out == folder.parent / "rtl" else None  # generating into a run folder
    with locked(run_dir or out):
        if run_dir is not None:
            (run_dir / "verify.json").unlink(missing_ok=True)  # it verified the rtl/ being replaced
        result = generate_design(intmodel, out, lanes=args.lanes, target_cycles=args.target_cycles,
                                 target_ii=args.target_ii, where=str(folder))
    cyc = result.manifest["cycles"]
    console.print(f"{result.verilog_path}  ({result.verilog_path.stat().st_size} bytes, "
                  f"sha256 {result.manifest['verilog']['sha256'][:16]})")
    console.print(f"{result.manifest_path}")
    table, lines = cycle_table(result.manifest, result.plan, title="engines (delay: cycles after the last input; "
                                                                   "interval: back to back, cycles per inference)")
    console.print(table)
    for r in result.manifest["registers"]:
        console.print(f"  register {r['addr']}: {r['engine']}.{r['setting']} ({r['lo']}..{r['hi']}, default {r['default']})")
    for line in lines:
        console.print(line)
    for line in fold_report(result.plan, target_cycles=args.target_cycles, target_ii=args.target_ii):
        console.print(f"[yellow]{line}[/yellow]" if "out of reach" in line else line)
    for reg, by_value in cyc["by_register"].items():
        console.print(f"  {reg}: " + ", ".join(f"{v}: {c}" for v, c in by_value.items()))
    if args.lint:
        res = lint(result.verilog_path)
        if not res.clean:
            console.print(res.output, markup=False)
            console.print(f"[red]verilator --lint-only -Wall: {res.errors} errors, undocumented warnings "
                          f"{', '.join(res.undocumented) or 'none'}[/red]")
            return 1
        console.print(f"verilator --lint-only -Wall: clean ({res.summary()}; each category documented as "
                      "harmless in cdsl.sim.lint.HARMLESS)")
    return 0
