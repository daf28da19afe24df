"""`@bitserial(lanes=2)` on a tiny ViT's patch embedding, first encoder and head (tests/fixtures/
vit_tiny.cdsl, e2 left bit-parallel behind its selector) through `cdsl train`, `cdsl gen` and Verilator:
every output word equal to the golden model's and each sample's simulated cycles equal to the cycle
model's. The bit-serial token linears' figures in the manifest follow the bit-serial cycle model
(per token: the sum over output channels of ceil(K / lanes) * max(1, active planes)), unlike the
bit-parallel O * ceil(K / lanes) of the same linear without the annotation."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from cdsl.cli import main
from cdsl.contract.golden import quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.contract.ref.bitserial_mac import plane_masks
from cdsl.hw.generate import generate
from cdsl.hw.plan import plan_network
from cdsl.sim.cosim import verify
from cdsl.sim.design import Design
from cdsl.sw.evaluate import load_run

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vit_tiny.cdsl"
SERIAL = ("t", "e1", "y")
LINEARS = ("t", "e1.qkv", "e1.proj", "e1.fc1", "e1.fc2", "y")


def _spec(tmp_path) -> Path:
    text = FIXTURE.read_text()
    for name in SERIAL:
        text, n = re.subn(rf"^(  {name} = .*?@quant\(w=8, a=8\))", r"\1 @bitserial(lanes=2)", text, flags=re.M)
        assert n == 1, name
    path = tmp_path / "vit_tiny_bitserial.cdsl"
    path.write_text(text)
    return path


def _serial_cycles(node, lanes: int) -> int:
    masks = plane_masks(np.asarray(node.weight), node.w_bits)
    return sum(-(-node.k // lanes) * max(1, bin(int(m)).count("1")) for m in masks)


@pytest.mark.slow
def test_tiny_vit_with_bitserial_linears_bit_and_cycle_exact(tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(_spec(tmp_path)), "-o", str(run), "--epochs", "2"]) == 0
    intmodel = IntModel.load(run / "intmodel")
    assert [intmodel.layer(n).payload.bitserial for n in ("t", "e1", "e2", "y")] == [2, 2, None, 2]
    _, _, data = load_run(run)
    x = quantize_input(intmodel, data.x_test[:16])

    gen = generate(intmodel, tmp_path / "rtl")
    engines = gen.manifest["cycles"]["engines"]
    parallel = plan_network(dataclasses.replace(intmodel, layers=tuple(
        dataclasses.replace(lay, payload=dataclasses.replace(lay.payload, bitserial=None)) if lay.name in SERIAL
        else lay for lay in intmodel.layers)), lanes={n: 2 for n in SERIAL})
    differ = 0
    for name in LINEARS:
        node = gen.plan.node(name)
        assert node.unit.describe() != parallel.node(name).unit.describe()
        assert (node.lanes, node.lanes_fixed, engines[name]["lanes"]) == (2, True, 2)
        want = _serial_cycles(node, 2)
        assert engines[name]["cycles_per_token"] == node.token_cycles() == want, name
        assert parallel.node(name).token_cycles() == node.o * -(-node.k // 2)
        differ += want != parallel.node(name).token_cycles()
    assert differ, "every bit-serial linear as fast as its bit-parallel twin: planes not counted"
    for name in ("e2.qkv", "e2.fc1"):  # e2 has no annotation: bit-parallel, lanes from the default
        assert gen.plan.node(name).unit.describe() == parallel.node(name).unit.describe()

    report = verify(intmodel, Design.load(tmp_path / "rtl"), x, localize=False)
    assert report.exact == report.samples, report.first_mismatch
    assert report.cycles_exact == report.samples, \
        f"simulated {report.run.cycles.tolist()} vs {report.run.predicted_per_sample.tolist()}"
