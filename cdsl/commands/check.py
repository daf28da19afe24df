"""`cdsl check SPEC_OR_DESIGN [...]`: parse and check specs, print a table of per-layer figures, and say
which stages of the flow (train, export, hardware) can take each spec. Given a generated design (a
run folder with rtl/, or the rtl/ folder itself), it checks the design (`cdsl.sim.design.Design.load`)
and prints its engines: each layer's folding (lanes = SIMD, PE), cycles, back-to-back interval, and
the design's latency, initiation interval and frame memory.

Every problem a stage has with a spec is printed located (file:line:col, the line, a caret), all of
them in one run. Exit status 0 when every spec is valid and every stage can take it, 1 when a valid
spec is beyond some stage (training commands refuse it before training), 2 when a spec is invalid.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cdsl.dsl import parse_file
from cdsl.dsl.analysis import LayerStats, layer_stats, totals
from cdsl.dsl.printer import fmt_shape
from cdsl.errors import CdslError


def register(sub) -> None:
    p = sub.add_parser(
        "check",
        help="check specs and show per-layer shapes, parameters, MACs, bits, sparsity and mapping",
        description="Parse and check each SPEC; print a table per spec with totals and the compression ratio.",
    )
    p.add_argument("specs", nargs="+", metavar="SPEC_OR_DESIGN",
                   help="a .cdsl file, or a generated design (a run folder with rtl/, or an rtl/ folder)")
    p.set_defaults(func=run)


def _bits(b: int | None, has: bool) -> str:
    if not has:
        return "-"
    return "f32" if b is None else str(b)


def _row(s: LayerStats) -> list[str]:
    weighted = s.weights > 0
    return [
        s.name,
        s.op,
        fmt_shape(s.shape),
        f"{s.params:,}" if s.op != "input" else "-",
        f"{s.macs:,}" if s.op != "input" else "-",
        f"{_bits(s.w_bits, weighted)}/{'acc' if s.a_bits is None and s.w_bits == 1 else _bits(s.a_bits, True)}",
        s.sparsity,
        s.mapping,
    ]


def _kbit(bits: int) -> str:
    return f"{bits / 1000:,.1f} kbit"


def report(spec, name: str, console: Console) -> None:
    stats = layer_stats(spec)
    tot = totals(stats)
    table = Table(title=f"{spec.model.name}  ({name})", title_justify="left")
    for col, just in (
        ("layer", "left"), ("op", "left"), ("output", "left"), ("params", "right"), ("MACs", "right"),
        ("w/a bits", "right"), ("sparsity", "left"), ("mapping", "left"),
    ):
        table.add_column(col, justify=just, no_wrap=True)
    for s in stats:
        table.add_row(*_row(s))
    table.add_section()
    table.add_row("total", "", "", f"{tot.params:,}", f"{tot.macs:,}", "", "", "")
    console.print(table)
    console.print(
        f"weights: {tot.weights:,} ({tot.nonzero:,} nonzero); float32 {_kbit(tot.float_bits)} -> "
        f"compressed {_kbit(tot.compressed_bits)}: compression {tot.ratio:.1f}x"
    )
    t = spec.train
    stages = ", ".join(f"{st.name} {st.epochs}" for st in t.stages)
    console.print(
        f"train: {t.data}, {t.epochs} epochs" + (f" ({stages})" if stages else "")
        + f", batch {t.batch}, {t.optimizer.value} lr {t.lr:g}, seed {t.seed}"
    )


def run(args: argparse.Namespace) -> int:
    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120
    console = Console(width=max(width, 100), highlight=False, soft_wrap=False)
    status = 0
    for path in args.specs:
        if Path(path).is_dir():
            try:
                design_report(Path(path), console)
            except CdslError as err:
                print(str(err), file=sys.stderr)
                status = err.exit_code
            console.print()
            continue
        try:
            spec = parse_file(path)
        except CdslError as err:
            print(str(err), file=sys.stderr)
            status = err.exit_code
            continue
        report(spec, path, console)
        problems = stage_report(spec, path, console)
        if problems and status == 0:
            status = 1
        console.print()
    return status


def design_report(folder: Path, console: Console) -> None:
    """The engines of a generated design: folding, cycles, interval; latency, II and frame memory."""
    from cdsl.flow import cycle_table
    from cdsl.hw.plan import fold_report
    from cdsl.sim.design import Design, DesignError

    rtl = folder / "rtl" if (folder / "rtl").is_dir() else folder
    try:
        design = Design.load(rtl)
    except DesignError as err:
        raise CdslError(str(err), name=str(rtl)) from None
    opts = design.manifest["options"]
    given = ", ".join(f"--{k.replace('_', '-')} {opts[k]}" for k in ("target_cycles", "target_ii") if opts[k] is not None)
    table, lines = cycle_table(design.manifest, design.plan, title=f"{design.plan.name}  ({rtl}"
                               + (f", folded for {given}" if given else f", --lanes {opts['default_lanes']}") + ")")
    console.print(table)
    for line in lines:
        console.print(line)
    for line in fold_report(design.plan, target_cycles=opts["target_cycles"], target_ii=opts["target_ii"]):
        console.print(f"[yellow]{line}[/yellow]" if "out of reach" in line else line)


def stage_report(spec, path: str, console: Console) -> int:
    """Print which stages take the spec and every problem, located; return the number of problems."""
    from cdsl.dsl import load_source
    from cdsl.flow import STAGES, spec_problems

    source = load_source(path)
    problems = spec_problems(spec)
    blocked = {stage for stage, _ in problems}
    verdict = []
    for stage in STAGES:
        ok = not ({stage} | set(STAGES[:STAGES.index(stage)])) & blocked
        verdict.append(f"{stage} {'yes' if ok else 'no'}")
    for stage, err in problems:
        print(f"[{stage}] {err.located(source)}", file=sys.stderr)
    console.print(f"{path}: " + ("ok" if not problems else "valid, but not every stage takes it")
                  + f" ({', '.join(verdict)})")
    return len(problems)
