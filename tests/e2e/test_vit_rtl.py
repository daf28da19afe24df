"""A tiny ViT (tests/fixtures/vit_tiny.cdsl: 5 tokens of 8, two encoders, the second behind a token
selector) through `cdsl gen` and Verilator: every output word equal to the golden model's, and each
sample's simulated cycles equal to the cycle model's given that sample's kept-token count, with the
selector at three thresholds (every token kept, the trained one, only the class token) and without
the selector at all. Test samples plus corner images (zeros, all max, a checkerboard of the extremes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from cdsl.cli import main
from cdsl.contract.golden import quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.hw.generate import generate
from cdsl.sim.cosim import token_counts, verify
from cdsl.sim.design import Design
from cdsl.sw.evaluate import load_run

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vit_tiny.cdsl"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    run = tmp_path_factory.mktemp("vit_tiny") / "run"
    assert main(["train", str(FIXTURE), "-o", str(run), "--epochs", "2"]) == 0
    intmodel = IntModel.load(run / "intmodel")
    _, _, data = load_run(run)
    x = quantize_input(intmodel, data.x_test[:20])
    lo, hi = intmodel.inputs[0].qtype.qmin, intmodel.inputs[0].qtype.qmax
    shape = tuple(x.shape[1:])
    board = torch.tensor(np.indices(shape).sum(axis=0) % 2 == 0)
    corners = torch.stack([torch.full(shape, 0), torch.full(shape, hi), torch.full(shape, lo),
                           torch.where(board, hi, lo)]).to(torch.int64)
    return run, intmodel, torch.cat([x, corners])


def _check(report, what):
    seed = report.run.seed
    assert report.exact == report.samples, f"{what}: {report.first_mismatch} (seed={seed})"
    assert report.cycles_exact == report.samples, \
        f"{what}: simulated {report.run.cycles.tolist()} vs {report.run.predicted_per_sample.tolist()} (seed={seed})"


@pytest.mark.slow
def test_tiny_vit_with_its_selector_bit_and_cycle_exact_per_sample(tiny, tmp_path):
    run, intmodel, x = tiny
    gen = generate(intmodel, tmp_path / "rtl")
    assert [n.name for n in gen.plan.nodes][:3] == ["t.patches", "t", "e1.norm1"]
    assert gen.manifest["cycles"]["token_nodes"] == ["e2.select"]
    design = Design.load(tmp_path / "rtl")
    n_tokens = intmodel.shape_of("e1")[0]
    default = intmodel.layer("e2").payload.selector.threshold
    seen = set()
    for threshold in (0, default, 257):
        settings = {"e2": {"threshold": threshold}}
        report = verify(intmodel, design, x, settings=settings, localize=False)
        _check(report, f"threshold {threshold}")
        counts = token_counts(intmodel, design, x, settings)["e2.select"]
        want = report.run.predicted_per_sample
        # the model's figure per sample is that of its kept count (fewer tokens, fewer cycles)
        by_count = {int(c): int(w) for c, w in zip(counts, want)}
        assert len(by_count) == len(set(zip(counts.tolist(), want.tolist())))
        assert all(a > b for (ca, a), (cb, b) in zip(sorted(by_count.items())[1:], sorted(by_count.items())))
        seen.update(counts.tolist())
        if threshold == 0:
            assert set(counts.tolist()) == {n_tokens}  # every token kept: no package token
            assert (report.run.cycles == report.run.cycles[0]).all()
        if threshold == 257:
            assert set(counts.tolist()) == {2}  # the class token and the package token
    assert len(seen) >= 3, seen


@pytest.mark.slow
def test_tiny_vit_without_a_selector(tiny, tmp_path):
    _, intmodel, x = tiny
    layers = tuple(dataclasses.replace(lay, payload=dataclasses.replace(lay.payload, selector=None))
                   if lay.name == "e2" else lay for lay in intmodel.layers)
    plain = dataclasses.replace(intmodel, layers=layers)
    gen = generate(plain, tmp_path / "rtl")
    assert gen.manifest["cycles"]["token_nodes"] == [] and not gen.plan.registers
    report = verify(plain, Design.load(tmp_path / "rtl"), x, localize=False)
    _check(report, "no selector")
    assert report.run.predicted is None and (report.run.cycles == gen.manifest["cycles"]["cycles_per_inference"]).all()


@pytest.mark.slow
def test_tiny_vit_with_two_selectors_in_a_row(tiny, tmp_path):
    """Progressive pruning: a copy of e2 (its selector included) as e3 behind it, so e3's selector reads
    a frame e2's already shortened; both counts come from the golden model, per sample."""
    _, intmodel, x = tiny
    e2 = intmodel.layer("e2")
    e3 = dataclasses.replace(e2, name="e3", inputs=("e2",))
    head = dataclasses.replace(intmodel.layer("y"), inputs=("e3",))
    layers = tuple(lay for lay in intmodel.layers if lay.name != "y") + (e3, head)
    progressive = dataclasses.replace(intmodel, layers=layers)
    gen = generate(progressive, tmp_path / "rtl")
    assert gen.manifest["cycles"]["token_nodes"] == ["e2.select", "e3.select"]
    design = Design.load(tmp_path / "rtl")
    for threshold in (e2.payload.selector.threshold, 100):
        settings = {"e2": {"threshold": threshold}, "e3": {"threshold": threshold}}
        report = verify(progressive, design, x, settings=settings, localize=False)
        _check(report, f"two selectors at {threshold}")
        counts = token_counts(progressive, design, x, settings)
        assert (counts["e3.select"] <= counts["e2.select"]).all()
