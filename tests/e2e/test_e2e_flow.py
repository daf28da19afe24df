"""End to end: the README's main job and the co-verification commands, on the bundled example.

`cdsl run examples/mlp.cdsl` trains, exports, generates RTL and verifies it in Verilator; then
`cdsl verify` at a truncated runtime precision and `cdsl sim --wave` work on the same run folder.
Fault injection on both sides (a wrong golden model; a flipped weight-ROM bit in network.sv) proves
`verify` catches a difference and names the first layer that has it; a hand-edited network.sv is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cdsl.cli import main
from tb.random_models import random_mlp
from cdsl.sim import cosim
from cdsl.contract import golden as golden_mod
from cdsl.contract.intmodel import replace_payload
from cdsl.hw.generate import generate, manifest_digest
from cdsl.sim.design import Design, DesignError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def mlp_run(example_run):
    return example_run("mlp")


@pytest.mark.slow
def test_run_mlp_is_bit_exact_with_exact_cycles(mlp_run, capsys):
    for part in ("spec.cdsl", "checkpoint.pt", "metrics.json", "intmodel/manifest.json", "rtl/network.sv",
                 "rtl/manifest.json", "verify.json"):
        assert (mlp_run / part).is_file(), part
    v = json.loads((mlp_run / "verify.json").read_text())
    print(v)
    assert v["samples"] == 150 and v["bit_exact"] == 150 and v["cycles_exact"] == 150
    manifest = json.loads((mlp_run / "rtl" / "manifest.json").read_text())
    assert v["cycles_simulated_mean"] == v["cycles_predicted"] == manifest["cycles"]["cycles_per_inference"]
    assert v["rtl_accuracy"] == v["golden_accuracy"] and v["rtl_accuracy"] > 0.9
    # what was verified is the file that was generated
    assert v["verilog_sha256"] == hashlib.sha256((mlp_run / "rtl" / "network.sv").read_bytes()).hexdigest()
    assert v["verilog_sha256"] == manifest["verilog"]["sha256"]


@pytest.mark.slow
def test_verify_at_truncated_precision(mlp_run, capsys):
    assert main(["verify", str(mlp_run), "--n", "100", "--precision", "h1=5"]) == 0
    out = capsys.readouterr().out
    assert "100/100 bit-exact" in out
    v = json.loads((mlp_run / "verify.json").read_text())
    manifest = json.loads((mlp_run / "rtl" / "manifest.json").read_text())
    assert f"verified {mlp_run / 'rtl' / 'network.sv'} (sha256 {manifest['verilog']['sha256']})" in out
    # h1 (64 inputs, 8 lanes, 64 rows): 5 of 8 planes -> fewer cycles, as the model says
    by_precision = manifest["cycles"]["by_register"]["h1.precision"]
    assert v["cycles_simulated_mean"] == v["cycles_predicted"] == by_precision["5"] < by_precision["0"]


@pytest.mark.slow
def test_sim_prints_outputs_and_writes_waveform(mlp_run, tmp_path, capsys):
    wave = tmp_path / "mlp.vcd"  # .fst needs liblz4-dev on the machine
    assert main(["sim", str(mlp_run), "--n", "2", "--wave", str(wave)]) == 0
    out = capsys.readouterr().out
    predicted = json.loads((mlp_run / "rtl" / "manifest.json").read_text())["cycles"]["cycles_per_inference"]
    assert f"cycles per inference: {predicted} (cycle model: {predicted})" in out and "cycles/s" in out
    assert wave.is_file() and wave.stat().st_size > 1000


@pytest.mark.slow
def test_run_cnn_mac_is_bit_exact(example_run):
    """A trained conv net (window generator with padding, max and average pooling, a bit-serial conv)."""
    run = example_run("cnn_mac")
    v = json.loads((run / "verify.json").read_text())
    print(v)
    assert v["samples"] == 100 and v["bit_exact"] == 100
    assert v["cycles_simulated_mean"] == v["cycles_predicted"]
    assert v["golden_accuracy"] > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("example", ["residual", "two_heads"])
def test_run_graph_examples_bit_exact(example, example_run, capsys, monkeypatch):
    """A residual join (add) and two outputs (a fork, two output streams): trained, generated, verified,
    with each output's accuracy in verify.json; `cdsl sim` prints every output stream's words (it printed
    only the first output's)."""
    from cdsl.contract.golden import golden, quantize_input
    from cdsl.flow import load_run_intmodel
    from cdsl.sw.evaluate import load_run

    run = example_run(example)
    v = json.loads((run / "verify.json").read_text())
    print(v)
    assert v["samples"] == v["bit_exact"] == v["cycles_exact"] == 150
    manifest = json.loads((run / "rtl" / "manifest.json").read_text())
    outputs = ["y"] if example == "residual" else ["y1", "y2"]
    assert [o["name"] for o in manifest["outputs"]] == outputs
    assert v["golden_accuracy"] > 0.85
    per_output = v["accuracy_per_output"]  # each head's accuracy (bit-exact: RTL = golden)
    assert list(per_output) == outputs and per_output[outputs[0]]["rtl"] == v["rtl_accuracy"]
    assert all(a["rtl"] == a["golden"] for a in per_output.values())
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "400")  # one table row per sample
    assert main(["sim", str(run), "--n", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    intmodel = load_run_intmodel(run)
    _, _, data = load_run(run)
    want = golden(intmodel, quantize_input(intmodel, data.x_test[:1]))
    want = want if isinstance(want, dict) else {outputs[0]: want}
    for name in outputs:
        assert f"RTL outputs ({name})" in out
        assert " ".join(str(int(w)) for w in want[name][0]) in out, name


RUNNABLE = sorted(p.stem for p in EXAMPLES.glob("*.cdsl"))
# Icarus did not finish three ViT samples (about 90,000 cycles each) in 15 minutes here: the ViT is
# cross-checked in Verilator only
ICARUS = [name for name in RUNNABLE if not name.startswith("vit")]


@pytest.mark.slow
@pytest.mark.parametrize("example", ICARUS)
def test_icarus_agrees_with_verilator_and_golden(example, example_run):
    """A second, event-driven simulator (Icarus Verilog, -g2012) runs the generated network.sv on a few
    test samples of every example: every output word and cycle count equals Verilator's and golden's."""
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        pytest.skip("Icarus Verilog is not installed, so the second-simulator check did NOT run "
                    "(apt-get install iverilog; .ci/run installs it)")
    from cdsl.contract.golden import feeds, golden, quantize_input
    from cdsl.flow import load_design, load_run_intmodel
    from cdsl.sw.evaluate import load_run

    run = example_run(example)
    intmodel = load_run_intmodel(run)
    design = load_design(run, intmodel)
    _, _, data = load_run(run)
    x = feeds(intmodel, quantize_input(intmodel, data.x_test[:3]))
    want = golden(intmodel, x)
    want = want if isinstance(want, dict) else {intmodel.outputs[0]: want}
    tokens = cosim.token_counts(intmodel, design, x)  # the ViT's kept tokens per sample
    by = {sim: cosim.simulate(design, x, simulator=sim, tokens=tokens) for sim in ("verilator", "icarus")}
    for sim, r in by.items():
        assert (r.cycles == r.predicted_per_sample).all(), (sim, r.cycles, r.predicted_per_sample)
        for name in intmodel.outputs:
            for s in range(len(r.cycles)):
                got = r.outputs[name][s][:int(r.counts[name][s])]
                assert np.array_equal(got, want[name][s].reshape(-1).numpy()), (sim, name, s, got)



@pytest.mark.slow
def test_run_cnn_on_cim_tiles_is_bit_exact_on_the_whole_test_split(example_run):
    """examples/cnn.cdsl: a conv on CIM tiles (ADC-quantized partial sums) trained with the tiles in the
    loop, generated and verified on every test sample, cycles as predicted; the fake-quant forward
    agrees with the integer model."""
    run = example_run("cnn")  # on the whole test split (tests/e2e/conftest.py)
    v = json.loads((run / "verify.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    print(v, metrics["golden"])
    assert v["samples"] == metrics["data"]["test"] == v["bit_exact"] == v["cycles_exact"]
    assert v["cycles_simulated_mean"] == v["cycles_predicted"]
    assert metrics["golden"]["agreement"] >= 0.995 and v["golden_accuracy"] > 0.9
    manifest = json.loads((run / "rtl" / "manifest.json").read_text())
    figures = manifest["cycles"]["engines"]["c2"]
    assert figures["tiles"] == 2 and figures["adc_conversions"] == 16 * 8 * 2 * 32


@pytest.mark.slow
def test_run_vit_is_bit_exact_with_cycles_per_sample_on_the_whole_test_split(example_run):
    """examples/vit.cdsl end to end: patch embedding, two encoders (the first behind a token selector,
    so both run on the kept tokens) and the class-token head as engines, every test sample bit-exact,
    each sample's simulated cycles equal to the cycle model's given its kept-token count (which varies:
    fewer tokens, fewer cycles), and at the trained keep ratio (0.7) at least 25% fewer cycles per
    inference on average than with every token kept (the full-token figure)."""
    run = example_run("vit")  # on the whole test split (tests/e2e/conftest.py)
    v = json.loads((run / "verify.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    print(v)
    assert v["samples"] == metrics["data"]["test"] == v["bit_exact"] == v["cycles_exact"]
    assert v["cycles_simulated_mean"] == v["cycles_predicted_mean"] <= 0.75 * v["cycles_predicted"]
    assert v["golden_accuracy"] == v["rtl_accuracy"] > 0.85
    manifest = json.loads((run / "rtl" / "manifest.json").read_text())
    assert manifest["cycles"]["token_nodes"] == ["e1.select"]
    assert [r["engine"] + "." + r["setting"] for r in manifest["registers"]] == ["e1.select.threshold"]
    engines = [e["name"] for e in manifest["engines"]]
    assert engines[:2] == ["t.patches", "t"] and engines[-3:] == ["y.cls", "y.norm", "y"] and "e2.attn" in engines


@pytest.mark.slow
def test_run_vit_progressive_is_bit_exact_with_both_selectors(example_run):
    """examples/vit_progressive.cdsl end to end on 100 test samples: the selector of e3 chooses among
    the frames e2's selector shortened, in RTL as in the golden model; every sample bit-exact, its
    simulated cycles equal to the model's given both selectors' kept counts, fewer than at full counts."""
    run = example_run("vit_progressive")  # --n 100 (tests/e2e/conftest.py)
    v = json.loads((run / "verify.json").read_text())
    print(v)
    assert v["samples"] == 100 == v["bit_exact"] == v["cycles_exact"]
    assert v["cycles_simulated_mean"] == v["cycles_predicted_mean"] <= 0.85 * v["cycles_predicted"]
    assert v["golden_accuracy"] == v["rtl_accuracy"] > 0.85
    manifest = json.loads((run / "rtl" / "manifest.json").read_text())
    assert manifest["cycles"]["token_nodes"] == ["e2.select", "e3.select"]


def test_bad_arguments_are_user_errors(capsys):
    assert main(["verify", str(EXAMPLES / "mlp.cdsl"), "--precision", "h1"]) == 2
    assert "expected LAYER=BITS" in capsys.readouterr().err
    # one register given twice (--precision h1=4 is --set h1.precision=4) is refused, not resolved silently
    assert main(["verify", str(EXAMPLES / "mlp.cdsl"), "--precision", "h1=4", "--set", "h1.precision=2"]) == 2
    assert "--set 'h1.precision=2': h1.precision is already set by --precision h1=4" in capsys.readouterr().err
    assert main(["sim", str(EXAMPLES / "mlp.cdsl"), "--set", "h1.precision=4", "--set", "h1.precision=4"]) == 2
    assert "h1.precision is already set by --set h1.precision=4" in capsys.readouterr().err
    assert main(["sim", str(EXAMPLES), "--wave", "x.txt"]) == 2
    assert main(["verify", str(EXAMPLES)]) == 2  # a folder without intmodel/
    assert "holds no integer model" in capsys.readouterr().err


def _generated(tmp_path, seed=3):
    model = random_mlp([12, 6, 4], seed=seed)
    generate(model, tmp_path / "rtl", default_lanes=2)
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 256, size=(8, 12)), dtype=torch.int64)
    return model, x


@pytest.mark.slow
def test_verify_catches_and_localizes_a_golden_side_fault(monkeypatch, tmp_path):
    """RTL generated from the true model; golden computed from one whose second layer has a bias off by 1000."""
    model, x = _generated(tmp_path)
    target = "fc2"
    faulty = dataclasses.replace(model, layers=tuple(
        replace_payload(l, bias=l.payload.bias + 1000) if l.name == target else l for l in model.layers))
    real_golden = golden_mod.golden
    monkeypatch.setattr(cosim, "golden", lambda m, x, **kw: real_golden(faulty, x, **kw))
    report = cosim.verify(model, Design.load(tmp_path / "rtl"), x, work_dir=tmp_path / "sim")
    assert not report.passed and report.exact < 8
    assert report.first_mismatch is not None and report.first_mismatch.port == model.outputs[0]
    assert report.first_bad_layer == target, (report.first_bad_layer, target)


def flip_weight_bit(verilog: str, layer: str, *, word: int = 0, bit: int) -> str:
    """The Verilog with one bit flipped in word `word` of `layer`'s weight ROM initialisation."""
    start = verilog.index(f"module \\network.{layer} ")
    match = re.compile(rf"weights\[{word}\] = (\d+)'([dh])([0-9a-fA-F]+);").search(verilog, start)
    width, value = int(match.group(1)), int(match.group(3), 10 if match.group(2) == "d" else 16)
    flipped = f"weights[{word}] = {width}'d{value ^ (1 << bit)};"
    return verilog[:match.start()] + flipped + verilog[match.end():]


@pytest.mark.slow
def test_verify_catches_and_localizes_a_flipped_weight_rom_bit(tmp_path):
    """A generator bug: the Verilog's weight ROM of fc2 has one bit flipped (the manifest agrees with
    the broken file). Verification fails and names fc2 as the first layer that differs."""
    model, x = _generated(tmp_path)
    rtl = tmp_path / "rtl"
    # flip bit 6 of fc2's weight [0, c] where fc2's input c is nonzero in the first sample; the ROM word
    # of that weight is c // lanes (output 0, 1x1 kernel), its lane c % lanes (8-bit weights)
    _, trace = golden_mod.golden(model, x[:1], trace=True)
    c = int(np.flatnonzero(trace["relu1"][0].numpy())[0])
    lanes = Design.load(rtl).plan.node("fc2").lanes
    broken = flip_weight_bit((rtl / "network.sv").read_text(), "fc2", word=c // lanes, bit=(c % lanes) * 8 + 6)
    (rtl / "network.sv").write_text(broken)
    manifest = json.loads((rtl / "manifest.json").read_text())
    manifest["verilog"]["sha256"] = hashlib.sha256(broken.encode()).hexdigest()
    manifest["digest"] = manifest_digest(manifest)  # the manifest sealed as a generator would have
    (rtl / "manifest.json").write_text(json.dumps(manifest))
    report = cosim.verify(model, Design.load(rtl), x, work_dir=tmp_path / "sim")
    assert not report.passed
    assert report.first_bad_layer == "fc2", report.first_bad_layer


def test_a_hand_edited_network_sv_is_refused(tmp_path, capsys):
    """network.sv changed after `cdsl gen` (its SHA-256 no longer matches the manifest): verify refuses it."""
    run = tmp_path / "run"
    random_mlp([12, 6, 4], seed=3).save(run / "intmodel")
    assert main(["gen", str(run)]) == 0
    rtl = run / "rtl"
    (rtl / "network.sv").write_text(flip_weight_bit((rtl / "network.sv").read_text(), "fc1", bit=0))
    with pytest.raises(DesignError, match="does not match the manifest's verilog.sha256"):
        Design.load(rtl)
    assert main(["sim", str(run), "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert "network.sv" in err and "changed after `cdsl gen`" in err and "Traceback" not in err


@pytest.mark.slow
def test_run_bnn_is_bit_exact_and_stochastic_within_two_points(example_run):
    """The digits BNN (@binary @aqfp): every test sample bit-exact with the recorded seeds, simulated = predicted
    cycles; the same design at the noise-free limit (T = 0, a register write) bit-exact too; stochastic accuracy
    at the example's T within 2 points of the noise-free sign."""
    run = example_run("bnn")  # verified on the whole test split (tests/e2e/conftest.py)
    v = json.loads((run / "verify.json").read_text())
    print(v)
    assert v["samples"] == v["bit_exact"] == v["cycles_exact"] == 450
    assert v["cycles_simulated_mean"] == v["cycles_predicted"]
    stochastic = v["golden_accuracy"]
    assert main(["verify", str(run), "--set", "h2.T=0"]) == 0
    v = json.loads((run / "verify.json").read_text())
    assert v["samples"] == v["bit_exact"] == v["cycles_exact"] == 450
    assert stochastic > 0.9 and abs(stochastic - v["golden_accuracy"]) <= 0.02
