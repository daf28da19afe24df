"""Issue 15's token-pruning numbers, measured in simulation: cycles per inference of the ViT's RTL at
keep 1.0, 0.7 and 0.5, on real test samples.

    .venv/bin/python benchmarks/vit_keep.py RUN_DIR [--keeps 1.0,0.7,0.5] [--n N]

RUN_DIR is a trained ViT run folder (`cdsl train examples/vit.cdsl -o RUN_DIR`, or `cdsl run`); its
design is generated with the default options if it has no rtl/. For each keep ratio, every selector's
threshold is the one `cdsl eval RUN_DIR --keeps ...` computes (the integer score keeping that share of
the training split's candidates; 1.0: threshold 0), written to the selector's register (`--set
e2.threshold=T`: the same network.sv). The test samples (default: the whole test split) then run
through Verilator against the golden model at that threshold: the table gives bit-exact samples,
the measured keep ratio and mean tokens after each selector, the simulated cycles per inference
(mean, min, max), whether each sample's simulated cycles equal the cycle model's given its kept
counts, and the mean against keep 1.0's.

First it prints each engine's memory bits as the generated design's manifest states them (the plan's
figures): frame storage (token buffers, frame gates, attention's q/k/v/p memories, the selector's
token store), weight and bias ROMs, and the join FIFOs in front of the engine (sized by the plan for
back-to-back inferences).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cdsl.contract.golden import golden, quantize_input
from cdsl.contract.ref.encoder import selections
from cdsl.flow import load_design, load_run_intmodel
from cdsl.sim.cosim import token_counts, verify
from cdsl.sw.evaluate import load_run
from cdsl.sw.evaluations.tokens import selectors_of, keep_ratios, parse_keeps, thresholds_for, with_thresholds


def sweep_point(intmodel, x_train, x_test, keep: float):
    """Every selector's threshold for `keep`, as `cdsl eval --keeps` computes it (in layer order: a later
    selector keeps its share of what the earlier ones, at their new thresholds, left), and each
    selector's measured keep ratio on `x_test` at those thresholds (kept candidates / the candidates it
    was offered, as `cdsl eval` measures it)."""
    th = thresholds_for(intmodel, selectors_of(intmodel), x_train, keep)
    settings = {name: {"threshold": t} for name, t in th.items()}
    _, trace = golden(intmodel, x_test, settings=settings, trace=True)
    env = {**trace, **{i.name: x_test for i in intmodel.inputs}}
    return th, keep_ratios(selections(with_thresholds(intmodel, th), env))


def memory_table(design) -> Table:
    """Each engine's memory bits from the manifest (see the module docstring)."""
    plan, figures = design.plan, design.manifest["cycles"]["engines"]
    table = Table(title=f"{plan.name}: memory bits per engine (rtl/manifest.json)", title_justify="left")
    for col in ("engine", "frames", "ROMs", "join FIFOs", "total"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    sums = [0, 0, 0]
    for n in plan.nodes:
        f = figures[n.name]
        frames = int(f.get("frame_bits", 0))
        roms = int(f.get("weight_rom_bits", 0)) + int(f.get("bias_rom_bits", 0))
        fifos = sum(b.depth * (n.in_types[b.index].bits + 1) for b in plan.buffers if b.node == n.name)
        for k, v in enumerate((frames, roms, fifos)):
            sums[k] += v
        table.add_row(n.name, f"{frames:,}", f"{roms:,}", f"{fifos:,}", f"{frames + roms + fifos:,}")
    table.add_row("all", *(f"{v:,}" for v in sums), f"{sum(sums):,}")
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--keeps", default="1.0,0.7,0.5")
    ap.add_argument("--n", type=int, default=None, help="test samples (default: the whole test split)")
    args = ap.parse_args(argv)
    console = Console(highlight=False, width=max(Console().width, 140))
    keeps = parse_keeps(args.keeps)
    intmodel = load_run_intmodel(args.run_dir)
    design = load_design(args.run_dir, intmodel, log=console.print)
    _, _, data = load_run(args.run_dir)
    n = len(data.y_test) if args.n is None else args.n
    x_test = quantize_input(intmodel, data.x_test[:n])
    x_train = quantize_input(intmodel, data.x_train)
    if not selectors_of(intmodel):
        console.print(f"{args.run_dir}: no token selector in {intmodel.name!r}")
        return 2
    console.print(memory_table(design))
    table = Table(title=f"{intmodel.name}: cycles per inference in Verilator, {n} test samples", title_justify="left")
    for col in ("keep", "thresholds", "bit-exact", "measured keep", "mean tokens", "cycles mean", "min", "max",
                "= model per sample", "vs keep 1.0"):
        table.add_column(col, justify="left" if col == "keep" else "right")
    base = None
    for keep in keeps:
        th, ratios = sweep_point(intmodel, x_train, x_test, keep)
        settings = {name: {"threshold": t} for name, t in th.items()}
        t0 = time.perf_counter()
        with console.status(f"keep {keep:g}: simulating {n} samples"):
            rep = verify(intmodel, design, x_test, settings=settings, localize=False)
        counts = token_counts(intmodel, design, x_test, settings)
        cyc = rep.run.cycles
        mean = float(cyc.mean())
        base = mean if base is None else base
        kept = ", ".join(f"{r:.3f}" for r in ratios.values())
        table.add_row(f"{keep:g}", ", ".join(f"{k}={v}" for k, v in th.items()), f"{rep.exact}/{rep.samples}", kept,
                      ", ".join(f"{float(c.mean()):.2f}" for c in counts.values()), f"{mean:.1f}", str(int(cyc.min())),
                      str(int(cyc.max())), f"{rep.cycles_exact}/{rep.samples}", f"{mean / base:.3f}")
        console.print(f"keep {keep:g}: {rep.exact}/{rep.samples} bit-exact, cycles mean {mean:.1f} "
                      f"({time.perf_counter() - t0:.0f} s)")
    console.print(table)
    console.print("measured keep: kept candidates / candidates (the class and package tokens are not candidates); "
                  "mean tokens: tokens after the selector (class, kept, package)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
