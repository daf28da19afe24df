"""`cdsl run SPEC [-o RUN_DIR]`: the main job: train -> export -> gen -> verify, in one command.

The run folder then holds everything `sim`, `verify` and `gen` take: spec.cdsl, checkpoint.pt,
metrics.json, intmodel/, rtl/ (network.sv, manifest.json) and verify.json, which records the
SHA-256 of the network.sv it verified. Exits 1 if the RTL differs from the golden model on any test
sample, or its cycles from the cycle model.
"""

from __future__ import annotations

import time
from pathlib import Path

from cdsl.flow import EPOCHS, SAMPLES, SEED, add_hw_options


def register(sub) -> None:
    p = sub.add_parser("run", help="the whole flow: train, export, generate RTL, verify it bit for bit")
    p.add_argument("spec", help="the .cdsl file")
    p.add_argument("-o", "--output", metavar="RUN_DIR", help="run folder (default: runs/<model name>)")
    p.add_argument("--epochs", type=EPOCHS, help="total training epochs (stages are rescaled in proportion)")
    p.add_argument("--seed", type=SEED, help="random seed (default: the spec's train seed)")
    p.add_argument("--n", type=SAMPLES, metavar="N", help="test samples to verify (default: the whole test split)")
    add_hw_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.rule import Rule

    from cdsl.commands.verify import verify_run
    from cdsl.flow import STAGES, generate_design, require_intmodel, require_samples, train_spec
    from cdsl.hw.plan import fold_report

    console = Console(highlight=False)
    t0 = time.perf_counter()
    reports = []
    warming = _warm_runtime_in_background()

    def generate_and_verify(stage: Path, result, run_dir: Path) -> None:
        require_intmodel(result, args.spec)
        m = result.metrics
        console.print(f"test accuracy: float {100 * m['float']['test_acc']:.2f}%, "
                      f"compressed {100 * m['compressed']['test_acc']:.2f}%, golden {100 * m['golden']['golden_acc']:.2f}%")
        console.print(Rule("2/3 generate RTL"))
        gen = generate_design(result.intmodel, stage / "rtl", lanes=args.lanes, target_cycles=args.target_cycles,
                              target_ii=args.target_ii, where=args.spec)
        cyc = gen.manifest["cycles"]
        console.print(f"rtl/network.sv ({gen.verilog_path.stat().st_size} bytes), "
                      f"predicted {cyc['cycles_per_inference']} cycles per inference, "
                      f"initiation interval {cyc['initiation_interval']} back to back (set by {cyc['bottleneck']})")
        for line in fold_report(gen.plan, target_cycles=args.target_cycles, target_ii=args.target_ii):
            console.print(line)
        console.print(Rule("3/3 verify RTL against the golden model in Verilator"))
        waited = time.perf_counter()
        warming.join()  # Verilator's runtime objects, compiled while training (see below)
        waited = time.perf_counter() - waited
        if waited >= 0.5:
            console.print(f"waited {waited:.1f} s for Verilator's runtime objects (compiled once per machine)")
        reports.append(verify_run(stage, n=args.n, settings={}, console=console, shown=run_dir, command="cdsl run"))

    console.print(Rule("1/3 train with compression in the loop, export the integer model"))
    run_dir, _ = train_spec(args.spec, Path(args.output) if args.output else None, epochs=args.epochs,
                            seed=args.seed, log=console.print, then=generate_and_verify, stages=STAGES,
                            check_data=lambda data: require_samples(args.n, data, "cdsl run"))
    console.print(Rule())
    console.print(f"run folder: {run_dir}  ({time.perf_counter() - t0:.1f} s)")
    console.print(f"cost report (LUTs, fmax, energy, plots): cdsl report {run_dir}  -> {run_dir / 'report' / 'report.html'}")
    return 0 if reports[0].passed else 1


def _warm_runtime_in_background():
    """Compile Verilator's runtime objects (the same for every design; ~20 s of CPU once per machine
    and tool version) while training runs, so the verification's build only compiles the design
    (`cdsl.sim.build.warm_runtime`). A daemon thread: an interrupt does not wait for it (its
    compiler runs under the reaper and dies with this process). Any failure is left to the
    verification's own build, which reports it properly."""
    import threading

    def warm():
        try:
            from cdsl.sim.build import warm_runtime

            warm_runtime()
        except Exception:  # noqa: BLE001 - the verification's build reports any problem itself
            pass

    thread = threading.Thread(target=warm, name="cdsl-warm-verilator", daemon=True)
    thread.start()
    return thread
