"""`cdsl gen`: Verilog + manifest from a run folder, deterministic bytes, clean Verilator lint."""

import json

import pytest

from cdsl.cli import main
from cdsl.hw.generate import lint
from tb.random_models import random_convnet, random_mlp


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    random_mlp([16, 8, 4], seed=5, w_bits=[8, 4], bitserial_lanes=[4, None]).save(run / "intmodel")
    return run


def test_gen_writes_deterministic_verilog_and_manifest(mlp_run, tmp_path, capsys):
    assert main(["gen", str(mlp_run), "-o", str(tmp_path / "a"), "--lanes", "2"]) == 0
    assert main(["gen", str(mlp_run / "intmodel"), "-o", str(tmp_path / "b"), "--lanes", "2"]) == 0
    va, vb = (tmp_path / "a" / "network.v").read_bytes(), (tmp_path / "b" / "network.v").read_bytes()
    assert va == vb and b"module network" in va
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["manifest.json", "network.v"]
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    ports = {p["name"]: p for p in man["ports"]}
    assert ports["i"]["payload"] == "i__payload" and ports["i"]["width"] == 8 and not ports["i"]["signed"]
    assert ports["o"]["width"] == 8 and ports["o"]["signed"]
    assert ports["precision_fc1"]["width"] == 4  # 0..8
    engines = {e["name"]: e for e in man["engines"]}
    assert engines["fc1"]["bitserial"] and engines["fc1"]["lanes"] == 4  # from the spec annotation
    assert engines["fc2"]["lanes"] == 2 and not engines["fc2"]["bitserial"]  # from --lanes
    assert set(man["cycles"]["by_precision"]) == {str(p) for p in range(1, 9)}
    assert man["cycles"]["cycles_per_inference"] == man["cycles"]["by_precision"]["8"]
    out = capsys.readouterr().out
    assert "predicted cycles per inference" in out


def test_gen_output_passes_verilator_lint(tmp_path):
    run = tmp_path / "run"
    random_convnet(seed=4).save(run / "intmodel")
    assert main(["gen", str(run), "-o", str(tmp_path / "out"), "--lanes", "2"]) == 0
    res = lint(tmp_path / "out" / "network.v")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "%Warning" not in res.stderr and "%Error" not in res.stderr


def test_gen_bad_source(tmp_path, capsys):
    assert main(["gen", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["gen", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    assert "no integer model" in capsys.readouterr().err


def test_gen_is_deterministic_across_processes(mlp_run, tmp_path):
    import os
    import subprocess
    import sys

    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"p{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-m", "cdsl", "gen", str(mlp_run), "-o", str(out)], env=env, check=True,
                       capture_output=True)
        outs.append(((out / "network.v").read_bytes(), (out / "manifest.json").read_bytes()))
    assert outs[0] == outs[1]


def test_gen_target_cycles_folds_lanes(tmp_path):
    run = tmp_path / "run"
    random_mlp([64, 64, 32, 10], seed=6).save(run / "intmodel")
    assert main(["gen", str(run), "-o", str(tmp_path / "slow"), "--target-cycles", "100000"]) == 0
    assert main(["gen", str(run), "-o", str(tmp_path / "fast"), "--target-cycles", "700"]) == 0
    slow = json.loads((tmp_path / "slow" / "manifest.json").read_text())
    fast = json.loads((tmp_path / "fast" / "manifest.json").read_text())
    assert [e["lanes"] for e in slow["engines"]] == [1, 1, 1]
    assert fast["cycles"]["cycles_per_inference"] <= 700 < slow["cycles"]["cycles_per_inference"]
