"""`cdsl bench [SPEC_OR_RUN_DIR]`: performance figures, printed (never asserted in tests).

For one trained network (default: examples/mlp.cdsl, trained first) it maps the same IntModel
three ways (as the spec says; every layer bit-parallel; every weighted layer bit-serial) and, for
each, at full precision and with bit-serial layers truncated to 4 bits: the cycle model's cycles per
inference, then N test samples in Verilator (checked bit-exact against golden) for simulated cycles
per inference, the RTL's accuracy and simulated cycles per second. (Truncating weights at run time
costs accuracy unless the layer was trained for it with `@trunc`.) `--flow` also times `cdsl run` on the spec with an
empty Verilator build cache (cold) and again with it filled (warm).
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
    p.add_argument("--flow", action="store_true", help="also time `cdsl run` cold (empty build cache) and warm")
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


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cdsl.contract.golden import quantize_input
    from cdsl.flow import generate_design, load_intmodel, resolve_run
    from cdsl.sim.cosim import verify
    from cdsl.sim.design import Design
    from cdsl.sw.evaluate import load_run

    console = Console(highlight=False, width=max(110, Console().width))
    with tempfile.TemporaryDirectory(prefix="cdsl-bench-") as tmp:
        run_dir = resolve_run(args.source, run_dir=Path(tmp) / "run", log=console.print)
        intmodel = load_intmodel(run_dir / "intmodel")
        _, _, data = load_run(run_dir)
        x = quantize_input(intmodel, data.x_test[:args.n])
        table = Table(title=f"{intmodel.name}: cycles per inference ({args.n} test samples simulated per row)")
        for col in ("mapping", "bit-serial layers", "precision", "predicted", "simulated", "bit-exact", "RTL accuracy",
                    "sim cycles/s"):
            table.add_column(col, justify="left" if col in ("mapping", "bit-serial layers") else "right")
        for k, (label, model) in enumerate(variants(intmodel, args.lanes)):
            generate_design(model, Path(tmp) / f"rtl{k}", lanes=args.lanes, target_cycles=None, where=label)
            design = Design.load(Path(tmp) / f"rtl{k}")
            serial = {r.node: r.setting.hi for r in design.plan.registers if r.setting.name == "precision"}
            for bits in ([None, 4] if serial else [None]):
                settings = {n: {"precision": min(bits, hi)} for n, hi in serial.items()} if bits else {}
                rep = verify(model, design, x, data.y_test[:args.n], settings=settings, localize=False)
                table.add_row(label, ", ".join(serial) or "-", "full" if not bits else f"{bits} bits",
                              str(rep.run.predicted_cycles), f"{float(rep.run.cycles.mean()):.0f}",
                              f"{rep.exact}/{rep.samples}", f"{100 * rep.rtl_accuracy:.1f}%",
                              f"{rep.run.cycles_per_second:,.0f}")
        console.print(table)
    if args.flow:
        spec = Path(args.source)
        if not spec.is_file():
            console.print("--flow needs a spec, not a run folder")
            return 2
        flow = Table(title=f"cdsl run {spec.name} (whole test split verified)")
        flow.add_column("Verilator build cache")
        flow.add_column("wall time", justify="right")
        with tempfile.TemporaryDirectory(prefix="cdsl-bench-cache-") as cache:
            for label in ("cold (empty)", "warm"):
                env = dict(os.environ, CDSL_CACHE=cache)
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "cdsl", "run", str(spec), "-o", str(Path(cache) / "run")],
                                      env=env, capture_output=True, text=True)
                seconds = time.perf_counter() - t0
                if proc.returncode != 0:
                    console.print(proc.stdout[-2000:] + proc.stderr[-2000:])
                    return 1
                flow.add_row(label, f"{seconds:.1f} s")
        console.print(flow)
    return 0
