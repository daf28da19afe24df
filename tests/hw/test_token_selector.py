"""Token selector engine against the integer reference, element by element: in Amaranth's simulator
(fast, with stalls) and in Verilator through the bulk-load harness (slow). Cases: all tokens kept,
only the class token kept, ties at the threshold, extreme scores (saturated logits) and extreme
tokens (all max, all min, zeros), N and D that are multiples of nothing inside (17 tokens, 3 heads
of 2 features), random. The expected values are the reference's (`TokenSelector.select`), the
expected cycles the cycle model's (`TokenSelectorNode.cycles`)."""

import dataclasses

import numpy as np
import pytest
import torch

from tb.pysim import run_graph
from tb.selector_cases import random_selector, random_tokens

from cdsl.contract.ref.token_selector import MAX_THRESHOLD
from cdsl.hw.kinds.token_selector import plan_token_selector
from cdsl.hw.plan import StreamType

CONFIGS = {  # name: (N, D, heads, L, J, logit_spread)
    "vit": (17, 32, 2, 8, 8, 3.0),
    "odd": (17, 6, 3, 3, 5, 3.0),
    "extreme": (13, 10, 2, 3, 4, 60.0),  # logits far beyond the sigmoid's knees: scores 0 or 256
    "tiny": (2, 2, 1, 1, 1, 3.0),
}


def build(config: str, seed: int):
    n, dim, heads, nl, nj, spread = CONFIGS[config]
    rng = np.random.default_rng(seed)
    x = random_tokens(rng, 10, n, dim)
    sel = random_selector(rng, x, heads=heads, local=nl, hidden=nj, logit_spread=spread)
    corner = torch.stack([torch.full((n, dim), 127), torch.full((n, dim), -128), torch.zeros(n, dim, dtype=torch.int64)])
    x = torch.cat([x, corner])
    # thresholds: the selector's, all kept (0), only the class token (257), and ties with a token's score
    scores = sel.scores(x)
    thresholds = [128, 0, MAX_THRESHOLD] + [int(scores[s, 1 + s % (n - 1)]) for s in range(3, len(x))]
    node = plan_token_selector(sel, name="sel", input="t", in_type=StreamType(8, True, (n, dim)))
    return sel, node, x, thresholds


def expected(sel, x, thresholds):
    return [dataclasses.replace(sel, threshold=t).select(x[s:s + 1])[0] for s, t in enumerate(thresholds)]


def test_cases_cover_what_they_claim():
    for config in CONFIGS:
        sel, node, x, thresholds = build(config, 0)
        want = expected(sel, x, thresholds)
        n = x.shape[1]
        assert want[1].count == n and want[1].package is None  # all kept
        assert want[2].count == 1 and want[2].package is not None  # only the class token
        ties = [s for s in range(3, len(x)) if int(want[s].scores[1 + s % (n - 1)]) == thresholds[s]]
        assert len(ties) == len(x) - 3 and all(bool(want[s].keep[1 + s % (n - 1)]) for s in ties)
        if config != "tiny":
            assert len({w.count for w in want}) >= 3  # the output length really varies
    _, _, x, thresholds = build("extreme", 0)
    sel = build("extreme", 0)[0]
    s, z = sel.head_scores(x), sel.logits(x)
    assert ((s == 0) | (s == 256)).float().mean() > 0.8  # saturated head scores
    assert {0, 256} <= set(s.unique().tolist()) and {-128, 127} <= set(z.unique().tolist())  # clamped logits
    assert {0, 256} <= set(sel.scores(x)[:, 1:].unique().tolist())


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_engine_in_pysim(config, stall):
    seed = 1
    sel, node, x, thresholds = build(config, seed)
    picks = range(len(x)) if config in ("tiny", "odd") else [0, 1, 2, 3, 11]
    for s in picks:
        want = expected(sel, x[s:s + 1], thresholds[s:s + 1])[0]
        got, cycles = run_graph(node.component(count=True), {"i": x[s].reshape(-1).tolist()},
                                {"o": want.length * node.dim, "count": 1}, ports={"threshold": thresholds[s]},
                                seed=s, in_stall=stall, out_stall=stall)
        assert got["count"] == [want.count], f"seed={seed} sample {s}"
        assert got["o"] == want.tokens.reshape(-1).tolist(), f"seed={seed} sample {s} threshold {thresholds[s]}"
        if stall == 0.0:
            assert cycles == node.cycles(want.count), f"seed={seed} sample {s}"


def test_cycle_model_phases():
    _, node, _, _ = build("vit", 0)  # N 17, D 32, H 2 heads of d 16, L 8, J 8
    p = node.phase_cycles()
    assert p["local"] == 16 * 2 * 8 * 17 and p["score"] == 16 * 2 * (8 * 17 + 9)
    assert node.cycles(17) == node.cycles(16) == node.cycles(1)  # the pad: the count does not matter
    package = 32 * (1 + 8 + 1)  # per feature: load the division, 8 restoring steps (8-bit tokens), send
    full = 17 * 32 + 16 * 2 * 8 * 17 + 2 * 8 + 16 * 2 * (8 * 17 + 9) + 1 + 17 * 32 + package
    assert node.cycles(1) == full and node.delay() == full - 17 * 32
    five = 5 * 32 + 4 * 2 * 8 * 17 + 2 * 8 + 4 * 2 * (8 * 17 + 9) + 1 + 5 * 32 + package  # a frame of 5 tokens
    assert node.cycles(3, 5) == five and node.delay_tokens({}, 5, kept=4) == five - 5 * 32
    assert node.out_tokens(17) is None  # the data decides (kept_counts)
    for bad in [lambda: node.cycles(18), lambda: node.cycles(6, 5)]:
        with pytest.raises(ValueError, match="count"):
            bad()
    for bad in [lambda: node.cycles(1, 18), lambda: node.cycles(1, 1), lambda: node.delay_tokens({}, 5, kept=6)]:
        with pytest.raises(ValueError, match="tokens"):
            bad()


@pytest.mark.parametrize("config", ["vit", "odd", "tiny"])
def test_shorter_frames_in_pysim(config):
    """Frames of n < N tokens (behind an earlier selector): n comes from `last`; the output is the
    reference's selection among those n tokens, the cycles the model's for n; samples of different
    lengths one after another (a short frame after a full one and the reverse), under stalls."""
    seed = 5
    sel, node, x, thresholds = build(config, seed)
    n = x.shape[1]
    rng = np.random.default_rng(seed)
    for s in range(len(x)):
        n_in = [2, max(2, n - 1), n][s % 3] if s < 6 else int(rng.integers(2, n + 1))
        frame = x[s:s + 1, :n_in]
        want = dataclasses.replace(sel, threshold=thresholds[s]).select(frame)[0]
        for stall in (0.0, 0.3):
            got, cycles = run_graph(node.component(count=True), {"i": frame.reshape(-1).tolist()},
                                    {"o": want.length * node.dim, "count": 1}, ports={"threshold": thresholds[s]},
                                    seed=s, in_stall=stall, out_stall=stall)
            assert got["count"] == [want.count], f"seed={seed} sample {s} n={n_in}"
            assert got["o"] == want.tokens.reshape(-1).tolist(), f"seed={seed} sample {s} n={n_in} stall {stall}"
            if stall == 0.0:
                assert cycles == node.cycles(want.count, n_in), f"seed={seed} sample {s} n={n_in}"


def test_network_engine_has_no_count_port():
    """The network's engine (`node.component()`): ports i, o and the threshold only, never stalled
    by a count nobody reads; its delay from the last input word is `delay_tokens`; input gaps change
    nothing in the output."""
    sel, node, x, thresholds = build("odd", 7)
    dut = node.component()
    assert set(dut.signature.members) == {"i", "o", "threshold"}
    for s, n_in in ((0, 17), (1, 9), (4, 3)):
        frame = x[s:s + 1, :n_in]
        want = sel.select(frame)[0]
        got, cycles = run_graph(node.component(), {"i": frame.reshape(-1).tolist()}, {"o": want.length * node.dim},
                                ports={"threshold": sel.threshold}, seed=s)
        assert got["o"] == want.tokens.reshape(-1).tolist(), f"sample {s} n={n_in}"
        assert cycles == n_in * node.dim + node.delay_tokens({}, n_in, kept=want.length), f"sample {s} n={n_in}"
        stalled, stalled_cycles = run_graph(node.component(), {"i": frame.reshape(-1).tolist()},
                                            {"o": want.length * node.dim}, ports={"threshold": sel.threshold},
                                            seed=s, in_stall=0.5)
        assert stalled["o"] == got["o"] and stalled_cycles > cycles, f"sample {s} n={n_in}"


@pytest.mark.slow
@pytest.mark.parametrize("config", ["vit", "odd", "extreme"])
def test_engine_in_verilator(config, tmp_path):
    from cdsl.sim.blocks.token_selector import simulate_selector

    seed = 2
    sel, node, x, thresholds = build(config, seed)
    n = x.shape[1]
    lengths = [n if s % 2 else 2 + s % (n - 1) for s in range(len(x))]  # every other frame shorter
    sim = simulate_selector(node, x, thresholds=thresholds, lengths=lengths, throttle=7, test_dir=tmp_path)
    for s in range(len(x)):
        want = dataclasses.replace(sel, threshold=thresholds[s]).select(x[s:s + 1, :lengths[s]])[0]
        for label, tokens, count in (("clean", sim.tokens[s], sim.counts[s]),
                                     ("throttled", sim.throttled_tokens[s], sim.throttled_counts[s])):
            assert count == want.count, f"seed={seed} sample {s} {label}"
            assert np.asarray(tokens).tolist() == want.tokens.tolist(), f"seed={seed} sample {s} {label}"
        assert sim.cycles[s] == node.cycles(want.count, lengths[s]), f"seed={seed} sample {s}"


@pytest.mark.slow
def test_verify_selector_on_its_own_engine(tmp_path):
    """verify_selector: every sample bit-exact, cycles as the model says, the summary line."""
    from cdsl.sim.blocks.token_selector import verify_selector

    sel, node, x, thresholds = build("odd", 3)
    ok = verify_selector(sel, x, in_type=node.in_types[0], thresholds=thresholds, test_dir=tmp_path / "a")
    assert ok.ok and ok.cycles_simulated == ok.cycles_predicted, ok.mismatches[:3]
    assert "13/13 samples bit-exact" in ok.summary()


def test_blocks_are_found_inside_payloads():
    from tb.selector_layer import selector_model

    from cdsl.sim.blocks import blocks_of

    sel, _, _, _ = build("odd", 4)
    blocks = blocks_of(selector_model(sel, 17, 6))
    assert [(b.layer.name, b.path) for b in blocks] == [("s", "s.payload.selector")] and blocks[0].value is sel


def test_compare_names_sample_token_and_feature():
    from cdsl.sim.blocks.token_selector import _compare

    sel, node, x, _ = build("odd", 5)
    want = sel.select(x[:1])[0]
    assert want.count < 17
    good = want.tokens.numpy().copy()
    assert _compare(0, "", want, good, want.count, 17) == []
    bad = good.copy()
    bad[want.count, 2] += 1
    assert _compare(4, "", want, bad, want.count, 17) == [f"4: package token, feature 2: {bad[want.count, 2]}, "
                                                          f"expected {good[want.count, 2]}"]
    assert "count" in _compare(0, "", want, good, want.count + 1, 17)[0]
    assert "words out" in _compare(0, "", want, good[:-1], want.count, 17)[0]
    swapped = good.copy()
    swapped[[1, 2]] = swapped[[2, 1]]
    if not (good[1] == good[2]).all():
        assert "kept token 1" in _compare(0, "", want, swapped, want.count, 17)[0]


@pytest.mark.slow
def test_verify_blocks_on_the_golden_trace(tmp_path):
    """A model whose layer holds a selector: verify_blocks feeds the selector the golden trace of the
    layer's input (here a ReLU's output), every sample, and the RTL agrees."""
    from tb.selector_layer import selector_model

    from cdsl.sim.blocks import verify_blocks

    sel, _, x, _ = build("odd", 6)
    sel = dataclasses.replace(sel, threshold=int(sel.scores(x.clamp(min=0))[:, 1:].median()))
    reports = verify_blocks(selector_model(sel, 17, 6), x, test_dir=tmp_path)
    assert len(reports) == 1 and reports[0].ok, reports[0].mismatches[:3]
    assert reports[0].samples == len(x) and reports[0].name == "s.payload.selector"
    relu = x.clamp(min=0)
    assert reports[0].counts == [s.count for s in sel.select(relu)] and len(set(reports[0].counts)) > 3


@pytest.mark.slow
def test_cdsl_verify_falls_back_to_blocks(tmp_path, monkeypatch):
    """`cdsl verify`'s block path on a model whose other layers have no RTL: one line per block, the
    verdicts in verify_blocks.json, False when a block disagrees (here: a run folder's test split
    stands in through load_run)."""
    import json
    from types import SimpleNamespace

    from rich.console import Console
    from tb.selector_layer import selector_model

    import cdsl.sw.evaluate
    from cdsl.commands.verify import verify_blocks_run
    from cdsl.sim.blocks import missing_hardware

    sel, _, x, _ = build("odd", 6)
    sel = dataclasses.replace(sel, threshold=int(sel.scores(x.clamp(min=0))[:, 1:].median()))
    model = selector_model(sel, 17, 6)
    why = missing_hardware(model)
    assert why is not None and "'s'" in why
    data = SimpleNamespace(x_test=x.double() * 0.1, y_test=np.zeros(len(x), dtype=np.int64))
    monkeypatch.setattr(cdsl.sw.evaluate, "load_run", lambda run_dir: (None, None, data))
    console = Console(record=True, width=200)
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert verify_blocks_run(tmp_path, model, n=None, settings={}, console=console, why=why)
    assert not list(scratch.glob("cdsl-blocks-*")), "the blocks' scratch folder was left behind"
    text = console.export_text()
    assert "ok s.payload.selector: 13/13 samples bit-exact" in text, text
    saved = json.loads((tmp_path / "verify_blocks.json").read_text())
    assert saved["samples"] == 13 and saved["blocks"][0]["ok"]

    # a reference that differs in one package feature of sample 0: the block fails, the sample is named
    from cdsl.contract.ref.token_selector import TokenSelector

    real = TokenSelector.select

    def off_by_one(self, tokens):
        out = real(self, tokens)
        out[0].tokens[-1, 0] += 1
        return out

    monkeypatch.setattr(TokenSelector, "select", off_by_one)
    console = Console(record=True, width=200)
    assert not verify_blocks_run(tmp_path, model, n=None, settings={}, console=console, why=why)
    text = console.export_text()
    assert "MISMATCH s.payload.selector: 12/13" in text and "sample 0: package token, feature 0" in text, text


@pytest.mark.parametrize("config", ["odd", "tiny"])
def test_back_to_back_interval_is_a_bound(config):
    """Inferences back to back (input always offered, outputs always taken): each inference's outputs equal
    the reference, and the cycles between consecutive inferences' count words never exceed the node's
    `interval` (a bound: the kept count varies; `interval_exact` is False)."""
    from amaranth.sim import Simulator

    seed = 3
    sel, node, x, thresholds = build(config, seed)
    assert not node.interval_exact
    frames = [x[s].reshape(-1).tolist() for s in range(4)]
    want = [dataclasses.replace(sel, threshold=128).select(x[s:s + 1])[0] for s in range(4)]
    words = [w for f in frames for w in f]
    dut = node.component(count=True)
    counts, tokens, count_cycles = [], [], []

    async def testbench(ctx):
        ctx.set(dut.threshold, 128)
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.count.ready, 1)
        k, cycle = 0, 0
        while len(count_cycles) < len(frames) or len(tokens) < sum(w.length * node.dim for w in want):
            assert cycle < 200_000, f"seed={seed}: stuck"
            ctx.set(dut.i.valid, k < len(words))
            if k < len(words):
                ctx.set(dut.i.payload, {"data": words[k], "last": int(k % len(frames[0]) == len(frames[0]) - 1)})
                if ctx.get(dut.i.ready):
                    k += 1
            if ctx.get(dut.count.valid):
                counts.append(int(ctx.get(dut.count.payload.data)))
                count_cycles.append(cycle)
            if ctx.get(dut.o.valid):
                tokens.append(int(ctx.get(dut.o.payload.data)))
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert counts == [w.count for w in want], f"seed={seed}"
    assert tokens == [v for w in want for v in w.tokens.reshape(-1).tolist()], f"seed={seed}"
    gaps = np.diff(count_cycles).tolist()
    assert all(g <= node.interval() for g in gaps), f"seed={seed}: {gaps} > {node.interval()}"
    print(config, "intervals", gaps, "bound", node.interval())


def test_two_selectors_in_a_network():
    """Network-ready: two selector nodes chained in a `NetworkPlan` (`cdsl.hw.network.Network`, wired
    like any node; the plan survives the manifest codec): the second selects among the variable-length
    frames the first leaves (progressive pruning in hardware), nothing stalls on a count port, the
    output equals the reference applied twice, and the cycles are N D + the first node's
    `delay_tokens(N)` + the second's `delay_tokens(n1)`, n1 the first's output tokens."""
    import json

    from tb.pysim import run_graph
    from tb.selector_cases import random_selector

    from cdsl.hw.network import Network, input_port, output_port
    from cdsl.hw.plan import NetworkPlan, PlanInput, PlanOutput

    seed = 9
    sel1, node1, x, _ = build("odd", seed)
    n, dim = x.shape[1], x.shape[2]
    rng = np.random.default_rng(seed)
    sel2 = random_selector(rng, x, heads=3, local=2, hidden=3, threshold=150)
    stream = StreamType(8, True, (n, dim))
    s1 = plan_token_selector(sel1, name="e1.select", input="x", in_type=stream)
    s2 = plan_token_selector(sel2, name="e2.select", input="e1.select", in_type=s1.out_type)
    plan = NetworkPlan("selectors", (PlanInput("x", stream),), (PlanOutput("y", "e2.select", s2.out_type),),
                       (s1, s2), (), ())
    obj, arrays = plan.to_json()
    assert NetworkPlan.from_json(json.loads(json.dumps(obj)), arrays) == plan
    lengths = set()
    for s in range(len(x)):
        first = sel1.select(x[s:s + 1])[0]
        second = sel2.select(first.tokens[None])[0]
        lengths.add(first.length)
        got, cycles = run_graph(Network(plan=plan), {input_port("x"): x[s].reshape(-1).tolist()},
                                {output_port("y"): second.length * dim}, seed=s)
        assert got[output_port("y")] == second.tokens.reshape(-1).tolist(), f"seed={seed} sample {s}"
        want = n * dim + s1.delay_tokens({}, n, first.length) + s2.delay_tokens({}, first.length, second.length)
        assert cycles == want, f"seed={seed} sample {s}: {cycles} cycles, model {want}"
    assert len(lengths) >= 3, lengths  # the second selector saw frames of several lengths
