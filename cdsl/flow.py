"""Steps the subcommands share: resolve a spec or run folder, train, and the hardware options.

A *run folder* is what `cdsl train SPEC -o RUN_DIR` writes: spec.cdsl, checkpoint.pt,
metrics.json, intmodel/. `cdsl run` adds rtl/ (from `cdsl gen`) and verify.json.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from cdsl.errors import CdslError


def add_hw_options(p: argparse.ArgumentParser) -> None:
    """The options that decide the generated hardware (gen, sim, verify and run must agree on them)."""
    p.add_argument("--lanes", type=int, default=8,
                   help="lanes of dense/conv layers without bitserial(lanes=...) (default 8)")
    p.add_argument("--target-cycles", type=int, metavar="N",
                   help="choose lanes (FINN-style folding) to meet N cycles per inference instead of --lanes")


def add_precision_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", action="append", default=[], metavar="LAYER=BITS",
                   help="runtime weight precision of a bit-serial layer (TruncQuant truncation); repeatable")


def parse_precisions(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, bits = item.partition("=")
        if not sep or not name or not bits.isdigit() or int(bits) < 1:
            raise CdslError(f"--precision {item!r}: expected LAYER=BITS with BITS >= 1, e.g. h1=4", name="cdsl")
        out[name] = int(bits)
    return out


def train_spec(spec_path: str | Path, run_dir: Path | None, *, epochs: int | None = None, seed: int | None = None,
               float_twin: bool = True, threads: int = 1, log: Callable[[str], None] = print):
    """Train a spec into a run folder (default runs/<model name>); return (folder, TrainResult)."""
    from cdsl.dsl import load_source, parse_source
    from cdsl.sw.train import save_run, train

    source = load_source(str(spec_path))
    spec = parse_source(source)
    run = Path(run_dir) if run_dir else Path("runs") / spec.model.name
    t0 = time.perf_counter()
    try:
        result = train(spec, epochs=epochs, seed=seed, base=Path(spec_path).resolve().parent,
                       float_twin=float_twin, log=log, threads=threads)
    except CdslError as err:
        raise err.located(source) from None
    result.metrics["wall_seconds"] = time.perf_counter() - t0
    save_run(result, run, spec_text=source.text)
    return run, result


def require_intmodel(result, where: str) -> None:
    if result.intmodel is None:
        raise CdslError(f"training finished but no integer model was exported: "
                        f"{result.metrics.get('export_error', 'unknown reason')}", name=where)


def resolve_run(source: str | Path, *, run_dir: str | Path | None = None, epochs: int | None = None,
                log: Callable[[str], None] = print) -> Path:
    """A run folder holding intmodel/: `source` itself, or a spec trained first into `run_dir`."""
    src = Path(source)
    if src.is_dir():
        if not (src / "intmodel" / "manifest.json").is_file():
            raise CdslError(f"{src} holds no integer model (no intmodel/manifest.json)", name=str(src),
                            expected="a run folder written by `cdsl train SPEC -o RUN_DIR`, or a .cdsl spec")
        return src
    if not src.is_file():
        raise CdslError("no such file or folder", name=str(src),
                        expected="a run folder written by `cdsl train`, or a .cdsl spec")
    log(f"training {src} (no run folder given) ...")
    run, result = train_spec(src, Path(run_dir) if run_dir else None, epochs=epochs, float_twin=False, log=log)
    require_intmodel(result, str(src))
    return run


def resolve_intmodel(source: str | Path, *, run_dir: str | Path | None = None, epochs: int | None = None,
                     log: Callable[[str], None] = print) -> Path:
    """An IntModel folder: `source` itself (holding manifest.json), or the intmodel/ of a run folder or
    of a spec trained first."""
    src = Path(source)
    if src.is_dir() and (src / "manifest.json").is_file() and (src / "tensors.npz").is_file():
        return src
    return resolve_run(src, run_dir=run_dir, epochs=epochs, log=log) / "intmodel"


@contextmanager
def progress_bar(console, total: int, label: str = "simulating"):
    """A transient rich progress bar; yields the `progress(done, total)` callback cosim takes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, _total: bar.update(task, completed=done)


def hardware_error(intmodel_name: str, err: Exception, where: str) -> CdslError:
    return CdslError(f"cannot generate hardware for {intmodel_name!r}: {err}", name=where)
