"""`cdsl sweep SPEC --grid KEY=V1,V2,... [--address RAY_ADDRESS]`: a design-space sweep on Ray.

Every point of the grid (the product of the --grid axes) goes through train -> export -> gen ->
verify -> report in its own folder under SWEEP_DIR (default sweeps/<model name>); a finished point
is not run again, a failing one is reported and the others go on. Ends with a Pareto table
(accuracy, cycles, LUTs, energy) and plots in SWEEP_DIR/sweep.html, the data in sweep.json.
"""

from __future__ import annotations

from pathlib import Path

from cdsl.flow import EPOCHS, SAMPLES, SEED, bounded


def register(sub) -> None:
    from cdsl.commands.report import add_report_options
    from cdsl.report.grid import GRID_KEYS

    keys = "; ".join(f"{k}: {g.doc}" for k, g in GRID_KEYS.items())
    p = sub.add_parser("sweep", help="design-space sweep on Ray: every grid point trained, generated, verified, reported")
    p.add_argument("spec", help="the .cdsl file")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help=f"an axis of the grid (repeatable; LAYER.KEY for one layer). Keys: {keys}")
    p.add_argument("-o", "--output", metavar="SWEEP_DIR", help="folder of the points (default sweeps/<model name>)")
    p.add_argument("--address", metavar="RAY_ADDRESS", help="a Ray cluster to run on (default: local Ray on this machine)")
    p.add_argument("--cpus", type=bounded(1, 4096), help="CPUs of the local Ray (default: all); one point per CPU")
    p.add_argument("--epochs", type=EPOCHS, help="training epochs of every point (default: the spec's)")
    p.add_argument("--seed", type=SEED, help="training seed of every point (default: the spec's)")
    p.add_argument("--n", type=SAMPLES, metavar="N", help="test samples to verify per point (default: all)")
    add_report_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console

    from cdsl.dsl import load_source, parse_source
    from cdsl.report.grid import parse_grid, points
    from cdsl.report.sweep import run_sweep, write_sweep

    console = Console(highlight=False)
    axes = parse_grid(args.grid)
    source = load_source(args.spec)
    spec = parse_source(source)
    pts = points(spec, axes, args.spec)
    out = Path(args.output) if args.output else Path("sweeps") / spec.model.name
    run_opts = [*(["--epochs", str(args.epochs)] if args.epochs else []), *(["--seed", str(args.seed)] if args.seed is not None else []),
                *(["--n", str(args.n)] if args.n else [])]
    report_opts = ["--target", args.target, *(["--no-synth"] if args.no_synth else []),
                   *(["--no-pnr"] if args.no_pnr else []),
                   *(arg for opt, val in (("--cmos-table", args.cmos_table), ("--adc-table", args.adc_table),
                                          ("--aqfp-table", args.aqfp_table)) if val
                     for arg in (opt, str(Path(val).resolve())))]
    console.print(f"{len(pts)} grid point(s) of {args.spec} into {out}: "
                  + " x ".join(f"{a.key} {list(a.values)}" for a in axes))
    records = run_sweep(pts, out, run_opts=run_opts, report_opts=report_opts, address=args.address, cpus=args.cpus,
                        log=console.print)
    html_path, json_path, optimal = write_sweep(pts, records, axes, out, f"cdsl sweep: {spec.model.name}")
    console.print(points_table(pts, records, optimal))
    failed = sum(r["status"] != "ok" for r in records)
    console.print(f"sweep report: {html_path}\ndata: {json_path}"
                  + (f"\n[red]{failed} of {len(records)} point(s) failed[/red]" if failed else ""))
    return 1 if failed else 0


def points_table(pts, records, optimal):
    """The Pareto table printed at the end: per point golden accuracy, RTL bit-exact on the verified
    samples, cycles, LUT4, fmax and energy (a failed point: its error)."""
    from rich.table import Table

    from cdsl.report.html import si

    t = Table(title="points (* Pareto-optimal: accuracy, cycles, LUTs, energy)")
    t.add_column("point", justify="left", overflow="fold")  # a narrow terminal wraps a point's name, never cuts it
    for col in ("", "accuracy", "RTL bit-exact", "cycles", "LUT4", "fmax MHz", "energy"):
        t.add_column(col, justify="right")
    for p, r, o in zip(pts, records, optimal):
        s = r["summary"]
        if s is None:
            t.add_row(p.label, "", "failed", "", "", "", "", (r.get("error") or "")[:60])
        else:
            exact = f"{s['bit_exact']}/{s['rtl_samples']}" if s.get("rtl_samples") else "-"
            t.add_row(p.label, "*" if o else "", f"{100 * s['accuracy']:.2f}%", exact, f"{s['cycles']:g}",
                      str(s["luts"]) if s["luts"] is not None else "-", f"{s['fmax_mhz']:.1f}" if s["fmax_mhz"] else "-",
                      si(s["energy_j"], "J"))
    return t
