"""Steps the subcommands share: resolve a spec or run folder, train, generate, and the options.

A *run folder* is what `cdsl train SPEC -o RUN_DIR` writes: spec.cdsl, checkpoint.pt,
metrics.json, intmodel/. `cdsl gen` adds rtl/ (network.sv, manifest.json); `cdsl verify` adds
verify.json. `cdsl sim` and `cdsl verify` simulate exactly the rtl/ that is there.
"""

from __future__ import annotations

import argparse
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from cdsl.errors import CdslError
from cdsl.files import locked, staged


def bounded(lo: int, hi: int | None = None):
    """An argparse type: a whole number in lo..hi (argparse reports anything else, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {lo}..{hi}, got {value}" if hi is not None
                                             else f"expected at least {lo}, got {value}")
        return value

    return parse


SEED = bounded(0, (1 << 32) - 1)
EPOCHS = bounded(1, 1_000_000)
SAMPLES = bounded(1)


def add_hw_options(p: argparse.ArgumentParser) -> None:
    """The options that decide the generated hardware (`cdsl gen`, `cdsl run`); they are recorded in
    rtl/manifest.json, and sim/verify simulate that design as it is."""
    p.add_argument("--lanes", type=bounded(1, 65536), default=8,
                   help="lanes of dense/conv layers without bitserial(lanes=...) (default 8; at most a layer's "
                        "input channels)")
    p.add_argument("--target-cycles", type=bounded(1), metavar="N",
                   help="choose lanes and PE (FINN-style folding) to meet N cycles per inference (latency) "
                        "instead of --lanes")
    p.add_argument("--target-ii", type=bounded(1), metavar="N",
                   help="choose lanes and PE per layer so that, back to back, an inference starts every N cycles "
                        "or fewer (initiation interval); with --target-cycles both are met")


def add_settings_options(p: argparse.ArgumentParser) -> None:
    """Runtime settings of the generated design (written to its registers before each inference)."""
    p.add_argument("--precision", action="append", default=[], metavar="LAYER=BITS",
                   help="runtime weight precision of a bit-serial layer (TruncQuant truncation); repeatable; "
                        "short for --set LAYER.precision=BITS")
    p.add_argument("--set", action="append", default=[], metavar="LAYER.SETTING=VALUE", dest="settings",
                   help="any runtime setting the design declares (rtl/manifest.json: registers); repeatable")


SIMULATORS = ("verilator", "icarus")


def add_simulator_option(p: argparse.ArgumentParser) -> None:
    """Which simulator runs the generated RTL: Verilator (the flow's, builds cached) or Icarus Verilog
    (an independent, event-driven second simulator; Debian's `iverilog`)."""
    p.add_argument("--simulator", choices=SIMULATORS, default="verilator",
                   help="verilator (default; builds cached by content hash) or icarus (Icarus Verilog, "
                        "an independent second simulator: apt-get install iverilog)")


def parse_settings(args) -> dict[str, dict[str, int]]:
    """{layer: {setting: value}} from --precision and --set (names and ranges are checked by the design).
    A setting given twice (`--precision h1=4 --set h1.precision=2`) is refused, not decided by order."""
    out: dict[str, dict[str, int]] = {}
    given: dict[tuple[str, str], str] = {}
    items = [("--precision", item, "precision") for item in args.precision] + [("--set", item, None) for item in args.settings]
    for option, item, setting in items:
        key, sep, value = item.partition("=")
        if setting is None:
            key, dot, setting = key.partition(".")
            ok = bool(dot and setting)
        else:
            ok = True
        # an ASCII whole number, signed (its range is the design's to check, naming the setting);
        # str.isdigit() also takes '²', which int() refuses
        if not (sep and key and ok and re.fullmatch(r"[+-]?[0-9]+", value)):
            example = "h1=4" if option == "--precision" else "h1.precision=4"
            raise CdslError(f"{option} {item!r}: expected {'LAYER=BITS' if option == '--precision' else 'LAYER.SETTING=VALUE'}"
                            f" with a whole number, e.g. {example}", name="cdsl")
        if (key, setting) in given:  # one register, two values: which one was meant?
            raise CdslError(f"{option} {item!r}: {key}.{setting} is already set by {given[key, setting]}",
                            name="cdsl")
        given[key, setting] = f"{option} {item}"
        out.setdefault(key, {})[setting] = int(value)
    return out


STAGES = ("train", "export", "hardware")
MEMORY_BUDGET_GB = 8.0  # training may take this much memory (override: $CDSL_MEMORY_GB)
MAX_WEIGHT_BITS = 64 << 20  # the hardware generator's weight ROMs may hold this much (64 Mbit)


def spec_problems(spec, *, stages: tuple[str, ...] = STAGES) -> list[tuple[str, CdslError]]:
    """Everything in the spec that keeps a stage of the flow from working, found before any training:
    each (stage, located error). Each layer's kind says what it cannot train or export; the hardware
    registries say which payloads and MAC cores have an engine; sizes are held to the memory budget
    and the ROM budget."""
    import math
    import os

    from cdsl.hw.registry import missing_engine
    from cdsl.sw.registry import sw_kind
    from cdsl.sw.train import load_data, output_classes

    model = spec.model
    found: list[tuple[str, CdslError]] = []
    try:  # training's own rules for a model's inputs and outputs (one input; outputs scoring the same classes)
        output_classes(model)
        if spec.train.data == "digits":  # the bundled data set is part of the spec: its classes and image shape
            load_data(spec)
    except CdslError as err:
        found.append(("train", err))
    for lay in model.layers:
        kind = sw_kind(lay.op)
        found += kind.problems(model, lay)
        for name in sorted(kind.learned_in_stage):
            ann = getattr(lay.annotations, name)
            if ann is not None and spec.train.stages and not any(
                    st.compress is None or name in st.compress for st in spec.train.stages):
                found.append(("export", CdslError(
                    f"@{name} on layer {lay.name!r} is never trained: no stage activates it "
                    f"({', '.join(st.name for st in spec.train.stages)})", span=ann.span,
                    expected=f"a stage with compress=all or a compress list naming {name}")))
        payload = kind.payload_type(lay)
        if payload is not None:
            reason = missing_engine(payload, kind.core_type(lay))
            if reason:
                found.append(("hardware", CdslError(f"layer {lay.name!r}: {reason}", span=lay.span,
                                                    expected="the layers with an engine (README: What works today)")))
    budget = float(os.environ.get("CDSL_MEMORY_GB", MEMORY_BUDGET_GB))
    weights = {lay.name: sum(r * c for r, c in lay.op.weight_matrices(tuple(model.shape_of(i) for i in lay.inputs)))
               for lay in model.layers}
    activations = sum(math.prod(lay.shape) for lay in model.layers)
    # parameters: value, gradient, two Adam moments, mask, for the compressed net and its float twin;
    # activations: forward and backward, float32, for one batch of both nets
    need = (sum(weights.values()) * 5 * 2 + activations * spec.train.batch * 2 * 2) * 4 / 2**30
    if need > budget:
        biggest = max(model.layers, key=lambda lay: weights[lay.name] or math.prod(lay.shape))
        found.append(("train", CdslError(
            f"training needs about {need:.1f} GiB of memory, more than the budget of {budget:g} GiB "
            f"({biggest.name!r} is the largest layer)", span=biggest.span,
            expected="smaller layers or a smaller batch, or a larger $CDSL_MEMORY_GB")))
    for lay in model.layers:
        q = lay.annotations.quant
        bits = weights[lay.name] * (q.w if q is not None and q.w is not None else 8)
        if bits > MAX_WEIGHT_BITS:
            found.append(("hardware", CdslError(
                f"layer {lay.name!r} has {bits / 2**20:.0f} Mbit of weights, more than the {MAX_WEIGHT_BITS >> 20} Mbit "
                "of weight ROM the generator builds", span=lay.span, expected="a smaller layer")))
    return [(stage, err) for stage, err in found if stage in stages]


def require_stages(spec, source, stages: tuple[str, ...]) -> None:
    """Refuse, before any training, a spec that a needed stage cannot handle: every problem is printed
    located; the first is raised (exit 2)."""
    import sys

    problems = [err.located(source) for _, err in spec_problems(spec, stages=stages)]
    for err in problems[1:]:
        print(str(err), file=sys.stderr)
    if problems:
        raise problems[0]


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
               then: Callable[[Path, object, Path], None] | None = None,
               stages: tuple[str, ...] = ("train", "export"), check_data: Callable[[object], None] | None = None):
    """Train a spec into a run folder (default runs/<model name>); return (folder, TrainResult).

    The folder is written as one transaction (`run_transaction`); `then(stage, result, run)`, if
    given, runs inside it on the staged folder (`cdsl run` generates and verifies there). The spec
    is first held to `stages` (`spec_problems`): nothing fails after training for a reason the spec
    already shows. `check_data(dataset)`, if given, sees the loaded data set before training (what
    `then` will need of it, such as `--n` test samples: `require_samples`)."""
    from cdsl.dsl import load_source, parse_source
    from cdsl.sw.train import load_data, save_run, train

    source = load_source(str(spec_path))
    spec = parse_source(source)
    require_stages(spec, source, stages)
    base = Path(spec_path).resolve().parent
    dataset = None
    if check_data is not None:
        try:
            dataset = load_data(spec, base=base)
        except CdslError as err:
            raise err.located(source) from None
        check_data(dataset)
    run = Path(run_dir) if run_dir else Path("runs") / spec.model.name
    with run_transaction(run) as stage:
        t0 = time.perf_counter()
        try:
            result = train(spec, epochs=epochs, seed=seed, base=base, float_twin=float_twin, log=log,
                           threads=threads, dataset=dataset)
        except CdslError as err:
            raise err.located(source) from None
        result.metrics["wall_seconds"] = time.perf_counter() - t0
        save_run(result, stage, spec_text=source.text)
        if then is not None:
            then(stage, result, run)
    return run, result


def require_samples(n: int | None, dataset, command: str) -> int:
    """The number of test samples `--n` asks of `dataset` (None: all of its test split); one clear
    error when the split holds fewer."""
    have = len(dataset.y_test)
    total = have if n is None else n
    if not 1 <= total <= have:
        raise CdslError(f"--n {n}: the test split has {have} samples", name=command)
    return total


def require_intmodel(result, where: str) -> None:
    if result.intmodel is None:
        raise CdslError(f"training finished but no integer model was exported: "
                        f"{result.metrics.get('export_error', 'unknown reason')}", name=where)


def resolve_run(source: str | Path, *, run_dir: str | Path | None = None, epochs: int | None = None,
                log: Callable[[str], None] = print, check_data: Callable[[object], None] | None = None) -> Path:
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
    run, result = train_spec(src, Path(run_dir) if run_dir else None, epochs=epochs, float_twin=False, log=log,
                             stages=STAGES, check_data=check_data)
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


def generate_design(intmodel, out: Path, *, lanes: int, target_cycles: int | None, where: str,
                    target_ii: int | None = None):
    """`cdsl.hw.generate.generate`, with its errors as CdslErrors."""
    from cdsl.hw.generate import generate
    from cdsl.hw.registry import UnsupportedModel

    try:
        return generate(intmodel, out, default_lanes=lanes, target_cycles=target_cycles, target_ii=target_ii)
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


def load_run_intmodel(run_dir: Path):
    """The run folder's integer model, validated, and exported from the run's spec.cdsl (CdslError otherwise)."""
    from cdsl.sw.evaluate import check_run_intmodel, load_run

    intmodel = load_intmodel(run_dir / "intmodel")
    if (run_dir / "spec.cdsl").is_file():
        load_run(run_dir, with_data=False)  # its model is the one trained
        check_run_intmodel(run_dir, intmodel)  # and this is what its training exported
    return intmodel


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


def cycle_table(manifest: dict, plan, *, title: str):
    """The design's engines with their folding (lanes = SIMD, PE), cycles after the last input (latency)
    and back-to-back interval, as a rich Table; and the summary lines under it."""
    from rich.table import Table

    cyc = manifest["cycles"]
    table = Table(title=title, title_justify="left")
    for col in ("engine", "mapping", "lanes", "PE", "MAC cycles", "delay", "interval", "frame bits"):
        table.add_column(col, justify="left" if col in ("engine", "mapping") else "right", no_wrap=col != "mapping")
    for n in plan.nodes:
        f = cyc["engines"][n.name]
        table.add_row(n.name, n.describe(), str(f.get("lanes", "-")), str(f.get("pe", "-")),
                      str(f.get("mac_cycles", "-")), str(f["delay"]), str(f["interval"]), f"{f.get('frame_bits', 0):,}")
    mem = cyc["memory_bits"]
    lines = [f"predicted cycles per inference: {cyc['cycles_per_inference']} (latency, one inference)",
             f"initiation interval: {cyc['initiation_interval']}{'' if cyc['initiation_interval_exact'] else ' (a bound)'}"
             f" cycles back to back, set by {cyc['bottleneck']}",
             f"frames in flight: {mem['total']:,} bits (engines' double-buffered frames {mem['engines']:,}, "
             f"join FIFOs {mem['join_fifos']:,})"]
    return table, lines
