"""`@bitserial(lanes=L)` on the ViT kinds, as the planners see it (`payload.bitserial`): every token
linear of the layer's sub-graph (patch projection; qkv, proj, fc1, fc2; the head's fc) gets the
bit-serial unit with the linear's plane masks and L lanes (fixed); without it the bit-parallel unit
and the default lanes. The field survives the codec, and a payload written before it decodes as
bit-parallel."""

from __future__ import annotations

import dataclasses
import random

import pytest

from cdsl.contract import codec
from cdsl.contract.ref.bitserial_mac import plane_masks
from cdsl.hw.kinds.token_linear import TokenLinearNode
from cdsl.hw.plan import PlanContext
from tb.vit_layers import Q8, vit_layers


def _linears(plan, layer, in_type, **ctx):
    nodes = plan(layer, PlanContext(in_streams=("src",), in_types=(in_type,), **ctx))
    return [n for n in nodes if isinstance(n, TokenLinearNode)]


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_every_token_linear_is_bit_serial_with_the_layers_lanes(lanes):
    rng = random.Random(lanes)
    names = []
    for plan, layer, in_type in vit_layers(rng, lanes):
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
    for plan, layer, in_type in vit_layers(random.Random(0), None):
        for node in _linears(plan, layer, in_type, default_lanes=4):
            assert node.unit.describe() == "bit-parallel MAC"
            assert (node.lanes, node.lanes_fixed) == (4, False)
            assert node.token_cycles() == node.o * -(-node.k // 4)


def test_a_gen_lanes_override_wins():
    for plan, layer, in_type in vit_layers(random.Random(1), 2):
        for node in _linears(plan, layer, in_type, lanes={layer.name: 4}):
            assert node.unit.describe() == "bit-serial MAC" and (node.lanes, node.lanes_fixed) == (4, True)


def test_payload_check_refuses_lanes_beyond_the_smallest_fan_in():
    for (_, layer, _), most in zip(vit_layers(random.Random(2), None), (16, 8, 8)):
        bad = dataclasses.replace(layer, payload=dataclasses.replace(layer.payload, bitserial=most + 1))
        with pytest.raises(ValueError, match="payload.bitserial"):
            bad.payload.check(bad)
        ok = dataclasses.replace(layer, payload=dataclasses.replace(layer.payload, bitserial=most))
        ok.payload.check(ok)


def test_the_field_round_trips_and_older_payloads_decode_bit_parallel():
    for _, layer, _ in vit_layers(random.Random(3), 2):
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

    layers = tuple(layer for _, layer, _ in vit_layers(random.Random(4), None))
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
