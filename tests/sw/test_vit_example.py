"""examples/vit.cdsl trained as the spec says (50 epochs: 25 quantized, then 25 with the selector in front of e1),
with and without its `@tokens` selector (about a minute of CPU each on 2 cores):
- without: float accuracy >= 90% on the digits test split, and the integer golden model agrees with
  the fake-quant network on >= 99.5% of it;
- with (keep 0.7): integer golden accuracy within 2 points of the model without, the measured keep
  ratio below 1, and both blocks' MACs (e2 runs on what e1's selector left), counted per sample from
  the actual token counts, no more than the unpruned blocks' times the share of tokens they ran on
  (class and package included)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cdsl.contract.golden import quantize_input
from cdsl.dsl import parse
from cdsl.sw.evaluations.tokens import measure
from cdsl.sw.train import train

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vit.cdsl"


def plain_vit_text() -> str:
    text = EXAMPLE.read_text()
    assert "@tokens(" in text
    lines = [line.split(" @tokens(")[0] if "@tokens(" in line else line for line in text.splitlines()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def plain():
    torch.set_num_threads(1)
    return train(parse(plain_vit_text()))


@pytest.mark.slow
def test_plain_vit_accuracy_and_golden_agreement(plain):
    m = plain.metrics
    print("float", m["float"]["test_acc"], "golden", m["golden"])
    assert plain.intmodel is not None, m.get("export_error")
    assert m["float"]["test_acc"] >= 0.90
    assert m["golden"]["agreement"] >= 0.995
    assert m["golden"]["golden_acc"] >= 0.88


@pytest.mark.slow
def test_vit_with_selector_keeps_accuracy_and_cuts_macs(plain):
    torch.set_num_threads(1)
    r = train(parse(EXAMPLE.read_text()), float_twin=False)
    assert r.metrics["golden"]["agreement"] >= 0.995
    data = r.data
    x = quantize_input(r.intmodel, data.x_test)
    pruned = measure(r.intmodel, parse(EXAMPLE.read_text()).model, x, data.y_test)
    full = measure(plain.intmodel, parse(plain_vit_text()).model, x, data.y_test)
    print("pruned", pruned, "full", full)
    assert pruned["acc"] >= full["acc"] - 0.02
    keep = pruned["keep"]["e1"]
    assert 0.3 < keep < 1.0
    n = 17
    tokens = 1 + keep * (n - 1) + 1  # class, kept candidates, package (an upper bound on the mean)
    for block in ("e1", "e2"):
        assert pruned["macs"][block] <= full["macs"][block] * tokens / n
