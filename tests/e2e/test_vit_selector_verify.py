"""`cdsl verify` on the ViT example: the token selector's RTL on the golden trace's tokens (e1's output)
for every test sample, the encoders in the golden model (they have no RTL yet)."""

import json
from pathlib import Path

import pytest

from cdsl.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vit.cdsl"


@pytest.mark.slow
def test_cdsl_verify_checks_the_selector_on_every_test_sample(tmp_path, capsys):
    run = tmp_path / "vit"
    assert main(["train", str(EXAMPLE), "-o", str(run)]) == 0
    capsys.readouterr()
    assert main(["verify", str(run)]) == 0
    out = capsys.readouterr().out
    assert "no whole-network RTL" in out and "e2.payload.selector: 450/450 samples bit-exact" in out, out
    v = json.loads((run / "verify_blocks.json").read_text())
    assert v["samples"] == 450 and [b["name"] for b in v["blocks"]] == ["e2.payload.selector"]
    assert v["blocks"][0]["ok"] and v["blocks"][0]["mismatches"] == []
    assert "cycles simulated = predicted on 450/450" in v["blocks"][0]["summary"]
    assert not (run / "rtl").exists()  # nothing generated for the layers without hardware
