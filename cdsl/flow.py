"""Steps the subcommands share: resolve a spec or run folder, train, generate, and the options.

A *run folder* is what `cdsl train SPEC -o RUN_DIR` writes: spec.cdsl, checkpoint.pt,
metrics.json, intmodel/. `cdsl gen` adds rtl/ (network.v, manifest.json); `cdsl verify` adds
verify.json. `cdsl sim` and `cdsl verify` simulate exactly the rtl/ that is there.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from cdsl.errors import CdslError
from cdsl.files import locked, staged


def add_hw_options(p: argparse.ArgumentParser) -> None:
    """The options that decide the generated hardware (`cdsl gen`, `cdsl run`); they are recorded in
    rtl/manifest.json, and sim/verify simulate that design as it is."""
    p.add_argument("--lanes", type=int, default=8,
                   help="lanes of dense/conv layers without bitserial(lanes=...) (default 8)")
    p.add_argument("--target-cycles", type=int, metavar="N",
                   help="choose lanes (FINN-style folding) to meet N cycles per inference instead of --lanes")


def add_settings_options(p: argparse.ArgumentParser) -> None:
    """Runtime settings of the generated design (written to its registers before each inference)."""
    p.add_argument("--precision", action="append", default=[], metavar="LAYER=BITS",
                   help="runtime weight precision of a bit-serial layer (TruncQuant truncation); repeatable; "
                        "short for --set LAYER.precision=BITS")
    p.add_argument("--set", action="append", default=[], metavar="LAYER.SETTING=VALUE", dest="settings",
                   help="any runtime setting the design declares (rtl/manifest.json: registers); repeatable")


def parse_settings(args) -> dict[str, dict[str, int]]:
    """{layer: {setting: value}} from --precision and --set (names and ranges are checked by the design)."""
    out: dict[str, dict[str, int]] = {}
    items = [("--precision", item, "precision") for item in args.precision] + [("--set", item, None) for item in args.settings]
    for option, item, setting in items:
        key, sep, value = item.partition("=")
        if setting is None:
            key, dot, setting = key.partition(".")
            ok = bool(dot and setting)
        else:
            ok = True
        if not (sep and key and ok and value.isdigit()):
            example = "h1=4" if option == "--precision" else "h1.precision=4"
            raise CdslError(f"{option} {item!r}: expected {'LAYER=BITS' if option == '--precision' else 'LAYER.SETTING=VALUE'}"
                            f" with a whole number, e.g. {example}", name="cdsl")
        out.setdefault(key, {})[setting] = int(value)
    return out


RUN_MARKERS = ("spec.cdsl", "metrics.json", "intmodel")


@contextmanager
def run_transaction(run: Path):
    """Lock the run folder and yield a staging folder that replaces it when the block completes: an
    interrupted or failed command leaves the previous run folder as it was, never a mix of two runs."""
    with locked(run):
        if run.is_dir() and any(run.iterdir()) and not any((run / m).exists() for m in RUN_MARKERS):
            raise CdslError(f"{run} exists and is not a cdsl run folder (no spec.cdsl, metrics.json or intmodel/); "
                            "choose another -o", name=str(run))
        with staged(run) as stage:
            yield stage


def train_spec(spec_path: str | Path, run_dir: Path | None, *, epochs: int | None = None, seed: int | None = None,
               float_twin: bool = True, threads: int = 1, log: Callable[[str], None] = print,
               then: Callable[[Path, object, Path], None] | None = None):
    """Train a spec into a run folder (default runs/<model name>); return (folder, TrainResult).

    The folder is written as one transaction (`run_transaction`); `then(stage, result, run)`, if
    given, runs inside it on the staged folder (`cdsl run` generates and verifies there)."""
    from cdsl.dsl import load_source, parse_source
    from cdsl.sw.train import save_run, train

    source = load_source(str(spec_path))
    spec = parse_source(source)
    run = Path(run_dir) if run_dir else Path("runs") / spec.model.name
    with run_transaction(run) as stage:
        t0 = time.perf_counter()
        try:
            result = train(spec, epochs=epochs, seed=seed, base=Path(spec_path).resolve().parent,
                           float_twin=float_twin, log=log, threads=threads)
        except CdslError as err:
            raise err.located(source) from None
        result.metrics["wall_seconds"] = time.perf_counter() - t0
        save_run(result, stage, spec_text=source.text)
        if then is not None:
            then(stage, result, run)
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


def generate_design(intmodel, out: Path, *, lanes: int, target_cycles: int | None, where: str):
    """`cdsl.hw.generate.generate`, with its errors as CdslErrors."""
    from cdsl.hw.generate import generate
    from cdsl.hw.registry import UnsupportedModel

    try:
        return generate(intmodel, out, default_lanes=lanes, target_cycles=target_cycles)
    except FileExistsError as err:
        raise CdslError(str(err), name=str(out)) from None
    except (UnsupportedModel, ValueError, TypeError) as err:
        raise hardware_error(intmodel.name, err, where) from None


def load_intmodel(folder: Path):
    """The IntModel in `folder`, or a CdslError naming the folder (missing, corrupt, or an older format)."""
    import json
    import zipfile

    from cdsl.contract.intmodel import IntModel

    try:
        return IntModel.load(folder)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise CdslError(f"cannot read the integer model: {err}", name=str(folder),
                        expected="an intmodel/ written by this cdsl (`cdsl train` again for an older run)") from None


def load_design(run_dir: Path, intmodel, *, log: Callable[[str], None] = print):
    """The run folder's generated design (rtl/), checked against its integer model; generated first,
    with the default options, when the folder has none (and the user is told so)."""
    from cdsl.sim.design import Design, DesignError

    rtl = run_dir / "rtl"
    if not rtl.exists():
        log(f"{rtl} does not exist yet: generating it with the default options (`cdsl gen` chooses others)")
        generate_design(intmodel, rtl, lanes=8, target_cycles=None, where=str(run_dir))
    try:
        design = Design.load(rtl)
        design.check_intmodel(intmodel)
    except DesignError as err:
        raise CdslError(str(err), name=str(rtl)) from None
    return design


def design_settings(design, settings: dict[str, dict[str, int]], where: str) -> dict[str, dict[str, int]]:
    """`settings` checked against the registers the design declares (CdslError otherwise)."""
    try:
        design.plan.node_settings(settings)
    except ValueError as err:
        raise CdslError(str(err), name=where) from None
    return settings
