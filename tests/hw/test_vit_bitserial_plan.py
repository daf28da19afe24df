"""`@bitserial(lanes=L)` on the ViT kinds, as the planners see it (`payload.bitserial`): every token
linear of the layer's sub-graph (patch projection; qkv, proj, fc1, fc2; the head's fc) gets the
bit-serial unit with the linear's plane masks and L lanes (fixed); without it the bit-parallel unit
and the default lanes. The field survives the codec, and a payload written before it decodes as
bit-parallel."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from cdsl.contract import codec
from cdsl.contract.intmodel import IntLayer, QType, Requant
from cdsl.contract.ref._vit import IntLinear, IntNorm
from cdsl.contract.ref.add import AddPayload
from cdsl.contract.ref.bitserial_mac import plane_masks
from cdsl.contract.ref.cls_head import ClsHeadPayload
from cdsl.contract.ref.encoder import EncoderPayload
from cdsl.contract.ref.patch_embed import PatchEmbedPayload
from cdsl.hw.kinds.cls_head import plan_cls_head
from cdsl.hw.kinds.encoder import plan_encoder
from cdsl.hw.kinds.patch_embed import plan_patch_embed
from cdsl.hw.kinds.token_linear import TokenLinearNode
from cdsl.hw.plan import PlanContext, StreamType

RQ = Requant(np.array([1 << 30]), np.array([8]), -128, 127)
Q8 = QType(8, True, 0.1)


def _lin(rng, k, o, bits=5):
    """Weights of `bits` bits; odd rows in 0..7, so their upper planes are empty (masks differ per row)."""
    w = np.array([[rng.randint(0, 7) if r % 2 else rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                   for _ in range(k)] for r in range(o)], dtype=np.int64)
    return IntLinear(w, np.array([rng.randint(-50, 50) for _ in range(o)], dtype=np.int64), RQ)


def _norm(d):
    return IntNorm(np.full(d, 64, dtype=np.int64), np.zeros(d, dtype=np.int64), RQ)


def _layers(rng, lanes):
    n, d, m, c, p = 5, 8, 16, 1, 4
    add = AddPayload(mult_a=1, mult_b=1, shift=0, qmin=-128, qmax=127)
    emb = _lin(rng, c * p * p, d)
    t = IntLayer("t", ("x",), ((c, 8, 8),), (Q8,), (n, d), Q8, PatchEmbedPayload(
        patch=p, weight=emb.weight, bias=emb.bias, cls=np.zeros(d, dtype=np.int64), pos=np.zeros((n, d), dtype=np.int64),
        requant=RQ, bitserial=lanes))
    e = IntLayer("e", ("t",), ((n, d),), (Q8,), (n, d), Q8, EncoderPayload(
        heads=2, norm1=_norm(d), qkv=_lin(rng, d, 3 * d), softmax_x0=-100, attn=RQ, proj=_lin(rng, d, d), add1=add,
        norm2=_norm(d), fc1=_lin(rng, d, m), gelu_cut=50, gelu_c=100, gelu=RQ, fc2=_lin(rng, m, d), add2=add,
        bitserial=lanes))
    y = IntLayer("y", ("e",), ((n, d),), (Q8,), (10,), Q8, ClsHeadPayload(norm=_norm(d), fc=_lin(rng, d, 10),
                                                                          bitserial=lanes))
    return [(plan_patch_embed, t, StreamType(8, True, (c, 8, 8))), (plan_encoder, e, StreamType(8, True, (n, d))),
            (plan_cls_head, y, StreamType(8, True, (n, d)))]


def _linears(plan, layer, in_type, **ctx):
    nodes = plan(layer, PlanContext(in_streams=("src",), in_types=(in_type,), **ctx))
    return [n for n in nodes if isinstance(n, TokenLinearNode)]


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_every_token_linear_is_bit_serial_with_the_layers_lanes(lanes):
    rng = random.Random(lanes)
    names = []
    for plan, layer, in_type in _layers(rng, lanes):
        layer.payload.check(layer)
        for node in _linears(plan, layer, in_type, default_lanes=8):
            names.append(node.name)
            assert node.unit.describe() == "bit-serial MAC", node.name
            assert node.unit.masks == tuple(int(v) for v in plane_masks(node.weight, node.w_bits)), node.name
            assert (node.lanes, node.lanes_fixed) == (lanes, True), node.name
            # the cycle model counts each output channel's non-zero planes
            assert node.token_cycles() == sum(-(-node.k // lanes) * max(1, bin(m).count("1")) for m in node.unit.masks)
            assert node.token_cycles() < node.o * -(-node.k // lanes) * node.w_bits
    assert names == ["t", "e.qkv", "e.proj", "e.fc1", "e.fc2", "y"]


def test_without_the_annotation_bit_parallel_and_default_lanes():
    for plan, layer, in_type in _layers(random.Random(0), None):
        for node in _linears(plan, layer, in_type, default_lanes=4):
            assert node.unit.describe() == "bit-parallel MAC"
            assert (node.lanes, node.lanes_fixed) == (4, False)
            assert node.token_cycles() == node.o * -(-node.k // 4)


def test_a_gen_lanes_override_wins():
    for plan, layer, in_type in _layers(random.Random(1), 2):
        for node in _linears(plan, layer, in_type, lanes={layer.name: 4}):
            assert node.unit.describe() == "bit-serial MAC" and (node.lanes, node.lanes_fixed) == (4, True)


def test_payload_check_refuses_lanes_beyond_the_smallest_fan_in():
    for (_, layer, _), most in zip(_layers(random.Random(2), None), (16, 8, 8)):
        bad = dataclasses.replace(layer, payload=dataclasses.replace(layer.payload, bitserial=most + 1))
        with pytest.raises(ValueError, match="payload.bitserial"):
            bad.payload.check(bad)
        ok = dataclasses.replace(layer, payload=dataclasses.replace(layer.payload, bitserial=most))
        ok.payload.check(ok)


def test_the_field_round_trips_and_older_payloads_decode_bit_parallel():
    for _, layer, _ in _layers(random.Random(3), 2):
        arrays = {}
        obj = codec.encode(layer.payload, arrays, "p")
        assert obj["bitserial"] == 2 and codec.decode(obj, arrays).bitserial == 2
        del obj["bitserial"]  # written before the field existed
        assert codec.decode(obj, arrays).bitserial is None
        with pytest.raises(codec.CodecError, match="missing field"):  # other fields stay required
            codec.decode({k: v for k, v in obj.items() if k != list(obj)[1]}, arrays)


def test_a_run_written_before_the_field_still_loads_under_its_own_digest(tmp_path):
    """A model exported by a cdsl without the `bitserial` field re-encodes differently today; the file
    is untouched, so it loads, and keeps the digest it was exported with (the run's seal, the RTL
    manifest's intmodel_sha256). A model changed after loading is named by its own encoding."""
    import json

    from cdsl.contract import intmodel as intmodel_mod
    from cdsl.contract.intmodel import IntInput, IntModel, IntModelError

    layers = tuple(layer for _, layer, _ in _layers(random.Random(4), None))
    model = IntModel(name="old", inputs=(IntInput("x", (1, 8, 8), Q8),), layers=layers, outputs=("y",))
    folder = model.save(tmp_path / "intmodel")
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["layers"]:
        del entry["payload"]["bitserial"]  # as the older cdsl wrote it
    arrays = intmodel_mod.load_arrays(folder / "tensors.npz")
    manifest["digest"] = intmodel_mod._digest(manifest, arrays)  # and sealed it
    (folder / "manifest.json").write_text(json.dumps(manifest))

    loaded = IntModel.load(folder)
    assert loaded == model and loaded.digest() == manifest["digest"] != model.digest()
    changed = dataclasses.replace(loaded, name="renamed")
    assert changed.digest() == dataclasses.replace(model, name="renamed").digest()
    manifest["name"] = "edited"  # an edit after export is still refused
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntModelError, match="digest: the integer model .* was changed after it was exported"):
        IntModel.load(folder)
