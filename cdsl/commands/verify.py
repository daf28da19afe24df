"""`cdsl verify SPEC_OR_RUN_DIR [--n N]`: golden model vs the generated RTL in Verilator, bit for bit.

Simulates the run folder's `rtl/network.sv` exactly as `cdsl gen` wrote it (generated first with the
default options if the folder has no rtl/), checked by the SHA-256 in its manifest, on N test
samples (default: the whole test split), and compares every output word with the integer golden
model at the same runtime settings. Prints `N/N bit-exact`, the SHA-256 of the Verilog it
simulated, cycles per inference (simulated vs the cycle model) and the RTL's accuracy; exits 1 on
any mismatch, naming the first mismatching sample and element, and the first engine whose output
differs. Writes verify.json into the run folder.

A model whose layers do not all have RTL yet, but which holds blocks that do (`cdsl.sim.blocks`: a
token selector in front of an encoder), is verified block by block instead: each block's RTL runs on
the golden model's own tensors at its input, for every sample, the layers around it in the golden
model; the verdicts go to verify_blocks.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from cdsl.flow import EPOCHS, SAMPLES, add_settings_options, add_simulator_option

if TYPE_CHECKING:
    from cdsl.sim.cosim import VerifyReport


def register(sub) -> None:
    p = sub.add_parser("verify", help="check the generated RTL against the golden model, bit for bit, in Verilator")
    p.add_argument("source", metavar="SPEC_OR_RUN_DIR", help="a run folder with intmodel/, or a .cdsl spec (trained first)")
    p.add_argument("--n", type=SAMPLES, metavar="N", help="test samples to check (default: the whole test split)")
    add_settings_options(p)
    add_simulator_option(p)
    p.add_argument("--run-dir", metavar="RUN_DIR", help="where to train a spec (default runs/<model name>)")
    p.add_argument("--epochs", type=EPOCHS, help="epochs when training a spec")
    p.set_defaults(func=run)


def verify_run(run_dir: Path, *, n: int | None, settings: dict[str, dict[str, int]], console,
               shown: Path | None = None, simulator: str = "verilator", command: str = "cdsl verify") -> VerifyReport:
    """Verify a run folder's rtl/ against its IntModel on its test split; print the report; write verify.json.

    `shown`: the folder to name in messages (the run folder, when `run_dir` is its staging folder)."""
    from cdsl.contract.golden import quantize_input
    from cdsl.flow import design_settings, load_design, load_run_intmodel, progress_bar, require_samples
    from cdsl.sim.cosim import verify
    from cdsl.sw.evaluate import load_run

    intmodel = load_run_intmodel(run_dir)
    design = load_design(run_dir, intmodel, log=console.print)
    settings = design_settings(design, settings, str(run_dir))
    _, _, data = load_run(run_dir)
    total = require_samples(n, data, command)
    x = quantize_input(intmodel, data.x_test[:total])
    with progress_bar(console, total) as progress:
        report = verify(intmodel, design, x, data.y_test[:total], settings=settings, progress=progress,
                        simulator=simulator)
    r = report.run
    mean_cycles = float(r.cycles.mean())
    verdict = "[green]bit-exact[/green]" if report.exact == report.samples else "[red]bit-exact[/red]"
    console.print(f"{report.exact}/{report.samples} {verdict}  ({intmodel.name}"
                  + (f", settings {settings}" if settings else "") + ")")
    console.print(f"verified {(shown or run_dir) / 'rtl' / 'network.sv'} (sha256 {design.sha256})", soft_wrap=True)
    cycle_verdict = "" if report.cycles_exact == report.samples else \
        f" [red]({report.samples - report.cycles_exact} samples differ from the model)[/red]"
    predicted = r.predicted_per_sample
    if r.predicted is None:
        console.print(f"cycles per inference: simulated {mean_cycles:.0f}, predicted {r.predicted_cycles}{cycle_verdict}")
    else:  # data-dependent token counts: the model per sample, from its kept tokens in the golden trace
        console.print(f"cycles per inference: simulated mean {mean_cycles:.1f} (min {int(r.cycles.min())}, max "
                      f"{int(r.cycles.max())}), predicted per sample from its kept tokens: mean {predicted.mean():.1f}; "
                      f"equal on {report.cycles_exact}/{report.samples}{cycle_verdict} "
                      f"(at full token counts: {r.predicted_cycles})")
    console.print(f"RTL accuracy {100 * report.rtl_accuracy:.2f}% (golden {100 * report.golden_accuracy:.2f}%) "
                  f"on {report.samples} test samples")
    per_output = report.accuracy_per_output or {}
    if len(per_output) > 1:  # several heads: the line above is the first output's
        console.print("RTL accuracy per output: " + ", ".join(
            f"{name} {100 * rtl:.2f}% (golden {100 * gold:.2f}%)" for name, (rtl, gold) in per_output.items()))
    console.print(f"simulation: {r.total_cycles} cycles in {r.sim_seconds:.2f} s = {r.cycles_per_second:,.0f} cycles/s; "
                  f"{r.build_note}")
    if report.first_mismatch is not None:
        console.print(f"[red]first mismatch:[/red] {report.first_mismatch}")
        if report.first_bad_layer:
            console.print(f"[red]first layer that differs from golden:[/red] {report.first_bad_layer}")
    summary = {
        "samples": report.samples, "bit_exact": report.exact, "cycles_exact": report.cycles_exact,
        "settings": settings, "simulator": simulator, "verilog": "rtl/network.sv", "verilog_sha256": design.sha256,
        "intmodel_sha256": design.manifest["intmodel_sha256"],
        "cycles_simulated_mean": mean_cycles, "cycles_predicted": r.predicted_cycles,
        "cycles_predicted_mean": float(predicted.mean()),
        "rtl_accuracy": report.rtl_accuracy, "golden_accuracy": report.golden_accuracy,
        "accuracy_per_output": {name: {"rtl": rtl, "golden": gold}
                                for name, (rtl, gold) in (report.accuracy_per_output or {}).items()},
        "sim_cycles_per_second": r.cycles_per_second, "first_mismatch": str(report.first_mismatch or ""),
        "first_bad_layer": report.first_bad_layer, "seed": r.seed,
    }
    tmp = run_dir / "verify.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    tmp.replace(run_dir / "verify.json")
    return report


def verify_blocks_run(run_dir: Path, intmodel, *, n: int | None, settings: dict[str, dict[str, int]], console,
                      why: str) -> bool:
    """Verify the blocks of a model without a whole-network RTL on its test split (see the module
    docstring); print one line per block; write verify_blocks.json. True when every block agrees."""
    from cdsl.contract.golden import quantize_input
    from cdsl.errors import CdslError
    from cdsl.flow import require_samples
    from cdsl.sim.blocks import verify_blocks
    from cdsl.sw.evaluate import load_run

    try:
        checked = intmodel.check_settings(settings)
    except ValueError as err:
        raise CdslError(str(err), name=str(run_dir)) from None
    _, _, data = load_run(run_dir)
    total = require_samples(n, data, "cdsl verify")
    console.print(f"no whole-network RTL ({why}): verifying its hardware blocks on the golden model's tensors, "
                  f"the other layers in the golden model")
    with console.status(f"simulating the blocks on {total} samples"):
        reports = verify_blocks(intmodel, quantize_input(intmodel, data.x_test[:total]), settings=checked)
    for r in reports:
        console.print(("[green]ok[/green] " if r.ok else "[red]MISMATCH[/red] ") + r.summary())
        for line in r.mismatches[:5]:
            console.print(f"  [red]sample {line}[/red]")
    summary = {"samples": total, "settings": checked, "reason": why,
               "blocks": [{"name": r.name, "ok": r.ok, "summary": r.summary(), "mismatches": r.mismatches[:20]}
                          for r in reports]}
    tmp = run_dir / "verify_blocks.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    tmp.replace(run_dir / "verify_blocks.json")
    return all(r.ok for r in reports)


def run(args) -> int:
    from rich.console import Console

    from cdsl.files import locked
    from cdsl.flow import load_run_intmodel, parse_settings, require_samples, resolve_run
    from cdsl.sim.blocks import blocks_of, missing_hardware

    console = Console(highlight=False)
    settings = parse_settings(args)
    run_dir = resolve_run(args.source, run_dir=args.run_dir, epochs=args.epochs, log=console.print,
                          check_data=lambda data: require_samples(args.n, data, "cdsl verify"))
    with locked(run_dir):
        intmodel = load_run_intmodel(run_dir)
        why = missing_hardware(intmodel)
        if why is not None and blocks_of(intmodel) and not (run_dir / "rtl").exists():
            if args.simulator != "verilator":
                from cdsl.errors import CdslError

                raise CdslError(f"--simulator {args.simulator}: the hardware blocks of a model without "
                                "whole-network RTL are verified in Verilator only", name=str(run_dir))
            ok = verify_blocks_run(run_dir, intmodel, n=args.n, settings=settings, console=console, why=why)
            return 0 if ok else 1
        report = verify_run(run_dir, n=args.n, settings=settings, console=console, simulator=args.simulator)
    return 0 if report.passed else 1
