"""`cdsl eval RUN_DIR`: float, compressed (fake-quant) and integer golden accuracy of a run."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("eval", help="accuracy table of a run folder (float, fake-quant, integer golden)")
    p.add_argument("run_dir", help="a folder written by `cdsl train`")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cdsl.errors import CdslError
    from cdsl.sw.evaluate import evaluate_run

    try:
        res = evaluate_run(args.run_dir)
    except ValueError as err:  # an integer model this cdsl cannot read (corrupt, or an older format)
        raise CdslError(f"cannot evaluate: {err}", name=str(args.run_dir)) from None

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"

    table = Table(title=f"{args.run_dir}: test split, {res['test_samples']} samples")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("float accuracy (float twin)", pct(res["float_acc"]))
    table.add_row("compressed accuracy (fake-quant)", pct(res["compressed_acc"]))
    table.add_row("integer golden accuracy", pct(res["golden_acc"]))
    table.add_row("golden = fake-quant predictions", pct(res["agreement"]))
    Console(highlight=False).print(table)
    return 0
