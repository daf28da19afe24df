"""`cdsl train SPEC [-o RUN_DIR] [--epochs N] [--seed S]`: train with compression in the loop, export."""

from __future__ import annotations

from cdsl.flow import EPOCHS, SEED, bounded

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("train", help="train the spec's network (float twin + compressed) and export the integer model")
    p.add_argument("spec", help="the .cdsl file")
    p.add_argument("-o", "--output", metavar="RUN_DIR", help="run folder (default: runs/<model name>)")
    p.add_argument("--epochs", type=EPOCHS, help="total epochs (stages are rescaled in proportion)")
    p.add_argument("--seed", type=SEED, help="random seed (default: the spec's train seed)")
    p.add_argument("--threads", type=bounded(1, 256), default=1, help="torch CPU threads (default 1: these models are too small to gain from more)")
    p.add_argument("--no-float", action="store_true", help="skip the float twin (no float accuracy)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console

    from cdsl.flow import train_spec

    console = Console(highlight=False)
    run_dir, result = train_spec(args.spec, Path(args.output) if args.output else None, epochs=args.epochs,
                                 seed=args.seed, float_twin=not args.no_float, threads=max(1, args.threads),
                                 log=console.print)
    seconds = result.metrics["wall_seconds"]
    m = result.metrics
    parts = []
    if "float" in m:
        parts.append(f"float {100 * m['float']['test_acc']:.2f}%")
    parts.append(f"compressed {100 * m['compressed']['test_acc']:.2f}%")
    if "golden" in m:
        parts.append(f"golden {100 * m['golden']['golden_acc']:.2f}%")
        parts.append(f"agreement {100 * m['golden']['agreement']:.2f}%")
    console.print(f"test accuracy: {', '.join(parts)}  ({seconds:.1f} s)")
    if "export_error" in m:
        console.print(f"[yellow]no integer model exported:[/yellow] {m['export_error']}")
    console.print(f"run folder: {run_dir}")
    return 0
