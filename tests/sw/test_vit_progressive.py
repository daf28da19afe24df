"""Progressive token pruning: an encoder (with or without its own `@tokens` selector) after a pruned
encoder. The golden model carries each sample's token count from block to block (`Payload.run_tokens`),
the training forward equals the golden model at every layer, `kept_counts` gives every shortened
stream's count, and the later blocks' float surrogate masks the earlier selectors' padding out."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cdsl.contract.golden import golden, quantize_input
from cdsl.contract.ref.encoder import block, encode, kept_counts, selections
from cdsl.dsl import parse
from cdsl.sw.train import train
from tb.plain_vit import assert_fake_quant_equals_golden

SPEC = """
model prog_vit {
  input x: ufixed<8,4>[1, 8, 8]
  t = patch_embed(x, patch=2, dim=16) @quant(w=8, a=8)
  e1 = encoder(t, heads=2, mlp=32) @quant(w=8, a=8) @tokens(keep=0.7, heads=2)
  e2 = encoder(e1, heads=2, mlp=32) @quant(w=8, a=8)
  e3 = encoder(e2, heads=2, mlp=32) @quant(w=8, a=8) @tokens(keep=0.5, heads=2)
  y = cls_head(e3, classes=10) @quant(w=8, a=8)
  output y
}
train { optimizer = adamw  lr = 0.003  weight_decay = 0.05  seed = 1
  stage base(epochs=3, compress=[quant])
  stage prune(epochs=3, compress=all) }
"""


@pytest.fixture(scope="module")
def run():
    torch.set_num_threads(1)
    return train(parse(SPEC), float_twin=False)


@pytest.fixture(scope="module")
def traced(run):
    im = run.intmodel
    x = quantize_input(im, run.data.x_test[:150])
    out, tr = golden(im, x, trace=True)
    return x, out, tr


def test_fake_quant_equals_golden_with_two_selectors(run):
    im = run.intmodel
    assert im.layer("e1").payload.selector is not None and im.layer("e3").payload.selector is not None
    assert_fake_quant_equals_golden(run, 150)


def test_counts_travel_from_block_to_block(run, traced):
    """kept_counts names every shortened stream; e2 keeps e1's counts; e3's selector chooses among
    e2's tokens only: its counts, written here from its scores (1 + candidates at or above the
    threshold, + the package token when one was pruned), never exceed them."""
    _, _, tr = traced
    im = run.intmodel
    got = kept_counts(im, tr)
    assert list(got) == ["e1", "e2", "e3"] and (got["e2"] == got["e1"]).all()
    n = tr["t"].shape[1]
    assert got["e1"].min() < n and len(set(got["e1"].tolist())) > 1
    sel3 = im.layer("e3").payload.selector
    for b in range(len(got["e2"])):
        m = int(got["e2"][b])
        count = 1 + int((sel3.scores(tr["e2"][b:b + 1, :m])[0, 1:] >= sel3.threshold).sum())
        assert int(got["e3"][b]) == count + (count < m) <= m, f"sample {b}"
    assert (got["e3"] < got["e2"]).any()


def test_each_block_runs_on_its_samples_tokens_only(run, traced):
    """Sample by sample, the golden output rows are the block applied to that sample's tokens alone
    (no padding row ever reaches attention), and the rows after them are zero."""
    _, _, tr = traced
    im = run.intmodel
    counts, chosen = kept_counts(im, tr), selections(im, tr)
    p1, p2, p3 = (im.layer(n).payload for n in ("e1", "e2", "e3"))
    for b in range(0, 150, 7):
        n1, n3 = int(counts["e1"][b]), int(counts["e3"][b])
        s1 = p1.selector.select(tr["t"][b:b + 1])[0]
        assert torch.equal(tr["e1"][b, :n1], block(p1, s1.tokens[None])[0]) and not tr["e1"][b, n1:].any()
        assert torch.equal(tr["e2"][b, :n1], block(p2, tr["e1"][b:b + 1, :n1])[0]) and not tr["e2"][b, n1:].any()
        s3 = p3.selector.select(tr["e2"][b:b + 1, :n1])[0]
        assert len(s3.keep) == n1 and s3.length == n3 == chosen["e3"][b].length
        assert torch.equal(tr["e3"][b, :n3], block(p3, s3.tokens[None])[0]) and not tr["e3"][b, n3:].any()


def test_padding_never_matters(run, traced):
    """Garbage in the padding rows of a shortened stream changes nothing: neither the golden encoder
    (given the counts) nor the later block's float surrogate on the valid rows (eval mode)."""
    _, _, tr = traced
    im = run.intmodel
    counts = torch.as_tensor(kept_counts(im, tr)["e1"])
    x = tr["e1"][:40]
    n = counts[:40]
    pad = torch.arange(x.shape[1])[None, :] >= n[:, None]
    noisy = torch.where(pad[..., None], torch.randint(-128, 128, x.shape), x)
    for name in ("e2", "e3"):
        p = im.layer(name).payload
        a, b = encode(p, x, lengths=n), encode(p, noisy, lengths=n)
        assert torch.equal(a.out, b.out) and torch.equal(a.lengths, b.lengths), name
    blk = run.net.blocks["e3"]
    blk.eval()
    scale = im.type_of("e1").scale
    with torch.no_grad():
        valid = ~pad
        ya, _ = blk.surrogate(x.float() * scale, blk.selector.threshold(), valid)
        yb, _ = blk.surrogate(noisy.float() * scale, blk.selector.threshold(), valid)
    rows = valid[..., None].expand(-1, -1, x.shape[2])
    assert torch.allclose(ya[:, : x.shape[1]][rows], yb[:, : x.shape[1]][rows], atol=1e-5)
    # without the mask the padding would leak into attention
    with torch.no_grad():
        leak = blk.surrogate(noisy.float() * scale, blk.selector.threshold(), None)[0]
    assert not torch.allclose(ya[:, : x.shape[1]][rows], leak[:, : x.shape[1]][rows], atol=1e-3)


def test_keep_all_thresholds_give_the_unpruned_network(run, traced):
    """Thresholds 0 on both selectors: every token kept, no package, the counts are N everywhere and
    the output is the plain blocks' (the counts machinery changes nothing when nothing is pruned)."""
    x, _, _ = traced
    im = run.intmodel
    layers = tuple(dataclasses.replace(lay, payload=dataclasses.replace(
        lay.payload, selector=dataclasses.replace(lay.payload.selector, threshold=0)))
        if getattr(lay.payload, "selector", None) is not None else lay for lay in im.layers)
    keep_all = dataclasses.replace(im, layers=layers)
    out, tr = golden(keep_all, x, trace=True)
    n = tr["t"].shape[1]
    assert all((c == n).all() for c in kept_counts(keep_all, tr).values())
    h = tr["t"]
    for name in ("e1", "e2", "e3"):
        h = block(im.layer(name).payload, h)
        assert torch.equal(tr[name], h), name


@pytest.mark.slow
def test_both_selectors_rtl_on_the_golden_trace(run, traced, tmp_path):
    """verify_blocks: each selector's RTL on the tokens the golden model offers it, e3's behind e1's
    (frames of each sample's own length, from the golden model's counts): bit-exact, cycles as modelled."""
    from cdsl.sim.blocks import verify_blocks

    x, _, tr = traced
    reports = verify_blocks(run.intmodel, x[:60], test_dir=tmp_path)
    assert [r.name for r in reports] == ["e1.payload.selector", "e3.payload.selector"]
    for r in reports:
        assert r.ok, (r.name, r.mismatches[:3])
        assert r.cycles_simulated == r.cycles_predicted and r.samples == 60
    n1 = kept_counts(run.intmodel, tr)["e1"][:60]
    assert len(set(n1.tolist())) > 1  # e3's selector really saw frames of several lengths
    print([r.summary() for r in reports])


def test_vit_keep_benchmark_sweeps_as_eval_does(run):
    """benchmarks/vit_keep.py sets each selector's threshold as `cdsl eval --keeps` does (in layer order,
    e3's on what e1 at its new threshold left) and measures a later selector's keep ratio over the
    candidates it was offered: here written from e3's scores on each sample's first m rows. (It used to
    take every threshold on the trained network's trace, padding rows included, and divide e3's kept
    tokens by all N - 1 rows: on a three-selector run it printed e3 at 0.466 kept while e3 kept nothing.)"""
    import importlib.util
    from pathlib import Path

    from cdsl.sw.evaluations.tokens import thresholds_for, selectors_of, with_thresholds

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "vit_keep.py"
    spec = importlib.util.spec_from_file_location("vit_keep", path)
    vit_keep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vit_keep)
    im = run.intmodel
    x_train = quantize_input(im, run.data.x_train)
    x_test = quantize_input(im, run.data.x_test[:120])
    th, ratios = vit_keep.sweep_point(im, x_train, x_test, 0.5)
    assert th == thresholds_for(im, selectors_of(im), x_train, 0.5) and list(th) == ["e1", "e3"]
    at = with_thresholds(im, th)
    _, tr = golden(at, x_test, trace=True)
    sel1, sel3 = at.layer("e1").payload.selector, at.layer("e3").payload.selector
    n = tr["t"].shape[1]
    plain1, plain3 = [], []
    for b in range(len(x_test)):
        kept1 = int((sel1.scores(tr["t"][b:b + 1])[0, 1:] >= th["e1"]).sum())
        m = 1 + kept1 + (kept1 < n - 1)  # e2 reads e1's tokens: class, kept, package
        kept3 = int((sel3.scores(tr["e2"][b:b + 1, :m])[0, 1:] >= th["e3"]).sum())
        plain1.append(kept1 / (n - 1))
        plain3.append(kept3 / (m - 1))
    assert ratios["e1"] == pytest.approx(sum(plain1) / len(plain1), abs=1e-12)
    assert ratios["e3"] == pytest.approx(sum(plain3) / len(plain3), abs=1e-12)
