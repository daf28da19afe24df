"""Co-simulation of a generated design: the exact `network.sv` of `cdsl gen`, in Verilator through cocotb,
compared with the golden model.

    design = Design.load(run_dir / "rtl")
    run = simulate(design, {"x": x_int}, settings={"h1": {"precision": 4}})   # RTL outputs and cycles
    report = verify(intmodel, design, x_int, labels)                          # golden vs RTL, bit for bit

The harness (`cdsl.sim.harness.Harness`) wraps a black box with the ports the design's plan implies
and is compiled beside `network.sv` (never a re-elaborated network). The harness holds a batch of up to `BATCH`
samples (`Harness(samples=...)`): a batch is written into its memories through their handles, the
harness runs its samples one after another, each with the runtime settings' `ctrl` register writes
first, exactly as a run of its own (each sample's cycles are recorded in a memory), and Python
awaits one `done` per batch (`cdsl.sim.network_bench`); outputs are read back per batch.

On a mismatch, `verify` names the first failing sample, output and element, then simulates that
sample again in a harness that captures every engine's probe port, and names the first engine (in
the plan's order) whose output differs from the golden model's trace of its layer.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from cdsl.hw.verilog_text import verilog_text

from cdsl.contract.golden import argmax_lowest, feeds, golden, golden_counts
from cdsl.contract.intmodel import IntModel, Settings
from cdsl.hw.network import input_port, output_port, probe_port
from cdsl.hw.plan import network_cycles, sample_cycles, token_nodes
from cdsl.hw.register_bank import ctrl_signature
from cdsl.sim.build import BuildOptions
from cdsl.sim.design import Design
from cdsl.sim.harness import Harness
from cdsl.sim.runner import SimulationError, run_cocotb
from cdsl.sim.scoreboard import Mismatch, Scoreboard

__all__ = ["SimRun", "VerifyReport", "simulate", "verify", "first_bad_layer", "token_counts"]

TOP = "harness_top"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SimRun:
    outputs: dict[str, np.ndarray]  # per model output: int64 [N, words], the RTL's words per sample
    counts: dict[str, np.ndarray]  # per model output: int64 [N], words delivered per sample
    probes: dict[str, list[np.ndarray]] | None  # per engine (harness with probes): each sample's words
    cycles: np.ndarray  # int64 [N]: cycles per inference (first input offered .. last output taken)
    predicted_cycles: int  # the cycle model's figure for the same settings (token streams at full counts)
    total_cycles: int
    sim_seconds: float  # wall time inside the simulator for the samples
    cycles_per_second: float
    build_seconds: float
    cache_hit: bool
    seed: int | None
    waves: Path | None
    verilog_sha256: str
    simulator: str = "verilator"
    predicted: np.ndarray | None = None  # int64 [N]: the model's cycles per sample, given its token counts

    @property
    def predicted_per_sample(self) -> np.ndarray:
        """The cycle model's figure for each sample (the same for all without data-dependent engines)."""
        if self.predicted is not None:
            return self.predicted
        return np.full(len(self.cycles), self.predicted_cycles, dtype=np.int64)

    @property
    def build_note(self) -> str:
        """How the simulator got its model: '"Verilator build cached"', '"Icarus build 1.2 s"'."""
        name = {"verilator": "Verilator", "icarus": "Icarus"}[self.simulator]
        return f"{name} build {'cached' if self.cache_hit else f'{self.build_seconds:.1f} s'}"


@dataclass(frozen=True)
class VerifyReport:
    samples: int
    exact: int  # samples whose every output word equals golden
    first_mismatch: Mismatch | None
    first_bad_layer: str | None  # the earliest engine whose output differs, for the first failing sample
    cycles_exact: int  # samples whose simulated cycles equal the model's
    run: SimRun
    rtl_accuracy: float | None  # of the first output
    golden_accuracy: float | None
    # every output's (RTL, golden) accuracy, given labels (a model with several heads)
    accuracy_per_output: dict[str, tuple[float, float]] | None = None

    @property
    def passed(self) -> bool:
        return self.exact == self.samples and self.cycles_exact == self.samples

    @property
    def cycle_error(self) -> float:
        """Relative difference of mean simulated cycles per inference vs the model's mean."""
        mean, want = float(self.run.cycles.mean()), float(self.run.predicted_per_sample.mean())
        return abs(mean - want) / want


def token_counts(intmodel: IntModel, design: Design, x_int, settings: Settings | None = None, *,
                 counts: Mapping[str, torch.Tensor] | None = None) -> dict[str, np.ndarray]:
    """Per engine of the design whose output token count the data decides (`cdsl.hw.plan.token_nodes`:
    a token selector, `e1.select`), each sample's count, int64 [B], from the golden model on `x_int` at
    `settings` (`cdsl.contract.golden.golden_counts`; `counts`: its counts when already computed). An
    engine `<layer>.<part>` takes its layer's count; a layer the golden model gives none for kept all
    its tokens on every sample."""
    names = token_nodes(design.plan)
    if not names:
        return {}
    x = feeds(intmodel, x_int)
    if counts is None:
        _, _, counts = golden_counts(intmodel, x, settings=settings)
    samples = len(next(iter(x.values())))
    out = {}
    for name in names:
        layer = name if name in counts else name.split(".")[0]
        if layer in counts:
            out[name] = np.asarray(counts[layer], dtype=np.int64)
        else:
            out[name] = np.full(samples, design.plan.node(name).out_type.shape[0], dtype=np.int64)
    return out


def config_words(design: Design, settings: Settings | None) -> list[int]:
    """Register writes (packed {addr, data} payloads) that set every register for `settings`."""
    plan = design.plan
    values = plan.node_settings(settings)
    if not plan.registers:
        return []
    layout = ctrl_signature(len(plan.registers)).members["payload"].shape
    return [layout.const({"addr": r.addr, "data": values[r.node][r.setting.name]}).as_value().value
            for r in plan.registers]


BATCH = 64  # samples per harness run (per Python wake-up)
BATCH_WORDS = 1 << 16  # at most this many words of one input port per batch


def batch_size(design: Design, samples: int = BATCH) -> int:
    """Samples the harness of `design` holds per run: up to BATCH, fewer for very long inputs."""
    longest = max(i.type.words for i in design.plan.inputs)
    return max(1, min(samples, BATCH_WORDS // longest))


def harness_for(design: Design, *, probes: bool, samples: int = 1) -> Harness:
    plan = design.plan
    depths = {input_port(i.name): i.type.words for i in plan.inputs}
    depths.update({output_port(o.name): o.type.words for o in plan.outputs})
    if plan.registers:
        depths["ctrl"] = len(plan.registers)
    if probes:
        depths.update({probe_port(n.name): n.out_type.words for n in plan.nodes})
    return Harness(dut=design.black_box(), depths=depths, probes=probes, samples=samples)


def _poll(path: Path, progress: Progress, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        try:
            done, total = (int(v) for v in path.read_text().split())
        except (OSError, ValueError):
            continue
        progress(done, total)


def _input_arrays(design: Design, x_int) -> dict[str, np.ndarray]:
    given = x_int if isinstance(x_int, dict) else {design.plan.inputs[0].name: x_int}
    out = {}
    for inp in design.plan.inputs:
        if inp.name not in given:
            raise ValueError(f"no samples for input {inp.name!r}")
        x = np.asarray(torch.as_tensor(given[inp.name]), dtype=np.int64)
        x = x.reshape(len(x), -1)
        if x.shape[1] != inp.type.words:
            raise ValueError(f"each sample of {inp.name!r} must have {inp.type.words} words, not {x.shape[1]}")
        out[input_port(inp.name)] = x
    return out


def simulate(design: Design, x_int, *, settings: Settings | None = None, waves: Path | None = None,
             progress: Progress | None = None, seed: int | None = None, work_dir: Path | None = None,
             probes: bool = False, simulator: str = "verilator", batch: int | None = None,
             sim_clock: bool = True, tokens: Mapping[str, np.ndarray] | None = None) -> SimRun:
    """Run every sample of `x_int` (int64 [N, ...] input codes, or a dict per input) through the design,
    in Verilator (or in Icarus Verilog, `simulator="icarus"`, the second simulator).

    `batch`: samples per harness run (default `batch_size(design)`; 1 with probes); `sim_clock`: the
    clock in the simulator's C++ main (Verilator only). Both only change speed: `cdsl bench` sets
    `batch=1, sim_clock=False` to time the previous way (a Python wake-up per sample, cocotb's clock).
    `tokens`: per data-dependent engine each sample's token count (`token_counts`), for the cycle
    model's per-sample figure (`SimRun.predicted`); without it a design with such engines is
    predicted at full token counts."""
    plan = design.plan
    config = config_words(design, settings)  # checks the settings against the plan
    # Probes (locating a bad layer) run one sample: the plain harness.
    samples_per_run = 1 if probes else batch_size(design, batch or BATCH)
    harness = harness_for(design, probes=probes, samples=samples_per_run)
    inputs = _input_arrays(design, x_int)
    samples = len(next(iter(inputs.values())))
    temporary = work_dir is None  # removed afterwards, unless the simulation fails (its log is there)
    work = Path(tempfile.mkdtemp(prefix="cdsl-cosim-")) if temporary else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    case, out, prog = work / "case.npz", work / "rtl_outputs.npz", work / "progress"
    np.savez(case, config=np.array(config, dtype=np.int64),
             **{f"in:{k}": v for k, v in inputs.items()},
             **{f"expect:{output_port(o.name)}": np.int64(o.type.words) for o in plan.outputs})
    prog.unlink(missing_ok=True)
    text = verilog_text(harness, name=TOP)
    stop = threading.Event()
    poller = None
    if progress is not None:
        poller = threading.Thread(target=_poll, args=(prog, progress, stop), daemon=True)
        poller.start()
    try:
        result = run_cocotb(verilog=(text, design.verilog), toplevel=TOP, test_module="cdsl.sim.network_bench",
                            test_dir=work / "sim", waves=waves, seed=seed, simulator=simulator,
                            build_options=BuildOptions(sim_clock=sim_clock),
                            extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_COSIM_CASE": str(case),
                                       "CDSL_COSIM_OUT": str(out), "CDSL_PROGRESS": str(prog)})
    except SimulationError:
        raise  # its message names the log in `work`: kept
    except BaseException:
        if temporary:  # a build error (its log is kept in the build cache) or an interruption
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        stop.set()
        if poller is not None:
            poller.join()
    if not result.passed or not out.is_file():
        raise SimulationError(f"the network simulation failed (log {result.log}):\n{result.log_text(tail=30)}")
    if progress is not None:
        progress(samples, samples)
    with np.load(out) as data:
        arrays = {k: data[k] for k in data.files}
    if temporary:
        shutil.rmtree(work, ignore_errors=True)
    stats = result.data or {}
    cycles = arrays["cycles"]
    predicted = None
    if tokens is not None and token_nodes(plan):
        predicted = sample_cycles(plan, tokens, samples=len(cycles), settings=settings)
    return SimRun(
        outputs={o.name: arrays[f"out:{output_port(o.name)}"] for o in plan.outputs},
        counts={o.name: arrays[f"out_count:{output_port(o.name)}"] for o in plan.outputs},
        probes={n.name: [row[:c] for row, c in zip(arrays[f"probe:{probe_port(n.name)}"],
                                                   arrays[f"probe_count:{probe_port(n.name)}"])]
                for n in plan.nodes} if probes else None,
        cycles=cycles, predicted_cycles=network_cycles(plan, settings=settings), total_cycles=int(cycles.sum()),
        sim_seconds=float(stats.get("wall_s", 0.0)), cycles_per_second=float(stats.get("cycles_per_s") or 0.0),
        build_seconds=result.build.seconds, cache_hit=result.build.hit, seed=result.seed, waves=result.waves,
        verilog_sha256=design.sha256, simulator=simulator, predicted=predicted,
    )


def verify(intmodel: IntModel, design: Design, x_int, labels=None, *, settings: Settings | None = None,
           progress: Progress | None = None, seed: int | None = None, work_dir: Path | None = None,
           localize: bool = True, simulator: str = "verilator") -> VerifyReport:
    """Golden model vs the design's RTL on every sample, element by element, and cycles vs the model,
    simulated in `simulator` ("verilator" or "icarus")."""
    design.check_intmodel(intmodel)
    x = feeds(intmodel, x_int)
    tokens = None
    if token_nodes(design.plan):  # per-sample cycles follow each sample's token counts
        want, _, counts = golden_counts(intmodel, x, settings=settings)
        tokens = token_counts(intmodel, design, x, settings, counts=counts)
    else:
        want = golden(intmodel, x, settings=settings)
    want = want if isinstance(want, dict) else {intmodel.outputs[0]: want}
    run = simulate(design, x, settings=settings, progress=progress, seed=seed, work_dir=work_dir,
                   simulator=simulator, tokens=tokens)
    n = len(next(iter(x.values())))
    board = Scoreboard(name=intmodel.name, seed=run.seed)
    exact = 0
    for s in range(n):
        ok = True
        for name in intmodel.outputs:
            got = run.outputs[name][s][:int(run.counts[name][s])]
            ok = board.compare(want[name][s].reshape(-1).numpy(), got, sample=s, port=name) and ok
        exact += ok
    first = board.first_mismatch
    bad_layer = None
    if first is not None and localize:
        one = {k: v[first.sample:first.sample + 1] for k, v in x.items()}
        bad_layer = first_bad_layer(intmodel, design, one, settings=settings, simulator=simulator,
                                    work_dir=None if work_dir is None else Path(work_dir) / "localize")
    rtl_acc = gold_acc = per_output = None
    if labels is not None:
        y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        per_output = {name: (float((argmax_lowest(torch.as_tensor(run.outputs[name]).reshape(n, -1)) == y).double().mean()),
                             float((argmax_lowest(want[name].reshape(n, -1)) == y).double().mean()))
                      for name in intmodel.outputs}
        rtl_acc, gold_acc = per_output[intmodel.outputs[0]]
    return VerifyReport(samples=n, exact=exact, first_mismatch=first, first_bad_layer=bad_layer,
                        cycles_exact=int((run.cycles == run.predicted_per_sample).sum()), run=run,
                        rtl_accuracy=rtl_acc, golden_accuracy=gold_acc, accuracy_per_output=per_output)


def first_bad_layer(intmodel: IntModel, design: Design, x_one: Mapping[str, torch.Tensor], *,
                    settings: Settings | None = None, work_dir: Path | None = None,
                    simulator: str = "verilator") -> str | None:
    """The first engine (in the plan's order) whose probed output differs from the golden trace of its
    layer, for this one sample; None if every probe agrees."""
    _, trace = golden(intmodel, dict(x_one), settings=settings, trace=True)
    run = simulate(design, dict(x_one), settings=settings, work_dir=work_dir, probes=True, simulator=simulator)
    for node in design.plan.nodes:
        if node.name not in trace:  # an engine inside a layer (`e1.qkv`): the golden model traces layers
            continue
        want = trace[node.name].reshape(-1).numpy()
        got = run.probes[node.name][0]
        # a pruned token stream carries fewer tokens than the golden tensor's zero-padded rows
        if not (np.array_equal(got, want[:len(got)]) and not want[len(got):].any()):
            return node.name
    return None
