"""`cdsl gen`: network.sv + manifest from a run folder, deterministic bytes, the plan read back, clean lint."""

import json

import pytest

from tb.random_models import random_convnet, random_mlp, random_residual, random_two_inputs

from cdsl.cli import main
from cdsl.contract.intmodel import IntModel
from cdsl.hw.plan import network_cycles, plan_network
from cdsl.sim.design import Design
from cdsl.sim.lint import HARMLESS, lint


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    random_mlp([16, 8, 4], seed=5, w_bits=[8, 4], bitserial_lanes=[4, None]).save(run / "intmodel")
    return run


def test_gen_writes_deterministic_verilog_and_manifest(mlp_run, tmp_path, capsys):
    assert main(["gen", str(mlp_run), "-o", str(tmp_path / "a"), "--lanes", "2"]) == 0
    assert main(["gen", str(mlp_run / "intmodel"), "-o", str(tmp_path / "b"), "--lanes", "2"]) == 0
    va, vb = (tmp_path / "a" / "network.sv").read_bytes(), (tmp_path / "b" / "network.sv").read_bytes()
    assert va == vb and b"module network" in va
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["manifest.json", "network.sv"]
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    ports = {p["name"]: p for p in man["ports"]}
    assert ports["i_x__payload"] == {"name": "i_x__payload", "direction": "input", "width": 9}  # 8 data + last
    assert ports["o_fc2__payload"]["width"] == 9 and ports["ctrl__payload"]["direction"] == "input"
    assert ports["p_fc1__fire"]["direction"] == "output"
    assert man["registers"] == [{"addr": 0, "engine": "fc1", "setting": "precision", "width": 4, "lo": 0, "hi": 8,
                                 "default": 0, "doc": man["registers"][0]["doc"]}]
    plan = Design.load(tmp_path / "a").plan
    fc1, fc2 = plan.nodes
    assert fc1.lanes == 4 and fc1.lanes_fixed  # from the spec annotation
    assert fc2.lanes == 2 and not fc2.lanes_fixed  # from --lanes
    assert set(man["cycles"]["by_register"]["fc1.precision"]) == {str(p) for p in range(0, 9)}
    assert man["cycles"]["cycles_per_inference"] == man["cycles"]["by_register"]["fc1.precision"]["0"]
    assert man["intmodel_sha256"] == IntModel.load(mlp_run / "intmodel").digest()
    out = capsys.readouterr().out
    assert "predicted cycles per inference" in out


def test_the_manifest_plan_is_the_generated_plan(mlp_run, tmp_path):
    """The plan read back from the manifest equals the plan generated (weights, lanes, masks, registers)."""
    im = IntModel.load(mlp_run / "intmodel")
    assert main(["gen", str(mlp_run), "-o", str(tmp_path / "g"), "--target-cycles", "400"]) == 0
    back = Design.load(tmp_path / "g").plan
    assert back == plan_network(im, target_cycles=400)
    assert back != plan_network(im, default_lanes=8)  # another mapping is another plan


LINTED = {
    "convnet-max": lambda: random_convnet(seed=4),
    "convnet-avg": lambda: random_convnet(seed=6, pool="avg"),
    "mlp-bitserial": lambda: random_mlp([16, 8, 4], seed=5, w_bits=[8, 4], bitserial_lanes=[4, None]),
    # 3 and 7 bits: the precision port (0..w) is exactly full, so a "precision > w" test would be constant (CMPCONST)
    "mlp-bitserial-3-7": lambda: random_mlp([16, 8, 8, 4], seed=7, w_bits=[3, 7, 4], bitserial_lanes=[4, 2, None]),
    "residual": lambda: random_residual(seed=2, lanes=3),
    "two-inputs": lambda: random_two_inputs(seed=3),
}


@pytest.mark.parametrize("design", sorted(LINTED))
def test_gen_output_passes_verilator_lint_wall(design, tmp_path, capsys):
    """`verilator --lint-only -Wall`: no error, and every warning in a category documented as harmless."""
    run = tmp_path / "run"
    LINTED[design]().save(run / "intmodel")
    assert main(["gen", str(run), "-o", str(tmp_path / "out"), "--lanes", "2", "--lint"]) == 0
    assert "verilator --lint-only -Wall: clean" in capsys.readouterr().out
    res = lint(tmp_path / "out" / "network.sv")
    print(design, res.summary())
    assert res.clean, res.output[-3000:]
    assert res.errors == 0 and res.counts and set(res.counts) <= set(HARMLESS)


def test_lint_reports_an_undocumented_warning(tmp_path):
    """A category outside HARMLESS (here a latch-free multi-driven wire, MULTIDRIVEN) makes a design unclean."""
    src = tmp_path / "network.sv"
    src.write_text("module network(input clk, input a, output reg y);\n"
                   "  always @(posedge clk) y <= a;\n  always @(negedge clk) y <= ~a;\nendmodule\n")
    res = lint(src)
    assert "MULTIDRIVEN" in res.counts and res.undocumented == ["MULTIDRIVEN"] and not res.clean


def test_gen_bad_source(tmp_path, capsys):
    assert main(["gen", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["gen", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    assert "no integer model" in capsys.readouterr().err


def test_gen_refuses_a_folder_with_other_files(mlp_run, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["gen", str(mlp_run), "-o", str(tmp_path / "mine")]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


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
        outs.append(((out / "network.sv").read_bytes(), (out / "manifest.json").read_bytes()))
    assert outs[0] == outs[1]


def test_gen_target_cycles_folds_lanes(tmp_path):
    run = tmp_path / "run"
    random_mlp([64, 64, 32, 10], seed=6).save(run / "intmodel")
    assert main(["gen", str(run), "-o", str(tmp_path / "slow"), "--target-cycles", "100000"]) == 0
    assert main(["gen", str(run), "-o", str(tmp_path / "fast"), "--target-cycles", "700"]) == 0
    slow, fast = Design.load(tmp_path / "slow"), Design.load(tmp_path / "fast")
    assert [n.lanes for n in slow.plan.nodes] == [1, 1, 1]
    assert network_cycles(fast.plan) <= 700 < network_cycles(slow.plan)
    assert fast.manifest["cycles"]["cycles_per_inference"] == network_cycles(fast.plan)


def test_gen_target_ii_folds_lanes_and_pe(tmp_path, capsys):
    """--target-ii: the manifest records the option, the II, each engine's (lanes, PE); `cdsl check` on the
    design shows them; an unreachable target is said, with the engine and the reason; the PE design lints clean."""
    run = tmp_path / "run"
    im = random_mlp([16, 16, 8], seed=13, w_bits=[8, 4], bitserial_lanes=[4, 2])
    im.save(run / "intmodel")
    assert main(["gen", str(run), "-o", str(tmp_path / "ii"), "--target-ii", "130", "--lint"]) == 0
    out = capsys.readouterr().out
    assert "--target-ii 130: reached" in out and "verilator --lint-only -Wall: clean" in out
    design = Design.load(tmp_path / "ii")
    man = design.manifest
    assert man["options"]["target_ii"] == 130 and man["options"]["target_reached"] is True
    assert [(n.lanes, n.pe) for n in design.plan.nodes] == [(4, 4), (2, 2)]
    assert [man["cycles"]["engines"][n]["pe"] for n in ("fc1", "fc2")] == [4, 2]
    assert man["cycles"]["initiation_interval"] <= 130 and man["cycles"]["bottleneck"] in ("fc1", "fc2")
    assert main(["check", str(tmp_path / "ii")]) == 0
    shown = capsys.readouterr().out
    assert "PE" in shown and "initiation interval" in shown and "folded for --target-ii 130" in shown
    assert main(["gen", str(run), "-o", str(tmp_path / "far"), "--target-ii", "10"]) == 0
    out = capsys.readouterr().out
    assert "--target-ii 10 is out of reach" in out and "set by fc1 (lanes 4 fixed by the spec" in out
    assert Design.load(tmp_path / "far").manifest["options"]["target_reached"] is False


def test_check_of_a_folder_without_a_design(tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    assert main(["check", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "nothing" in err and len(err.strip().splitlines()) == 1


def test_gen_conv_pe_design_lints_clean(tmp_path, capsys):
    """A conv at PE 4 (its output buffer reorders the rows) and a join: verilator -Wall clean."""
    from tb.random_models import pooled_join_cnn

    run = tmp_path / "run"
    pooled_join_cnn(5).save(run / "intmodel")
    assert main(["gen", str(run), "-o", str(tmp_path / "out"), "--target-ii", "300", "--lint"]) == 0
    out = capsys.readouterr().out
    assert "verilator --lint-only -Wall: clean" in out
    assert Design.load(tmp_path / "out").plan.node("c1").pe == 4
