"""Co-verification of the token selector engine on real token streams.

    report = verify_selector(selector, tokens, in_type=StreamType(8, True, (N, D)), name="e2.selector")
    report.ok, report.summary()

`tokens` int64 [S, N, D] are the tokens arriving at the selector, one row per sample (in the ViT flow:
the golden trace's tensor at the selector's input); `lengths` (int [S], optional) the tokens each sample
really holds (its first rows; behind an earlier selector, `kept_counts` of the layer before), which
the engine receives as a frame of that many tokens ending in `last`. The engine (`cdsl.hw.token_selector`) runs in
Verilator inside the bulk-load `Harness`, each sample once with the outputs always ready and once
under random back-pressure; every sample's output tokens (order included), package token, kept
count and, for the clean run, simulated cycles against the cycle model (`TokenSelectorNode.cycles`)
are checked against the integer reference (`TokenSelector.select`). `simulate_selector` returns the
raw outputs (block tests compare them themselves).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cdsl.contract.ref.token_selector import TokenSelector
from cdsl.hw.kinds.token_selector import TokenSelectorNode, plan_token_selector
from cdsl.hw.plan import StreamType
from cdsl.sim.blocks import register_block


@dataclass(frozen=True)
class SelectorOutputs:
    """What the engine sent, per sample: tokens [length, D], the count word, cycles (clean run)."""

    tokens: list[np.ndarray]
    counts: list[int]
    cycles: list[int]
    throttled_tokens: list[np.ndarray] | None
    throttled_counts: list[int] | None


@dataclass
class SelectorReport:
    name: str
    samples: int
    mismatches: list[str] = field(default_factory=list)  # one line per differing sample and what differs
    bad_samples: set[int] = field(default_factory=set)
    cycles_simulated: list[int] = field(default_factory=list)
    cycles_predicted: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        good = self.samples - len(self.bad_samples)
        kept = np.mean(self.counts) if self.counts else 0.0
        same = sum(a == b for a, b in zip(self.cycles_simulated, self.cycles_predicted))
        return (f"{self.name}: {good}/{self.samples} samples bit-exact (tokens, order, package token, count); "
                f"mean kept {kept:.2f} tokens; cycles simulated = predicted on {same}/{self.samples} "
                f"({min(self.cycles_simulated, default=0)}..{max(self.cycles_simulated, default=0)} per inference)")


def _harness(node: TokenSelectorNode):
    from cdsl.sim.harness import Harness

    words = node.tokens * node.dim
    return Harness(dut=node.component(count=True), depths={"i": words, "o": words, "count": 1}, throttle=True)


def _lengths(x: np.ndarray, lengths, n: int) -> np.ndarray:
    if lengths is None:
        return np.full(len(x), n, dtype=np.int64)
    out = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if out.shape != (len(x),) or out.min(initial=2) < 2 or out.max(initial=2) > n:
        raise ValueError(f"lengths: expected {len(x)} token counts in 2..{n}, got {np.asarray(lengths).tolist()!r}")
    return out


def simulate_selector(node: TokenSelectorNode, tokens, *, thresholds=None, lengths=None, throttle: int = 1,
                      test_dir: Path | None = None, seed: int | None = None,
                      simulator: str = "verilator") -> SelectorOutputs:
    """Run every sample of `tokens` [S, N, D] through the engine of `node` in Verilator (see the module
    docstring), with the `threshold` input at `thresholds[s]` (default: the selector's own);
    `throttle` 0 skips the back-pressure runs; `simulator` "icarus" runs the same Verilog in Icarus
    (measured: no sample finished in 10 minutes on the 13-sample block test, so it is not tested)."""
    from cdsl.hw.verilog_text import verilog_text
    from cdsl.sim.runner import run_cocotb

    x = torch.as_tensor(tokens).to(torch.int64).numpy()
    if x.ndim != 3 or x.shape[1:] != (node.tokens, node.dim):
        raise ValueError(f"simulate_selector: expected tokens [S, {node.tokens}, {node.dim}], got {list(x.shape)}")
    if test_dir is None:  # a scratch folder, removed afterwards (a failure's message quotes its log)
        with tempfile.TemporaryDirectory(prefix="cdsl-selector-") as scratch:
            return simulate_selector(node, tokens, thresholds=thresholds, lengths=lengths, throttle=throttle,
                                     test_dir=Path(scratch), seed=seed, simulator=simulator)
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    case, out = test_dir / "selector_case.npz", test_dir / "selector_out.npz"
    thr = np.full(len(x), node.selector.threshold, dtype=np.int64) if thresholds is None else \
        np.asarray(thresholds, dtype=np.int64).reshape(len(x))
    np.savez(case, tokens=x.reshape(len(x), -1), lengths=_lengths(x, lengths, node.tokens) * node.dim,
             thresholds=thr, throttle=np.array([throttle], dtype=np.int64))
    harness = _harness(node)
    result = run_cocotb(verilog=verilog_text(harness, name="selector_top"), toplevel="selector_top",
                        test_module="cdsl.sim.blocks._token_selector_bench", test_dir=test_dir / "sim", seed=seed,
                        simulator=simulator,
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_SELECTOR_CASE": str(case),
                                   "CDSL_SELECTOR_OUT": str(out)})
    if not result.passed:
        raise RuntimeError(f"token selector simulation failed: {result.summary()}\n{result.log_text(tail=30)}")
    with np.load(out) as got:
        def split(suffix: str):
            if f"out{suffix}" not in got.files:
                return None, None
            rows = [got[f"out{suffix}"][s, : got[f"out_len{suffix}"][s]].reshape(-1, node.dim)
                    if got[f"out_len{suffix}"][s] % node.dim == 0 else got[f"out{suffix}"][s, : got[f"out_len{suffix}"][s]]
                    for s in range(len(x))]
            return rows, got[f"count{suffix}"].tolist()

        tokens_out, counts = split("")
        thr_tokens, thr_counts = split("_throttled")
        return SelectorOutputs(tokens_out, counts, got["cycles"].tolist(), thr_tokens, thr_counts)


def verify_selector(selector: TokenSelector, tokens, *, in_type: StreamType, name: str = "selector",
                    thresholds=None, lengths=None, throttle: int = 1, test_dir: Path | None = None,
                    seed: int | None = None) -> SelectorReport:
    """Simulate the engine of `selector` on `tokens` [S, N, D] (the first `lengths[s]` rows of each
    sample, all N by default) and compare with the reference (at `thresholds[s]` per sample when
    given, else the selector's threshold)."""
    import dataclasses

    node = plan_token_selector(selector, name=name, input=f"{name}.in", in_type=in_type)
    x = torch.as_tensor(tokens).to(torch.int64)
    n_in = _lengths(x.numpy(), lengths, node.tokens)
    sim = simulate_selector(node, x, thresholds=thresholds, lengths=n_in, throttle=throttle, test_dir=test_dir,
                            seed=seed)
    report = SelectorReport(name=name, samples=len(x))
    if thresholds is None:  # one reference call per frame length
        wants: list = [None] * len(x)
        for m in sorted(set(n_in.tolist())):
            rows = np.nonzero(n_in == m)[0].tolist()
            for s, want in zip(rows, selector.select(x[rows, :m])):
                wants[s] = want
    else:
        wants = [dataclasses.replace(selector, threshold=int(t)).select(x[s:s + 1, : n_in[s]])[0]
                 for s, t in enumerate(thresholds)]
    for s, want in enumerate(wants):
        report.counts.append(want.count)
        report.cycles_simulated.append(sim.cycles[s])
        report.cycles_predicted.append(node.cycles(want.count, int(n_in[s])))
        runs = [("", sim.tokens[s], sim.counts[s])]
        if sim.throttled_tokens is not None:
            runs.append((" (back-pressure)", sim.throttled_tokens[s], sim.throttled_counts[s]))
        before = len(report.mismatches)
        for label, got, count in runs:
            report.mismatches += _compare(s, label, want, np.asarray(got), count, int(n_in[s]))
        if sim.cycles[s] != report.cycles_predicted[-1]:
            report.mismatches.append(f"{s}: cycles {sim.cycles[s]}, the model predicts {report.cycles_predicted[-1]}")
        if len(report.mismatches) > before:
            report.bad_samples.add(s)
    return report


def _compare(s: int, label: str, want, got: np.ndarray, count: int, n: int) -> list[str]:
    ref = want.tokens.numpy()
    if count != want.count:
        return [f"{s}{label}: count {count}, expected {want.count}"]
    if got.ndim != 2 or got.shape != ref.shape:
        return [f"{s}{label}: {got.size} words out, expected {ref.size} ({want.count} kept"
                f"{' + a package token' if want.count < n else ''})"]
    bad = np.argwhere(got != ref)
    if len(bad):
        t, f = (int(v) for v in bad[0])
        what = "package token" if want.count < n and t == want.count else f"kept token {t} (input token " \
            f"{int(torch.nonzero(want.keep)[t])})"
        return [f"{s}{label}: {what}, feature {f}: {int(got[t, f])}, expected {int(ref[t, f])}"]
    return []


@register_block(TokenSelector)
def check_selector(block: TokenSelector, *, layer, path: str, inputs, counts=None, test_dir: Path) -> SelectorReport:
    """A selector held by `layer`'s payload selects among the tokens arriving at that layer (its first
    input, [S, N, D]; each sample's first `counts[0][s]` tokens behind an earlier selector): simulate
    it on them, every sample, against the reference."""
    x = inputs[0]
    in_type = layer.in_types[0]
    stream = StreamType(in_type.bits, in_type.signed, tuple(int(v) for v in x.shape[1:]))
    lengths = None if not counts or counts[0] is None else counts[0]
    return verify_selector(block, x, in_type=stream, name=path, lengths=lengths, test_dir=test_dir)
