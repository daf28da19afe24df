"""`cdsl bench [SPEC_OR_RUN_DIR]`: performance figures, printed (never asserted in tests).

For one trained network (default: examples/mlp.cdsl, trained first) it maps the same IntModel
three ways (as the spec says; every layer bit-parallel; every weighted layer bit-serial) and, for
each, at full precision and with bit-serial layers truncated to 4 bits: the cycle model's cycles per
inference, then N test samples in Verilator (checked bit-exact against golden) for simulated cycles
per inference, the RTL's accuracy and simulated cycles per second. (Truncating weights at run time
costs accuracy unless the layer was trained for it with `@trunc`.) `--flow` also times `cdsl run` on the spec with an
empty Verilator build cache (cold) and again with it filled (warm), with the seconds it spent on
Verilator after training (waiting for the runtime objects it compiled while training, then building)
against the bare build below.

Co-verification speed (always; `--speed` prints only this): `cdsl verify`'s simulated cycles per
second on the whole test split against a bare C++ Verilator loop over the same `network.sv`
(`cdsl.sim.bare_loop`: `-O3`, valid always high, output always ready, no cocotb), which this
command builds itself, and their ratio; the bare loop's cycles per inference back to back beside
the cycle model's latency, its slowest engine and its initiation interval (when the plan has one).
With `--flow`, also the Verilator build of that verification, cold (an empty cache) and for a new
design with Verilator's runtime objects cached, against a bare `verilator --build -O3` of the same
Verilog (uncached), and their ratios. Every ratio is taken within one run.
"""

from __future__ import annotations

from cdsl.flow import SAMPLES, bounded

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "examples" / "mlp.cdsl"


def register(sub) -> None:
    p = sub.add_parser("bench", help="print performance figures: cycles per inference, simulation speed, flow wall time")
    p.add_argument("source", nargs="?", default=str(DEFAULT_SPEC), metavar="SPEC_OR_RUN_DIR",
                   help="a run folder or a spec (trained first); default examples/mlp.cdsl")
    p.add_argument("--n", type=SAMPLES, default=100, help="test samples simulated per variant (default 100)")
    p.add_argument("--lanes", type=bounded(1, 65536), default=8, help="lanes of every engine without bitserial(lanes=...) (default 8)")
    p.add_argument("--flow", action="store_true", help="also time `cdsl run` cold (empty build cache) and warm, and "
                   "the verification's Verilator build against a bare `verilator --build -O3`")
    p.add_argument("--speed", action="store_true", help="only the co-verification speed figures (and, with --flow, "
                   "the build times), not the three mappings")
    p.set_defaults(func=run)


def variants(intmodel, lanes: int):
    """(label, IntModel) for the three mappings of the same integer model (cores swapped; same weights)."""
    import dataclasses

    from cdsl.contract.intmodel import replace_payload
    from cdsl.contract.ref.bitserial_mac import BitSerialCore
    from cdsl.contract.ref.mac import ParallelCore

    def remap(core_for):
        layers = tuple(replace_payload(lay, core=core_for(lay.payload.core)) if hasattr(lay.payload, "core") else lay
                       for lay in intmodel.layers)
        return dataclasses.replace(intmodel, layers=layers)

    return [
        ("as specified", intmodel),
        ("all bit-parallel", remap(lambda core: ParallelCore())),
        ("all bit-serial", remap(lambda core: BitSerialCore(lanes=core.lanes or lanes))),  # keeps a spec's lanes
    ]


def _interval_of_plan(design) -> int:
    """The cycle model's initiation interval (`cdsl.hw.plan.initiation_interval`, also in the manifest)."""
    from cdsl.hw.plan import initiation_interval

    return initiation_interval(design.plan)[0]


def speed_figures(console, intmodel, run_dir: Path, data, tmp: Path, *, lanes: int, flow: bool) -> None:
    """Print `cdsl verify` vs the bare C++ loop (and with `flow`, build times); see the module docstring."""
    from rich.table import Table

    from cdsl.contract.golden import quantize_input
    from cdsl.flow import load_design
    from cdsl.hw.plan import cycle_report, network_cycles, token_nodes
    from cdsl.sim.bare_loop import build_bare_loop, run_bare_loop
    from cdsl.sim.cosim import simulate, verify

    design = load_design(run_dir, intmodel, log=console.print)
    x = quantize_input(intmodel, data.x_test)
    with console.status("building the bare C++ loop and verifying the whole test split"):
        bare = build_bare_loop(design)
        rep = verify(intmodel, design, x, data.y_test, localize=False)
        cycles = max(rep.run.total_cycles, 2_000_000)
        stream = run_bare_loop(bare, mode="stream", cycles=cycles)
        before = simulate(design, x, batch=1, sim_clock=False)
    verdict = "bit-exact" if rep.passed else f"NOT bit-exact ({rep.exact}/{rep.samples}, cycles {rep.cycles_exact})"
    table = Table(title=f"{intmodel.name}: co-verification speed (one run, this machine)")
    for col in ("simulation", "cycles", "seconds", "cycles/s", "vs bare loop"):
        table.add_column(col, justify="left" if col == "simulation" else "right")
    table.add_row(f"cdsl verify, {rep.samples} samples ({verdict})", f"{rep.run.total_cycles:,}",
                  f"{rep.run.sim_seconds:.2f}", f"{rep.run.cycles_per_second:,.0f}",
                  f"{rep.run.cycles_per_second / stream.cycles_per_second:.2f}x")
    table.add_row("  the previous way: a Python wake-up per sample, cocotb's clock", f"{before.total_cycles:,}",
                  f"{before.sim_seconds:.2f}", f"{before.cycles_per_second:,.0f}",
                  f"{before.cycles_per_second / stream.cycles_per_second:.2f}x")
    table.add_row("bare C++ Verilator loop (-O3, valid high, ready high)", f"{stream.cycles:,}",
                  f"{stream.seconds:.2f}", f"{stream.cycles_per_second:,.0f}", "1.00x")
    console.print(table)
    report = cycle_report(design.plan)
    slowest = max((f.get("delay", 0) for f in report["engines"].values()), default=0)
    ii = _interval_of_plan(design)
    interval = f"{stream.interval:,.1f}" if stream.interval is not None else "-"
    console.print(f"back to back (bare loop, {stream.inferences} inferences): {interval} cycles per inference; "
                  f"model: latency {network_cycles(design.plan)}, slowest engine {slowest}, "
                  f"II {ii if ii is not None else '- (no throughput model in this plan)'}; "
                  f"first inference {stream.first_latency} cycles")
    selectors = token_nodes(design.plan)
    if selectors:
        console.print(f"  ({', '.join(selectors)} keep{'s' if len(selectors) == 1 else ''} a data-dependent number of "
                      "tokens: the bare loop's random words prune as they happen to score, so its cycles are not "
                      "the model's, which are at full token counts; `cdsl verify` above holds every test sample's "
                      "cycles to the model at that sample's kept counts)")
    return build_figures(console, design, tmp) if flow else None


def verilator_after_training(log: str) -> float:
    """Seconds `cdsl run` spent on Verilator after training, from its output: the wait for the runtime
    objects (`waited N s ...`, absent when none) plus the build (`Verilator build N s`; 0 when cached)."""
    import re

    waited = re.search(r"waited ([0-9.]+) s for Verilator", log)
    built = re.search(r"Verilator build ([0-9.]+) s", log)
    return (float(waited[1]) if waited else 0.0) + (float(built[1]) if built else 0.0)


def build_figures(console, design, tmp: Path) -> float:
    """The verification's Verilator build, cold and with cached runtime objects, vs a bare build."""
    import shutil

    from rich.table import Table

    from cdsl.hw.verilog_text import verilog_text
    from cdsl.sim.bare_loop import build_bare_loop
    from cdsl.sim.build import BuildOptions, build_verilog
    from cdsl.sim.cosim import TOP, batch_size, harness_for

    harness = harness_for(design, probes=False, samples=batch_size(design))
    sources = (verilog_text(harness, name=TOP), design.verilog)
    options = BuildOptions(sim_clock=True)
    cache = tmp / "build-cache"
    with console.status("timing Verilator builds (cold, runtime cached, bare)"):
        cold = build_verilog(verilog=sources, toplevel=TOP, options=options, cache_dir=cache)
        shutil.rmtree(cold.directory)  # the design's build goes, Verilator's runtime objects stay
        warm = build_verilog(verilog=sources, toplevel=TOP, options=options, cache_dir=cache)
        bare = build_bare_loop(design, cache=False, cache_dir=tmp / "bare-cache")
    table = Table(title="Verilator build of the verification (same network.sv, one run)")
    for col in ("build", "seconds", "vs bare"):
        table.add_column(col, justify="left" if col == "build" else "right")
    table.add_row("cdsl (cocotb harness), empty cache", f"{cold.seconds:.1f}", f"{cold.seconds / bare.seconds:.2f}x")
    table.add_row("cdsl (cocotb harness), a new design, Verilator runtime cached", f"{warm.seconds:.1f}",
                  f"{warm.seconds / bare.seconds:.2f}x")
    table.add_row("bare `verilator --build -O3` (C++ loop, uncached)", f"{bare.seconds:.1f}", "1.00x")
    console.print(table)
    console.print("`cdsl run` compiles Verilator's runtime objects while it trains (`warm_runtime`), so with an "
                  "empty cache it waits for what is left of that, then builds as in the second row (the "
                  "`cdsl run` table below)")
    return bare.seconds


def run(args) -> int:
    from rich.console import Console

    from cdsl.contract.golden import quantize_input
    from cdsl.flow import load_intmodel, resolve_run
    from cdsl.sw.evaluate import load_run

    console = Console(highlight=False, width=max(110, Console().width))
    with tempfile.TemporaryDirectory(prefix="cdsl-bench-") as tmp:
        run_dir = resolve_run(args.source, run_dir=Path(tmp) / "run", log=console.print)
        intmodel = load_intmodel(run_dir / "intmodel")
        _, _, data = load_run(run_dir)
        x = quantize_input(intmodel, data.x_test[:args.n])
        bare_build = speed_figures(console, intmodel, run_dir, data, Path(tmp), lanes=args.lanes, flow=args.flow)
        if not args.speed:
            mappings_table(console, intmodel, data, x, Path(tmp), n=args.n, lanes=args.lanes)
    if args.flow:
        return flow_table(console, Path(args.source), bare_build)
    return 0


def mappings_table(console, intmodel, data, x, tmp: Path, *, n: int, lanes: int) -> None:
    """Cycles per inference, predicted and simulated, for the three mappings (see the module docstring)."""
    from rich.table import Table

    from cdsl.flow import generate_design
    from cdsl.sim.cosim import verify
    from cdsl.sim.design import Design

    table = Table(title=f"{intmodel.name}: cycles per inference ({n} test samples simulated per row)")
    for col in ("mapping", "bit-serial layers", "precision", "predicted", "simulated", "bit-exact", "RTL accuracy",
                "sim cycles/s"):
        table.add_column(col, justify="left" if col in ("mapping", "bit-serial layers") else "right")
    for k, (label, model) in enumerate(variants(intmodel, lanes)):
        generate_design(model, tmp / f"rtl{k}", lanes=lanes, target_cycles=None, where=label)
        design = Design.load(tmp / f"rtl{k}")
        serial = {r.node: r.setting.hi for r in design.plan.registers if r.setting.name == "precision"}
        for bits in ([None, 4] if serial else [None]):
            settings = {node: {"precision": min(bits, hi)} for node, hi in serial.items()} if bits else {}
            rep = verify(model, design, x, data.y_test[:n], settings=settings, localize=False)
            table.add_row(label, ", ".join(serial) or "-", "full" if not bits else f"{bits} bits",
                          str(rep.run.predicted_cycles), f"{float(rep.run.cycles.mean()):.0f}",
                          f"{rep.exact}/{rep.samples}", f"{100 * rep.rtl_accuracy:.1f}%",
                          f"{rep.run.cycles_per_second:,.0f}")
    console.print(table)


def flow_table(console, spec: Path, bare_build: float | None) -> int:
    """`cdsl run SPEC` timed with an empty Verilator cache and again with it filled, and the time it
    spent on Verilator after training against the bare build (`bare_build` seconds)."""
    from rich.table import Table

    if not spec.is_file():
        console.print("--flow needs a spec, not a run folder")
        return 2
    flow = Table(title=f"cdsl run {spec.name} (whole test split verified)")
    flow.add_column("Verilator build cache")
    flow.add_column("wall time", justify="right")
    flow.add_column("Verilator after training (waited + built)", justify="right")
    flow.add_column("vs bare build", justify="right")
    with tempfile.TemporaryDirectory(prefix="cdsl-bench-cache-") as cache:
        for label in ("cold (empty)", "warm"):
            env = dict(os.environ, CDSL_CACHE=cache, COLUMNS="400")
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "cdsl", "run", str(spec), "-o", str(Path(cache) / "run")],
                                  env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if proc.returncode != 0:
                console.print(proc.stdout[-2000:] + proc.stderr[-2000:])
                return 1
            after = verilator_after_training(proc.stdout)
            flow.add_row(label, f"{seconds:.1f} s", f"{after:.1f} s",
                         f"{after / bare_build:.2f}x" if bare_build else "-")
    console.print(flow)
    return 0
