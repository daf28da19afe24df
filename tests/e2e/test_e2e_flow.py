"""End to end: the README's main job and the co-verification commands, on the bundled example.

`cdsl run examples/mlp.cdsl` trains, exports, generates RTL and verifies it in Verilator; then
`cdsl verify` at a truncated runtime precision and `cdsl sim --wave` work on the same run folder.
A fault-injection test proves `verify` catches a difference and names the first layer that has it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cdsl.cli import main
from tb.random_models import random_mlp
from cdsl.sim import cosim
from cdsl.sw import golden as golden_mod

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("mlp") / "run"
    assert main(["run", str(EXAMPLES / "mlp.cdsl"), "-o", str(run), "--n", "150"]) == 0
    return run


@pytest.mark.slow
def test_run_mlp_is_bit_exact_with_exact_cycles(mlp_run, capsys):
    for part in ("spec.cdsl", "checkpoint.pt", "metrics.json", "intmodel/manifest.json", "rtl/network.v",
                 "rtl/manifest.json", "verify.json"):
        assert (mlp_run / part).is_file(), part
    v = json.loads((mlp_run / "verify.json").read_text())
    print(v)
    assert v["samples"] == 150 and v["bit_exact"] == 150
    manifest = json.loads((mlp_run / "rtl" / "manifest.json").read_text())
    assert v["cycles_simulated_mean"] == v["cycles_predicted"] == manifest["cycles"]["cycles_per_inference"]
    assert v["rtl_accuracy"] == v["golden_accuracy"] and v["rtl_accuracy"] > 0.9


@pytest.mark.slow
def test_verify_at_truncated_precision(mlp_run, capsys):
    assert main(["verify", str(mlp_run), "--n", "100", "--precision", "h1=5"]) == 0
    out = capsys.readouterr().out
    assert "100/100 bit-exact" in out
    v = json.loads((mlp_run / "verify.json").read_text())
    manifest = json.loads((mlp_run / "rtl" / "manifest.json").read_text())
    # h1 (64 inputs, 8 lanes, 64 rows): 5 of 8 planes -> fewer cycles, as the model says
    assert v["cycles_simulated_mean"] == v["cycles_predicted"] == manifest["cycles"]["by_precision"]["5"]


@pytest.mark.slow
def test_sim_prints_outputs_and_writes_waveform(mlp_run, tmp_path, capsys):
    wave = tmp_path / "mlp.vcd"  # .fst needs liblz4-dev on the machine
    assert main(["sim", str(mlp_run), "--n", "2", "--wave", str(wave)]) == 0
    out = capsys.readouterr().out
    assert "cycles per inference: 4471" in out and "cycles/s" in out
    assert wave.is_file() and wave.stat().st_size > 1000


@pytest.mark.slow
def test_run_cnn_mac_is_bit_exact(tmp_path):
    """A trained conv net (window generator with padding, max and average pooling, a bit-serial conv)."""
    run = tmp_path / "run"
    assert main(["run", str(EXAMPLES / "cnn_mac.cdsl"), "-o", str(run), "--n", "100"]) == 0
    v = json.loads((run / "verify.json").read_text())
    print(v)
    assert v["samples"] == 100 and v["bit_exact"] == 100
    assert v["cycles_simulated_mean"] == v["cycles_predicted"]
    assert v["golden_accuracy"] > 0.9


@pytest.mark.parametrize("example,annotation", [("cnn", "@cim"), ("bnn", "@binary"), ("vit", "@tokens")])
def test_examples_not_yet_supported_stop_at_their_annotation(example, annotation, tmp_path, capsys):
    """Until their issues land, these examples stop with a located error, before any training."""
    assert main(["run", str(EXAMPLES / f"{example}.cdsl"), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"examples/{example}.cdsl:" in err and f"{annotation} is not yet supported" in err and "^" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_bad_arguments_are_user_errors(capsys):
    assert main(["verify", str(EXAMPLES / "mlp.cdsl"), "--precision", "h1"]) == 2
    assert "expected LAYER=BITS" in capsys.readouterr().err
    assert main(["sim", str(EXAMPLES), "--wave", "x.txt"]) == 2
    assert main(["verify", str(EXAMPLES)]) == 2  # a folder without intmodel/
    assert "holds no integer model" in capsys.readouterr().err


@pytest.mark.slow
def test_verify_catches_and_localizes_a_fault(monkeypatch, tmp_path):
    """RTL built from the true model; golden computed from one whose second layer has a bias off by one."""
    model = random_mlp([12, 6, 4], seed=3)
    weighted = [l for l in model.layers if l.weight is not None]
    target = weighted[1].name
    faulty = dataclasses.replace(model, layers=tuple(
        dataclasses.replace(l, bias=l.bias + 1000) if l.name == target else l for l in model.layers))
    real_golden = golden_mod.golden
    monkeypatch.setattr(cosim, "golden", lambda m, x, **kw: real_golden(faulty, x, **kw))
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 256, size=(8, 12)), dtype=torch.int64)
    report = cosim.verify(model, x, work_dir=tmp_path)
    assert not report.passed and report.exact < 8
    assert report.first_mismatch is not None and report.first_mismatch.port == model.outputs[0]
    assert report.first_bad_layer == target, (report.first_bad_layer, target)
