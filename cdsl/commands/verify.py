"""`cdsl verify SPEC_OR_RUN_DIR [--n N]`: golden model vs RTL in Verilator, bit for bit.

Runs N test samples (default: the whole test split) through the generated network in Verilator
and compares every output word with the integer golden model. Prints `N/N bit-exact`, cycles per
inference (simulated vs the cycle model) and the RTL's accuracy; exits 1 on any mismatch, naming
the first mismatching sample, element, and the first layer whose output differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from cdsl.flow import add_hw_options, add_precision_option

if TYPE_CHECKING:
    from cdsl.sim.cosim import VerifyReport


def register(sub) -> None:
    p = sub.add_parser("verify", help="check the RTL against the golden model, bit for bit, in Verilator")
    p.add_argument("source", metavar="SPEC_OR_RUN_DIR", help="a run folder with intmodel/, or a .cdsl spec (trained first)")
    p.add_argument("--n", type=int, metavar="N", help="test samples to check (default: the whole test split)")
    add_hw_options(p)
    add_precision_option(p)
    p.add_argument("--run-dir", metavar="RUN_DIR", help="where to train a spec (default runs/<model name>)")
    p.add_argument("--epochs", type=int, help="epochs when training a spec")
    p.set_defaults(func=run)


def verify_run(run_dir: Path, *, n: int | None, precisions: dict[str, int], lanes: int, target_cycles: int | None,
               console) -> VerifyReport:
    """Verify a run folder's IntModel on its test split; print the report; write run_dir/verify.json."""
    from cdsl.errors import CdslError
    from cdsl.flow import hardware_error, progress_bar
    from cdsl.hw.plan import UnsupportedModel
    from cdsl.sim.cosim import verify
    from cdsl.sw.evaluate import load_run
    from cdsl.contract.golden import quantize_input
    from cdsl.contract.intmodel import IntModel

    intmodel = IntModel.load(run_dir / "intmodel")
    _, _, data = load_run(run_dir)
    total = len(data.y_test) if n is None else n
    if not 1 <= total <= len(data.y_test):
        raise CdslError(f"--n {n}: the test split has {len(data.y_test)} samples", name="cdsl verify")
    x = quantize_input(intmodel, data.x_test[:total])
    with progress_bar(console, total) as progress:
        try:
            report = verify(intmodel, x, data.y_test[:total], precisions=precisions, default_lanes=lanes,
                            target_cycles=target_cycles, progress=progress)
        except (UnsupportedModel, ValueError) as err:
            raise hardware_error(intmodel.name, err, str(run_dir)) from None
    r = report.run
    mean_cycles = float(r.cycles.mean())
    verdict = "[green]bit-exact[/green]" if report.passed else "[red]bit-exact[/red]"
    console.print(f"{report.exact}/{report.samples} {verdict}  ({intmodel.name}"
                  + (f", precisions {precisions}" if precisions else "") + ")")
    console.print(f"cycles per inference: simulated {mean_cycles:.0f}, predicted {r.predicted_cycles} "
                  f"({100 * report.cycle_error:.2f}% apart)")
    console.print(f"RTL accuracy {100 * report.rtl_accuracy:.2f}% (golden {100 * report.golden_accuracy:.2f}%) "
                  f"on {report.samples} test samples")
    console.print(f"simulation: {r.total_cycles} cycles in {r.sim_seconds:.2f} s = {r.cycles_per_second:,.0f} cycles/s; "
                  f"Verilator build {'cached' if r.cache_hit else f'{r.build_seconds:.1f} s'}")
    if report.first_mismatch is not None:
        console.print(f"[red]first mismatch:[/red] {report.first_mismatch}")
        if report.first_bad_layer:
            console.print(f"[red]first layer that differs from golden:[/red] {report.first_bad_layer}")
    summary = {
        "samples": report.samples, "bit_exact": report.exact, "precisions": precisions,
        "cycles_simulated_mean": mean_cycles, "cycles_predicted": r.predicted_cycles,
        "rtl_accuracy": report.rtl_accuracy, "golden_accuracy": report.golden_accuracy,
        "sim_cycles_per_second": r.cycles_per_second, "first_mismatch": str(report.first_mismatch or ""),
        "first_bad_layer": report.first_bad_layer, "seed": r.seed,
    }
    (run_dir / "verify.json").write_text(json.dumps(summary, indent=1) + "\n")
    return report


def run(args) -> int:
    from rich.console import Console

    from cdsl.flow import parse_precisions, resolve_run

    console = Console(highlight=False)
    precisions = parse_precisions(args.precision)
    run_dir = resolve_run(args.source, run_dir=args.run_dir, epochs=args.epochs, log=console.print)
    report = verify_run(run_dir, n=args.n, precisions=precisions, lanes=args.lanes,
                        target_cycles=args.target_cycles, console=console)
    return 0 if report.passed else 1
