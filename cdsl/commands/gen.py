"""`cdsl gen SPEC_OR_RUN_DIR -o OUT`: the network's Verilog and manifest from an integer model.

Given a run folder (written by `cdsl train`, holding `intmodel/`), it generates from that
IntModel. Given a `.cdsl` spec, it trains first (as `cdsl train SPEC -o RUN_DIR` would,
into `--run-dir`, default runs/<model name>) and then generates. OUT receives `network.v`
and `manifest.json` (see `cdsl.hw.generate`).
"""

from __future__ import annotations

from cdsl.flow import add_hw_options


def register(sub) -> None:
    p = sub.add_parser("gen", help="generate the network's Verilog and manifest (from a run folder, or train a spec first)")
    p.add_argument("source", metavar="SPEC_OR_RUN_DIR", help="a run folder with intmodel/, or a .cdsl spec (trained first)")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="folder for network.v and manifest.json")
    add_hw_options(p)
    p.add_argument("--run-dir", metavar="RUN_DIR", help="where to train a spec (default runs/<model name>)")
    p.add_argument("--epochs", type=int, help="epochs when training a spec")
    p.add_argument("--lint", action="store_true", help="run verilator --lint-only on the result")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console

    from cdsl.flow import hardware_error, resolve_intmodel
    from cdsl.hw.generate import generate, lint
    from cdsl.hw.plan import UnsupportedModel
    from cdsl.contract.intmodel import IntModel

    console = Console(highlight=False)
    folder = resolve_intmodel(args.source, run_dir=args.run_dir, epochs=args.epochs, log=console.print)
    intmodel = IntModel.load(folder)
    try:
        result = generate(intmodel, args.output, default_lanes=args.lanes, target_cycles=args.target_cycles)
    except (UnsupportedModel, ValueError, TypeError) as err:
        raise hardware_error(intmodel.name, err, str(folder)) from None
    cyc = result.manifest["cycles"]
    console.print(f"{result.verilog_path}  ({result.verilog_path.stat().st_size} bytes)")
    console.print(f"{result.manifest_path}")
    for e in result.plan.engines:
        extra = f", {e.lanes} lanes" + (", bit-serial" if e.bitserial else "") if e.weighted else ""
        console.print(f"  {e.name}: {e.kind.value} {list(e.in_shape)} -> {list(e.out_shape)}{extra}, "
                      f"{cyc['engines'][e.name]['mac_cycles']} MAC cycles")
    console.print(f"predicted cycles per inference: {cyc['cycles_per_inference']}")
    for p, c in cyc["by_precision"].items():
        console.print(f"  bit-serial layers at {p} bits: {c}")
    if args.lint:
        res = lint(result.verilog_path)
        if res.returncode != 0:
            console.print(res.stdout + res.stderr)
            console.print("[red]verilator lint failed[/red]")
            return 1
        console.print("verilator --lint-only: clean (WIDTH waivers only)")
    return 0
