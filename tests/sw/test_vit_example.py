"""examples/vit.cdsl without its @tokens selector, trained as the spec says (40 epochs, about a minute
on 2 cores for the float twin and the integer-trained network): float accuracy >= 90% on the digits
test split, and the integer golden model agrees with the fake-quant network on >= 99.5% of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cdsl.dsl import parse
from cdsl.sw.train import train

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vit.cdsl"


def plain_vit_text() -> str:
    text = EXAMPLE.read_text()
    assert "@tokens(" in text
    lines = [line.split(" @tokens(")[0] if "@tokens(" in line else line for line in text.splitlines()]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_plain_vit_accuracy_and_golden_agreement():
    torch.set_num_threads(1)
    r = train(parse(plain_vit_text()))
    m = r.metrics
    print("float", m["float"]["test_acc"], "golden", m["golden"])
    assert r.intmodel is not None, m.get("export_error")
    assert m["float"]["test_acc"] >= 0.90
    assert m["golden"]["agreement"] >= 0.995
    assert m["golden"]["golden_acc"] >= 0.88
