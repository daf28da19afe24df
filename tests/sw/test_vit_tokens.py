"""`@tokens` on an encoder: the selector's training twin exports into the vit-hw integer reference
(`cdsl.contract.ref.token_selector`), the training forward equals the golden model on the pruned,
variable-length token streams, and `cdsl eval` reports accuracy, keep ratio and MACs per block."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cdsl.contract.golden import golden, quantize_input
from cdsl.contract.ref.encoder import block
from cdsl.contract.ref.token_selector import MAX_THRESHOLD, SCORE_ONE, TokenSelector
from cdsl.dsl import parse
from cdsl.sw.train import save_run, train
from tb.plain_vit import assert_fake_quant_equals_golden

SPEC = """
model tiny_vit {
  input x: ufixed<8,4>[1, 8, 8]
  t = patch_embed(x, patch=2, dim=16) @quant(w=8, a=8)
  e1 = encoder(t, heads=2, mlp=32) @quant(w=8, a=8)
  e2 = encoder(e1, heads=2, mlp=32) @quant(w=8, a=8) @tokens(keep=0.5, heads=2)
  y = cls_head(e2, classes=10) @quant(w=8, a=8)
  output y
}
train { optimizer = adamw  lr = 0.002  weight_decay = 0.05  seed = 2
  stage base(epochs=2, compress=[quant])
  stage prune(epochs=2, compress=all) }
"""


@pytest.fixture(scope="module")
def run():
    torch.set_num_threads(1)
    return train(parse(SPEC), float_twin=False)


def _e2_input(run, n=120):
    im = run.intmodel
    x = quantize_input(im, run.data.x_test[:n])
    _, tr = golden(im, x, trace=True)
    return x, tr


def test_selector_exports_into_the_reference(run):
    sel = run.intmodel.layer("e2").payload.selector
    assert isinstance(sel, TokenSelector) and sel.heads == 2
    assert 0 < sel.threshold <= MAX_THRESHOLD
    lay = run.intmodel.layer("e2")
    lay.payload.check(lay)
    assert run.intmodel.layer("e1").payload.selector is None


def test_fake_quant_equals_golden_on_pruned_streams(run):
    assert_fake_quant_equals_golden(run, 150)


def test_twin_scores_track_the_integer_selector(run):
    """The training twin's float scores (sigmoid, float means) against the reference's integer scores
    (PLAN sigmoid, rounded means) on the same tokens: close (measured mean 1.6, max 2.6 of 256), and
    equal keep decisions wherever the integer score is not within the error band of the threshold."""
    _, tr = _e2_input(run)
    im = run.intmodel
    sel = im.layer("e2").payload.selector
    twin = run.net.blocks["e2"].selector
    xin = tr["e1"].double().float() * im.type_of("e1").scale
    with torch.no_grad():
        f = twin.scores(xin) * SCORE_ONE
    i = sel.scores(tr["e1"])[:, 1:].double()
    err = (f.double() - i).abs()
    print(f"twin vs integer score: mean {err.mean():.2f}, max {err.max():.2f} (of 256)")
    assert err.mean() <= 4 and err.max() <= 8
    clear = (i - sel.threshold).abs() > 8  # decisions away from the threshold band are the same
    assert torch.equal((f >= sel.threshold)[clear], (i >= sel.threshold)[clear])


def test_pruned_stream_lengths_and_rows(run):
    x, tr = _e2_input(run)
    p = run.intmodel.layer("e2").payload
    chosen = p.selector.select(tr["e1"])
    out = tr["e2"]
    n = tr["e1"].shape[1]
    lengths = [s.length for s in chosen]
    assert min(lengths) < n  # something was pruned
    for b, s in enumerate(chosen):
        assert s.length == s.count + (s.count < n)
        assert torch.all(out[b, s.length:] == 0)
        assert torch.equal(out[b, : s.length], block(p, s.tokens[None])[0])
        kept = torch.nonzero(s.keep).flatten().tolist()
        assert kept[0] == 0 and kept == sorted(kept)  # class token first, original order


def test_keep_all_and_keep_none(run):
    """Threshold 0 keeps every token (no package): the unpruned block. The largest threshold keeps only
    the class token and packs every candidate into one token: a two-token stream."""
    _, tr = _e2_input(run, 40)
    p = run.intmodel.layer("e2").payload
    x = tr["e1"]
    every = dataclasses.replace(p, selector=dataclasses.replace(p.selector, threshold=0))
    assert torch.equal(every.run(None, [x], {}), block(p, x))
    none = dataclasses.replace(p, selector=dataclasses.replace(p.selector, threshold=MAX_THRESHOLD))
    out = none.run(None, [x], {})
    assert torch.all(out[:, 2:] == 0)
    sel = none.selector.select(x)
    assert all(s.count == 1 and s.length == 2 for s in sel)


def test_pruned_tokens_feed_only_encoders_and_cls_head(tmp_path, capsys):
    """A layer that reads every token (here flatten + dense) cannot follow a pruned encoder, nor an
    encoder after one: one located error line, exit 2, before any training."""
    from cdsl.cli import main

    spec = tmp_path / "v.cdsl"
    for tail in ("f = flatten(e2)", "e3 = encoder(e2, heads=2, mlp=32) @quant(w=8, a=8)\n  f = flatten(e3)"):
        spec.write_text(SPEC.replace("y = cls_head(e2, classes=10) @quant(w=8, a=8)",
                                     tail + "\n  y = dense(f, units=10) @quant(w=8, a=8)"))
        assert main(["train", str(spec), "-o", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert "v.cdsl:6:" in err and "@tokens on 'e2'" in err and "'f' cannot read them" in err, err
        assert "Traceback" not in err


def test_eval_table(run, tmp_path, capsys, monkeypatch):
    from cdsl.cli import main

    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    folder = tmp_path / "run"
    save_run(run, folder, spec_text=SPEC)
    assert main(["eval", str(folder), "--keeps", "1.0,0.5"]) == 0
    out = capsys.readouterr().out
    assert "no selector" in out and "keep 1" in out and "keep 0.5" in out and "as trained" in out
    # training the baseline (the spec without @tokens) shows progress, as `cdsl train` does (it was silent)
    assert "training the baseline without @tokens into" in out and "compressed epoch   1/" in out, out
    assert main(["eval", str(folder), "--keeps", "0.5"]) == 0  # found this time: nothing to train
    out = capsys.readouterr().out
    assert "training the baseline" not in out and "found in" in out, out
    assert main(["eval", str(folder), "--keeps", "0.5,2"]) == 2


@pytest.mark.parametrize("level", [-4.0, 0.0, 4.0])
def test_training_decisions_keep_the_target_share_at_any_score_level(level):
    """The sampled decisions are centred on the batch's quantile: whatever the scores' overall level
    (here pushed to keep probability ~0.02, 0.5 or ~0.98 by the score bias), about `keep` of the
    candidates are kept, and the higher-scored candidates are kept more often; at the last epoch's
    temperature the decisions are those of a threshold at the quantile, up to rare noise."""
    from cdsl.sw.kinds._token_selector import GAIN, TAU_END, SelectorTwin

    torch.manual_seed(0)
    twin = SelectorTwin(dim=16, heads=2, keep=0.3, w_bits=8, act_mode="ema")
    twin.train()
    with torch.no_grad():
        twin.b_score.fill_(level / GAIN)
        twin.w_score.mul_(20.0)  # spread the scores so that the ranking is visible
    x = torch.randn(64, 17, 16)
    twin.scores(x)  # the first batch calibrates the feature quantizers
    masks = torch.stack([twin.policy(x, 0)[0].detach() for _ in range(40)])
    assert abs(float(masks.mean()) - 0.3) < 0.05, float(masks.mean())
    score = twin.scores(x).detach()
    top = score >= score.reshape(-1).quantile(0.7)
    assert float(masks[:, top].mean()) > float(masks[:, ~top].mean()) + 0.2
    twin.start_epoch(0, 10)
    twin.start_epoch(9, 10)
    assert twin.tau == pytest.approx(TAU_END)
    cold = twin.policy(x, 0)[0]
    assert float((cold == top.to(cold.dtype)).double().mean()) > 0.9
    # the regularizer: DynamicViT's ratio term plus the level term, both measured here
    reg = twin.regularizer()
    expected = 2.0 * (((cold.mean(dim=1) - 0.3) ** 2).mean() + (score.mean() - 0.3) ** 2)
    assert float(reg.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_epoch_log_reports_the_keep_ratios(run):
    """Each selector epoch's history entry (and log line) says the share of candidates kept while
    training (sampled) and on the test split (the threshold); epochs without the selector say nothing."""
    import re

    hist = run.metrics["compressed"]["history"]
    assert all("notes" not in h for h in hist if h["stage"] == "base")
    selecting = [h for h in hist if h["stage"] == "prune"]
    assert selecting
    for h in selecting:
        (note,) = h["notes"]
        got = re.fullmatch(r"e2 keep (\d\.\d\d) \(test (\d\.\d\d)\)", note)
        assert got, note
        train_keep, test_keep = float(got[1]), float(got[2])
        assert abs(train_keep - 0.5) < 0.1 and 0.0 <= test_keep <= 1.0


def test_kept_counts_are_the_selections_lengths(run):
    """kept_counts: per selector layer, each sample's output tokens, i.e. 1 + the candidates scored at or
    above the threshold, plus the package token when one was pruned (counted here from the scores)."""
    from cdsl.contract.ref.encoder import kept_counts

    _, tr = _e2_input(run)
    got = kept_counts(run.intmodel, tr)
    assert list(got) == ["e2"] and got["e2"].dtype.kind == "i" and got["e2"].shape == (120,)
    sel = run.intmodel.layer("e2").payload.selector
    n = tr["e1"].shape[1]
    count = 1 + (sel.scores(tr["e1"])[:, 1:] >= sel.threshold).sum(dim=1)
    want = count + (count < n).long()
    assert got["e2"].tolist() == want.tolist() and len(set(want.tolist())) > 1
    with pytest.raises(ValueError, match="'e1'"):
        kept_counts(run.intmodel, {k: v for k, v in tr.items() if k != "e1"})


def test_a_selector_no_stage_trains_is_refused_before_training(tmp_path, capsys):
    """Stages that never activate @tokens leave the selector untrained, with no integer form: the spec
    shows it, so `cdsl check` says so at the annotation and `cdsl train` refuses before training (it
    trained, then said 'no integer model exported' and exited 0). compress=all or a list naming
    tokens trains it."""
    from cdsl.cli import main
    from cdsl.errors import Source
    from cdsl.flow import spec_problems

    text = SPEC.replace("stage prune(epochs=2, compress=all)", "stage more(epochs=2, compress=[quant])")
    ((stage, err),) = spec_problems(parse(text, "v.cdsl"))
    line = str(err.located(Source("v.cdsl", text))).split("\n")[0]
    assert stage == "export" and line == ("v.cdsl:6:54: error: @tokens on layer 'e2' is never trained: no stage "
                                          "activates it (base, more)"), line
    spec = tmp_path / "v.cdsl"
    spec.write_text(text)
    assert main(["train", str(spec), "-o", str(tmp_path / "r")]) == 2
    assert "never trained" in capsys.readouterr().err and not (tmp_path / "r").exists()
    for ok in ("stage more(epochs=2, compress=[quant, tokens])", "stage more(epochs=2)"):
        assert spec_problems(parse(SPEC.replace("stage prune(epochs=2, compress=all)", ok), "v.cdsl")) == []
