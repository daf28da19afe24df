"""Determinism, the run folder, and the `cdsl train` / `cdsl eval` commands."""

import json
from pathlib import Path

import numpy as np
import torch

from cdsl.cli import main
from cdsl.dsl import parse_file
from cdsl.contract.intmodel import IntModel
from cdsl.sw.train import train


def _state_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_model_other_seed_differs():
    torch.set_num_threads(1)
    spec = parse_file("examples/mlp.cdsl")
    r1 = train(spec, epochs=3, float_twin=False)
    r2 = train(spec, epochs=3, float_twin=False)
    r3 = train(spec, epochs=3, seed=1, float_twin=False)
    assert _state_equal(r1.net.state_dict(), r2.net.state_dict())
    assert r1.intmodel == r2.intmodel
    assert not _state_equal(r1.net.state_dict(), r3.net.state_dict())
    assert r1.intmodel != r3.intmodel
    assert [h["loss"] for h in r1.metrics["compressed"]["history"]] == [h["loss"] for h in r2.metrics["compressed"]["history"]]


def test_cli_train_then_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "examples/mlp.cdsl", "-o", str(run), "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    assert "epoch   4/4" in out and "test accuracy:" in out
    for name in ("spec.cdsl", "checkpoint.pt", "metrics.json", "intmodel/manifest.json", "intmodel/tensors.npz"):
        assert (run / name).is_file(), name
    assert (run / "spec.cdsl").read_text() == open("examples/mlp.cdsl").read()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 4 and [s["epochs"] for s in metrics["stages"]] == [1, 3]  # every stage keeps one
    assert len(metrics["compressed"]["history"]) == 4 and len(metrics["float"]["history"]) == 4
    im = IntModel.load(run / "intmodel")
    assert [lay.name for lay in im.layers] == ["h1", "r1", "h2", "r2", "y"]

    assert main(["eval", str(run)]) == 0
    table = capsys.readouterr().out
    for label in ("float accuracy", "compressed accuracy", "integer golden accuracy", "golden = fake-quant"):
        assert label in table
    # the table recomputes what training measured
    g = metrics["golden"]
    assert f"{100 * g['golden_acc']:.2f}%" in table
    assert f"{100 * metrics['float']['test_acc']:.2f}%" in table
    assert f"{100 * g['compressed_acc']:.2f}%" in table


def test_cli_default_run_dir_and_npz(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    x = rng.random((60, 16)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    np.savez(tmp_path / "toy.npz", x=x, y=y)
    (tmp_path / "toy.cdsl").write_text(
        'model toy {\n  input x: ufixed<8,4>[16]\n  h = dense(x, units=8) @quant(w=8, a=8)\n  r = relu(h)\n'
        '  y = dense(r, units=2) @quant(w=8, a=8)\n  output y\n}\ntrain { data = "toy.npz"  epochs = 3  batch = 16 }\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["train", "toy.cdsl", "--no-float"]) == 0
    assert (tmp_path / "runs" / "toy" / "intmodel" / "manifest.json").is_file()
    metrics = json.loads((tmp_path / "runs" / "toy" / "metrics.json").read_text())
    assert metrics["data"] == {"name": str(tmp_path / "toy.npz"), "train": 45, "test": 15}
    capsys.readouterr()
    assert main(["eval", "runs/toy"]) == 0
    assert "n/a" in capsys.readouterr().out  # no float twin
    # an evaluation's option on a run without its annotation was silently ignored (exit 0, no section)
    for option, value, annotation in (("--keeps", "0.5", "@tokens"), ("--precisions", "8,4", "@trunc")):
        assert main(["eval", "runs/toy", option, value]) == 2
        err = capsys.readouterr().err
        assert err.strip() == f"cdsl eval: error: {option} does not apply: no layer of the model has {annotation}", err


def test_eval_gives_each_heads_golden_accuracy(tmp_path, monkeypatch, capsys):
    """Two outputs (early exit): `cdsl eval` lists each head's integer golden accuracy, the same numbers
    the golden model gives per output (it showed the first output's only)."""
    from cdsl.contract.golden import argmax_lowest, golden, quantize_input
    from cdsl.sw.evaluate import load_run

    spec = tmp_path / "heads.cdsl"
    spec.write_text(Path("examples/two_heads.cdsl").read_text())
    run = tmp_path / "run"
    assert main(["train", str(spec), "-o", str(run), "--epochs", "2", "--no-float"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    im = IntModel.load(run / "intmodel")
    _, _, data = load_run(run)
    outs = golden(im, quantize_input(im, data.x_test))
    for name in ("y1", "y2"):
        acc = float((argmax_lowest(outs[name]) == data.y_test).double().mean())
        assert f"integer golden accuracy, output {name} │ {100 * acc:6.2f}%" in out, (name, out)


def test_a_data_error_without_a_train_section_points_at_the_model(tmp_path, capsys):
    """No train section, so no `data = ...` line: the digits' 10 classes against a 3-unit output was
    reported at 'spec:0:0' with an empty source line; it points at the model now."""
    spec = tmp_path / "three.cdsl"
    spec.write_text("model three {\n  input x: ufixed<8,4>[64]\n  y = dense(x, units=3) @quant(w=4, a=8)\n"
                    "  output y\n}\n")
    assert main(["train", str(spec), "-o", str(tmp_path / "run"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{spec}:1:1: error: digits: the digits data have 10 classes, but the model output has 3", err
    assert err[1:3] == ["    model three {", "    ^"], err
    assert main(["check", str(spec)]) == 1  # the bundled digits are part of the spec: check says so too
    assert f"[train] {spec}:1:1: error: digits: the digits data have 10 classes" in capsys.readouterr().err


def test_cli_errors(tmp_path, capsys):
    vit = tmp_path / "vit.cdsl"  # an @tokens encoder read by a layer that reads every token: refused before training
    vit.write_text(Path("examples/vit.cdsl").read_text().replace(
        "y = cls_head(e2, classes=10)", "f = flatten(e2)\n  y = dense(f, units=10)"))
    assert main(["train", str(vit), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{vit}:11:53: error: the tokens of layer 'e2' vary in number per sample after @tokens on 'e1'; " \
           "layer 'f' cannot read them" in err
    assert "^" in err
    assert not (tmp_path / "r").exists()
    bad = tmp_path / "bad.cdsl"
    bad.write_text('model m {\n  input x: ufixed<8,4>[64]\n  y = dense(x, units=10) @quant(w=8, a=8)\n  output y\n}\ntrain { data = "missing.npz" }\n')
    assert main(["train", str(bad), "-o", str(tmp_path / "r")]) == 2
    assert "missing.npz' does not exist" in capsys.readouterr().err
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_nothing_fails_after_training_for_a_reason_the_spec_shows(tmp_path, capsys, monkeypatch):
    """A layer without weight quantization has no integer form: `cdsl train` says so before training,
    located, and writes nothing; a layer of a kind without a hardware engine (sign, its planner taken out
    of the registry for this test: every real kind has one) trains, but `cdsl run` refuses it before
    training."""
    import time

    from cdsl.cli import main
    from cdsl.contract.ref.activation import SignPayload
    from cdsl.hw import registry

    registry.load_all()
    monkeypatch.delitem(registry._PLANNERS, SignPayload)

    spec = tmp_path / "m.cdsl"
    spec.write_text("model m {\n  input x: ufixed<8,4>[64]\n  h = dense(x, units=16) @quant(w=8, a=8)\n"
                    "  r = relu(h)\n  y = dense(r, units=10)\n  output y\n}\n")
    t0 = time.perf_counter()
    assert main(["train", str(spec), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:5:3: error: layer 'y' has no weight quantization" in err and "^" in err
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "run").exists()  # no training happened

    spec.write_text("model m {\n  input x: ufixed<8,4>[64]\n  h = dense(x, units=16) @quant(w=8, a=8)\n"
                    "  s = sign(h)\n  y = dense(s, units=10) @quant(w=8, a=8)\n  output y\n}\ntrain { epochs = 1 }\n")
    t0 = time.perf_counter()
    assert main(["run", str(spec), "-o", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:4:3: error: layer 's': sign has no hardware engine yet" in err
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "run2").exists()
    assert main(["train", str(spec), "-o", str(tmp_path / "run3"), "--no-float"]) == 0  # training alone is fine
