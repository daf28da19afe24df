"""Co-simulation of a whole network: IntModel -> Network RTL -> Verilator (cocotb) -> compared with golden.

    run = simulate(intmodel, x_int, precisions={"h1": 4})      # RTL outputs and cycles
    report = verify(intmodel, x_int, labels)                    # golden vs RTL, bit for bit

The network (`cdsl.hw.network.Network`, planned by `cdsl.hw.plan.plan_network`) sits in the
bulk-load `Harness` (`cdsl.sim.harness`): every sample is written into the harness' input
memory through its handle, started, and awaited once (`cdsl.sim.tb.network`), so Python does not
wake on every clock edge. Bit-serial layers' runtime precisions enter through `PrefixPorts`: one
prefix word per bit-serial layer before each input frame (one cycle each, subtracted from the
cycle count), so a single Verilator build serves every precision.

On a mismatch, `verify` names the first failing sample and output element and then localizes the
first layer that differs: it simulates the failing sample on prefix networks (the model cut after
each engine) and compares each against the golden trace of that layer.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from amaranth.back import verilog

from cdsl.hw.network import Network, precision_port
from cdsl.hw.plan import NetworkPlan, network_cycles, plan_network
from cdsl.hw.prefix_ports import PrefixPorts
from cdsl.sim.harness import Harness
from cdsl.sim.runner import SimulationError, run_cocotb
from cdsl.sim.scoreboard import Mismatch, Scoreboard
from cdsl.contract.golden import argmax_lowest, at_precisions, golden
from cdsl.contract.intmodel import IntModel

__all__ = ["SimRun", "VerifyReport", "design", "simulate", "verify"]

TOP = "harness_top"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SimRun:
    outputs: np.ndarray  # int64 [N, n_out]: the RTL's output words per sample
    cycles: np.ndarray  # int64 [N]: cycles per inference (first input offered .. last output taken)
    predicted_cycles: int  # the cycle model's figure for the same precisions
    total_cycles: int
    sim_seconds: float  # wall time inside the simulator for the samples
    cycles_per_second: float
    build_seconds: float
    cache_hit: bool
    seed: int | None
    waves: Path | None


@dataclass(frozen=True)
class VerifyReport:
    samples: int
    exact: int  # samples whose every output word equals golden
    first_mismatch: Mismatch | None
    first_bad_layer: str | None  # the earliest layer whose RTL output differs, for the first failing sample
    run: SimRun
    rtl_accuracy: float | None
    golden_accuracy: float | None

    @property
    def passed(self) -> bool:
        return self.exact == self.samples

    @property
    def cycle_error(self) -> float:
        """Relative difference of mean simulated cycles per inference vs the model."""
        mean = float(self.run.cycles.mean())
        return abs(mean - self.run.predicted_cycles) / self.run.predicted_cycles


def design(intmodel: IntModel, *, default_lanes: int = 8, target_cycles: int | None = None,
           lanes: Mapping[str, int] | None = None) -> tuple[NetworkPlan, Harness, tuple[str, ...]]:
    """The network's plan, the harness around it, and the bit-serial layers fed by prefix words."""
    plan = plan_network(intmodel, default_lanes=default_lanes, target_cycles=target_cycles,
                        lanes=dict(lanes) if lanes else None)
    network = Network(plan=plan)
    serial = tuple(e.name for e in plan.bitserial_engines())
    dut = network
    if serial:
        dut = PrefixPorts(dut=network, ports=[precision_port(n) for n in serial], frame=plan.n_in)
    harness = Harness(dut=dut, in_depth=len(serial) + plan.n_in, out_depth=plan.n_out)
    return plan, harness, serial


def _samples(plan: NetworkPlan, serial: tuple[str, ...], x_int, precisions: Mapping[str, int]) -> np.ndarray:
    x = np.asarray(torch.as_tensor(x_int).reshape(len(x_int), -1), dtype=np.int64)
    if x.shape[1] != plan.n_in:
        raise ValueError(f"each sample must have {plan.n_in} input words, not {x.shape[1]}")
    prefix = np.array([precisions.get(n, 0) for n in serial], dtype=np.int64)
    return np.concatenate([np.broadcast_to(prefix, (len(x), len(serial))), x], axis=1)


def _poll(path: Path, progress: Progress, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        try:
            done, total = (int(v) for v in path.read_text().split())
        except (OSError, ValueError):
            continue
        progress(done, total)


def simulate(intmodel: IntModel, x_int, *, precisions: Mapping[str, int] | None = None,
             default_lanes: int = 8, target_cycles: int | None = None, lanes: Mapping[str, int] | None = None,
             waves: Path | None = None, progress: Progress | None = None, seed: int | None = None,
             work_dir: Path | None = None) -> SimRun:
    """Run every sample of `x_int` (int64 [N, ...] input codes) through the network RTL in Verilator."""
    precisions = dict(precisions or {})
    plan, harness, serial = design(intmodel, default_lanes=default_lanes, target_cycles=target_cycles, lanes=lanes)
    unknown = sorted(set(precisions) - set(serial))
    if unknown:
        raise ValueError(f"runtime precision given for {unknown[0]!r}, which is not a bit-serial layer "
                         f"(bit-serial layers: {', '.join(serial) or 'none'})")
    samples = _samples(plan, serial, x_int, precisions)
    work = Path(tempfile.mkdtemp(prefix="cdsl-cosim-")) if work_dir is None else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    case, out, prog = work / "case.npz", work / "rtl_outputs.npz", work / "progress"
    np.savez(case, samples=samples, n_out=np.int64(plan.n_out))
    prog.unlink(missing_ok=True)
    text = verilog.convert(harness, name=TOP, emit_src=False)
    stop = threading.Event()
    poller = None
    if progress is not None:
        poller = threading.Thread(target=_poll, args=(prog, progress, stop), daemon=True)
        poller.start()
    try:
        result = run_cocotb(verilog=text, toplevel=TOP, test_module="cdsl.sim.tb.network", test_dir=work / "sim",
                            waves=waves, seed=seed,
                            extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_COSIM_CASE": str(case),
                                       "CDSL_COSIM_OUT": str(out), "CDSL_PROGRESS": str(prog)})
    finally:
        stop.set()
        if poller is not None:
            poller.join()
    if not result.passed or not out.is_file():
        raise SimulationError(f"the network simulation failed:\n{result.log_text(tail=30)}")
    if progress is not None:
        progress(len(samples), len(samples))
    with np.load(out) as data:
        outputs, cycles = data["outputs"], data["cycles"] - len(serial)  # prefix words take a cycle each
    stats = result.data or {}
    return SimRun(
        outputs=outputs, cycles=cycles,
        predicted_cycles=network_cycles(plan, precisions={n: p for n, p in precisions.items() if p}),
        total_cycles=int(cycles.sum()), sim_seconds=float(stats.get("wall_s", 0.0)),
        cycles_per_second=float(stats.get("cycles_per_s") or 0.0),
        build_seconds=result.build.seconds, cache_hit=result.build.hit, seed=result.seed,
        waves=result.waves,
    )


def verify(intmodel: IntModel, x_int, labels=None, *, precisions: Mapping[str, int] | None = None,
           default_lanes: int = 8, target_cycles: int | None = None, lanes: Mapping[str, int] | None = None,
           progress: Progress | None = None, seed: int | None = None, work_dir: Path | None = None,
           localize: bool = True) -> VerifyReport:
    """Golden model vs RTL on every sample, element by element."""
    x = torch.as_tensor(x_int, dtype=torch.int64)
    model = at_precisions(intmodel, precisions)
    want = golden(model, x).reshape(len(x), -1).numpy()
    run = simulate(intmodel, x, precisions=precisions, default_lanes=default_lanes, target_cycles=target_cycles,
                   lanes=lanes, progress=progress, seed=seed, work_dir=work_dir)
    out_name = intmodel.outputs[0]
    board = Scoreboard(name=intmodel.name, seed=run.seed)
    for s in range(len(x)):
        board.compare(want[s], run.outputs[s], sample=s, port=out_name)
    exact = sum(1 for s in range(len(x)) if np.array_equal(want[s], run.outputs[s]))
    first = board.first_mismatch
    bad_layer = None
    if first is not None and localize:
        bad_layer = first_bad_layer(model, x[first.sample:first.sample + 1], precisions=precisions,
                                    default_lanes=default_lanes, target_cycles=target_cycles, lanes=lanes,
                                    work_dir=None if work_dir is None else Path(work_dir) / "localize")
    rtl_acc = gold_acc = None
    if labels is not None:
        y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        rtl_acc = float((argmax_lowest(torch.as_tensor(run.outputs)) == y).double().mean())
        gold_acc = float((argmax_lowest(torch.as_tensor(want)) == y).double().mean())
    return VerifyReport(samples=len(x), exact=exact, first_mismatch=first, first_bad_layer=bad_layer, run=run,
                        rtl_accuracy=rtl_acc, golden_accuracy=gold_acc)


def prefix_model(intmodel: IntModel, last: str) -> IntModel:
    """The model cut after layer `last` (which becomes its output)."""
    names = [lay.name for lay in intmodel.layers]
    cut = names.index(last) + 1
    return dataclasses.replace(intmodel, layers=intmodel.layers[:cut], outputs=(last,))


def first_bad_layer(model: IntModel, x_one: torch.Tensor, *, precisions=None, work_dir: Path | None = None,
                    **plan_kw) -> str | None:
    """The first layer (in order) whose RTL output differs from golden for this one sample.

    `model` already carries the precisions' truncated weights (for golden); the RTL gets the
    same precisions through its ports. Cuts that the planner cannot make on their own (e.g. a
    ReLU fused into the layer before it) are skipped.
    """
    _, trace = golden(model, x_one, trace=True)
    lanes = plan_kw.pop("lanes", None) or {}
    for lay in model.layers:
        sub = prefix_model(model, lay.name)
        kept = {l.name for l in sub.layers}
        sub_kw = dict(plan_kw, lanes={k: v for k, v in lanes.items() if k in kept} or None)
        try:
            plan_network(sub, **sub_kw)
        except ValueError:
            continue
        sub_prec = {k: v for k, v in (precisions or {}).items() if k in kept}
        run = simulate(sub, x_one, precisions=sub_prec, work_dir=None if work_dir is None else work_dir / lay.name,
                       **sub_kw)
        if not np.array_equal(run.outputs[0], trace[lay.name].reshape(-1).numpy()):
            return lay.name
    return None
