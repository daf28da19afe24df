"""`cdsl eval RUN_DIR`: float, compressed (fake-quant) and integer golden accuracy of a run."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("eval", help="accuracy table of a run folder (float, fake-quant, integer golden)")
    p.add_argument("run_dir", help="a folder written by `cdsl train`")
    from cdsl.sw.evaluations import cli_options

    for name, help_ in cli_options().items():  # options of the annotations' evaluation sections
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"eval_{name}", metavar="VALUE", help=help_)
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cdsl.errors import CdslError
    from cdsl.sw.evaluate import evaluate_run

    from cdsl.sw.evaluations import cli_options

    options = {name: getattr(args, f"eval_{name}") for name in cli_options()}
    from pathlib import Path

    from cdsl.files import locked

    console = Console(highlight=False)
    try:
        with locked(Path(args.run_dir), shared=True):
            res = evaluate_run(args.run_dir, options=options, log=console.print)
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
    per_output = res.get("golden_acc_per_output") or {}
    if len(per_output) > 1:  # several heads: the rows above are the first output's; each head's golden accuracy
        for name, acc in per_output.items():
            table.add_row(f"  integer golden accuracy, output {name}", pct(acc))
    table.add_row("golden = fake-quant predictions", pct(res["agreement"]))
    console.print(table)
    for section in res["sections"]:
        extra = Table(title=section.title)
        for col in section.columns:
            extra.add_column(col, justify="left" if col == section.columns[0] else "right")
        for row in section.rows:
            extra.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
        console.print(extra)
        for note in section.notes:
            console.print(note)
    return 0
