"""The integer ViT (patch_embed, encoder, cls_head): the training forward equals the golden model
layer by layer, the integer blocks track their float twins, the integer model survives save/load,
and the payload checks catch bad data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cdsl.contract.golden import golden, quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.dsl import parse
from cdsl.sw.train import train

SPEC = """
model tiny_vit {
  input x: ufixed<8,4>[1, 8, 8]
  t = patch_embed(x, patch=2, dim=16) @quant(w=8, a=8)
  e1 = encoder(t, heads=2, mlp=32) @quant(w=8, a=8)
  e2 = encoder(e1, heads=4, mlp=32) @quant(w=6, a=8, per=channel)
  y = cls_head(e2, classes=10) @quant(w=8, a=8)
  output y
}
train { epochs = 3  optimizer = adamw  lr = 0.002  weight_decay = 0.05  seed = 1 }
"""


@pytest.fixture(scope="module")
def run():
    torch.set_num_threads(1)
    return train(parse(SPEC), float_twin=False)


def test_fake_quant_equals_golden_layer_by_layer(run):
    x = run.data.x_test[:200]
    fq = run.net.trace_codes(x)
    _, gold = golden(run.intmodel, quantize_input(run.intmodel, x), trace=True)
    for name in ("t", "e1", "e2", "y"):
        assert torch.equal(fq[name], gold[name]), f"layer {name}: fake quant and golden differ"
    assert run.metrics["golden"]["agreement"] == 1.0


def test_integer_blocks_track_their_float_twins(run):
    """Each integer block, on the codes the golden model feeds it, against the float block (float
    layer norm, softmax, GELU; the same quantized weights) on the same input values: the error stays
    within 3 output steps on average (measured 1-2). Independent of the integer reference's own code."""
    net, im = run.net, run.intmodel
    x = run.data.x_test[:100]
    _, gold = golden(im, quantize_input(im, x), trace=True)
    for name, src in (("e1", "t"), ("e2", "e1"), ("y", "e2")):
        block = net.blocks[name]
        s_in, s_out = im.type_of(src).scale, im.type_of(name).scale
        xin = gold[src].double().float() * s_in
        with torch.no_grad():
            saved = block.active
            block.set_compress(())  # float nonlinearities ...
            for mod in block.modules():  # ... but the quantized weights
                if hasattr(mod, "wq") and mod is not block:
                    mod.set_compress(("quant",))
            y_float, _ = block([xin], [None])
            for mod in block.modules():
                mod.set_compress(saved) if hasattr(mod, "set_compress") else None
        err = (gold[name].double() * s_out - y_float.double()).abs()
        spread = y_float.double().abs().max().item()
        print(f"{name}: mean |error| {err.mean():.4f} = {err.mean() / s_out:.2f} output steps, max {err.max() / s_out:.1f} steps")
        assert err.mean().item() <= 3 * s_out, f"{name}: mean error {err.mean() / s_out:.2f} output steps"
        assert err.mean().item() <= 0.05 * spread, f"{name}: mean error {err.mean():.4f} vs range {spread:.3f}"


def test_intmodel_save_load_roundtrip(run, tmp_path):
    im = run.intmodel
    im.save(tmp_path / "im")
    back = IntModel.load(tmp_path / "im")
    assert back == im
    x = quantize_input(im, run.data.x_test[:50])
    assert torch.equal(golden(back, x), golden(im, x))


def test_payload_checks(run):
    im = run.intmodel
    lay = im.layer("e1")
    lay.payload.check(lay)
    bad = dataclasses.replace(lay.payload, heads=3)
    with pytest.raises(ValueError, match="payload.heads"):
        bad.check(lay)
    qkv = lay.payload.qkv
    bad = dataclasses.replace(lay.payload, qkv=dataclasses.replace(qkv, weight=qkv.weight[:, :5]))
    with pytest.raises(ValueError, match="payload.qkv.weight"):
        bad.check(lay)
    head = im.layer("y")
    norm = head.payload.norm
    bad = dataclasses.replace(head.payload, norm=dataclasses.replace(norm, gamma=norm.gamma.astype(np.float64)))
    with pytest.raises(ValueError, match="payload.norm.gamma"):
        bad.check(head)


def test_export_needs_activation_quant(tmp_path):
    from cdsl.cli import main

    spec = tmp_path / "v.cdsl"
    spec.write_text(SPEC.replace("e1 = encoder(t, heads=2, mlp=32) @quant(w=8, a=8)",
                                 "e1 = encoder(t, heads=2, mlp=32) @quant(w=8)"))
    assert main(["train", str(spec), "-o", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()
