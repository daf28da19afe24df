"""Build-cache keys, port discovery, harness construction (fast: no Verilator build)."""

from __future__ import annotations

import gc
import hashlib
import json

import pytest
from amaranth.back import verilog
from amaranth.hdl import signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

import cdsl.sim.build as build_mod
from cdsl.sim.build import BuildOptions, cache_key, cache_root, normalized_verilog, top_ports
from cdsl.sim.selftest import MacStream, acc_width, mac_stream_ref
from cdsl.sim.harness import CYCLES_WIDTH, Harness

TOOLS = {"verilator": "5.48.0", "cocotb": "2.1.0", "cocotb_libs": "/x", "cxx": "g++ 12", "python": "3.11"}


# Several tests build a Harness only for its manifest or to see its constructor refuse bad
# arguments; Amaranth warns (at garbage collection, so in whichever test runs then) that those
# components were never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

def test_cache_key_depends_on_everything_that_changes_the_binary():
    base = dict(verilog="module t(a); input a; endmodule\n", toplevel="t", options=BuildOptions(), tools=TOOLS)
    key = cache_key(**base)
    assert key == cache_key(**base)
    variants = [
        dict(base, verilog=base["verilog"] + "// changed\n"),
        dict(base, toplevel="u", verilog="module u(a); input a; endmodule\n"),
        dict(base, options=BuildOptions(waves="fst")),
        dict(base, options=BuildOptions(waves="vcd")),
        dict(base, options=BuildOptions(public_all=True)),
        dict(base, options=BuildOptions(public=("inmem",))),
        dict(base, options=BuildOptions(optimize=False)),
        dict(base, options=BuildOptions(extra_args=("--threads", "2"))),
        dict(base, tools=dict(TOOLS, verilator="5.49.0")),
        dict(base, tools=dict(TOOLS, cocotb="2.2.0")),
    ]
    keys = {cache_key(**v) for v in variants}
    assert len(keys) == len(variants) and key not in keys


def test_src_attributes_do_not_change_the_key():
    text = verilog.convert(MacStream(k=3), name="m")
    assert '(* src = "' in text
    moved = text.replace("/sim/selftest.py:", "/elsewhere/selftest.py:9")
    assert moved != text
    key = cache_key(verilog=text, toplevel="m", options=BuildOptions(), tools=TOOLS)
    assert cache_key(verilog=moved, toplevel="m", options=BuildOptions(), tools=TOOLS) == key
    assert "src =" not in normalized_verilog(text) and "module m(" in normalized_verilog(text)


def test_cache_root_follows_cdsl_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CDSL_CACHE", str(tmp_path))
    assert cache_root() == tmp_path / "verilator"
    monkeypatch.delenv("CDSL_CACHE")
    assert cache_root().parts[-3:] == ("cdsl", "verilator") or cache_root().parts[-2:] == ("cdsl", "verilator")


def test_build_options_are_checked():
    with pytest.raises(ValueError, match="waves"):
        BuildOptions(waves="ghw")
    with pytest.raises(TypeError, match="public"):
        BuildOptions(public="inmem")


def test_top_ports_from_amaranth_verilog():
    text = verilog.convert(Harness(dut=MacStream(k=3), depths={"i": 6, "o": 2}), name="harness_top")
    assert set(top_ports(text, "harness_top")) == {"clk", "rst", "start", "len_i", "expect_o", "count_o", "done",
                                                   "busy", "cycles"}
    assert top_ports(text, "nope") is None


def test_harness_manifest_flattens_layouts_and_keeps_signedness():
    h = Harness(dut=MacStream(k=5, width=6), depths={"i": 10, "o": 2}, throttle=True)
    m = json.loads(h.manifest_json())
    assert m == {"ports": [
        {"name": "i", "role": "input", "width": 12, "signed": False, "frame": False, "depth": 10},
        {"name": "o", "role": "output", "width": acc_width(k=5, width=6), "signed": True, "frame": False, "depth": 2},
    ], "throttle": True, "cycles_width": CYCLES_WIDTH, "passthrough": [], "samples": 1}
    assert "seed" in h.signature.members
    assert h.memory_names() == ("mem_i", "mem_o")


# Test doubles with port shapes the harness must refuse in its constructor (so they are never
# elaborated) or pass through.
class _NoOutput(wiring.Component):
    def __init__(self):
        super().__init__({"i": In(stream.Signature(unsigned(8))), "o": Out(8)})

    def elaborate(self, platform):
        raise NotImplementedError


class _Settings(wiring.Component):
    def __init__(self):
        super().__init__({"i": In(stream.Signature(signed(8))), "o": Out(stream.Signature(unsigned(8))),
                          "precision": In(range(9))})

    def elaborate(self, platform):
        raise NotImplementedError


def test_harness_rejects_bad_duts_and_depths():
    with pytest.raises(TypeError, match="no output stream"):
        Harness(dut=_NoOutput(), depths={"i": 1})
    with pytest.raises(ValueError, match="'o' needs a memory depth"):
        Harness(dut=MacStream(k=2), depths={"i": 1})
    with pytest.raises(ValueError, match="'o' needs a memory depth"):
        Harness(dut=MacStream(k=2), depths={"i": 1, "o": 0})
    with pytest.raises(ValueError, match="'x', not a port"):
        Harness(dut=MacStream(k=2), depths={"i": 1, "o": 1, "x": 3})
    with pytest.raises(TypeError, match="wiring.Component"):
        Harness(dut=object(), depths={})
    gc.collect()  # the refused duts' "never elaborated" warnings fire here, under this module's filter


class _Seeded(wiring.Component):
    def __init__(self):
        super().__init__({"i": In(stream.Signature(signed(8))), "o": Out(stream.Signature(unsigned(8))),
                          "seed": In(32)})

    def elaborate(self, platform):
        raise NotImplementedError


def test_harness_refuses_a_device_input_named_like_its_own_ports():
    """A device's `seed` would merge with the throttled harness's `seed` input and turn back-pressure on."""
    with pytest.raises(ValueError, match="'seed' has the name of a harness port"):
        Harness(dut=_Seeded(), depths={"i": 1, "o": 1}, throttle=True)
    assert "seed" in Harness(dut=_Seeded(), depths={"i": 1, "o": 1}).manifest()["passthrough"]
    gc.collect()


def test_harness_passes_plain_inputs_through():
    h = Harness(dut=_Settings(), depths={"i": 4, "o": 4})
    assert h.manifest()["passthrough"] == ["precision"] and "precision" in h.signature.members


def test_mac_stream_reference():
    assert mac_stream_ref([(1, 2), (3, 4), (-5, 6), (7, -8)], 2) == [14, -86]
    with pytest.raises(ValueError):
        mac_stream_ref([(1, 2)], 2)


def _fake_compile(race: bool):
    """Stand-in for the Verilator build: writes an 'executable'; with `race`, another process's
    finished build appears at the final path before ours is renamed."""

    def compile_(*, verilog, toplevel, options, directory):
        (directory / toplevel).write_text("ours")
        if race:
            final = directory.parent / build_mod.cache_key(verilog=verilog, toplevel=toplevel, options=options)
            final.mkdir()
            (final / toplevel).write_text("theirs")
            digest = hashlib.sha256(b"theirs").hexdigest()
            (final / "cdsl_build.json").write_text(json.dumps({"executable_sha256": digest}))

    return compile_


def test_build_is_renamed_atomically_and_a_lost_race_uses_the_winner(monkeypatch, tmp_path):
    text = "module t(a); input a; endmodule\n"
    monkeypatch.setattr(build_mod, "_compile", _fake_compile(race=False))
    first = build_mod.build_verilog(verilog=text, toplevel="t", cache_dir=tmp_path)
    assert not first.hit and (first.directory / "t").read_text() == "ours"
    assert (first.directory / "cdsl_build.json").is_file()
    assert build_mod.build_verilog(verilog=text, toplevel="t", cache_dir=tmp_path).hit

    monkeypatch.setattr(build_mod, "_compile", _fake_compile(race=True))
    raced = build_mod.build_verilog(verilog=text + "//2\n", toplevel="t", cache_dir=tmp_path)
    assert not raced.hit and (raced.directory / "t").read_text() == "theirs"
    # No temporary folders are left behind.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_failed_build_leaves_nothing(monkeypatch, tmp_path):
    def broken(**kwargs):
        raise build_mod.BuildError("compiler exploded")

    monkeypatch.setattr(build_mod, "_compile", broken)
    with pytest.raises(build_mod.BuildError, match="exploded"):
        build_mod.build_verilog(verilog="module t; endmodule\n", toplevel="t", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("outcome, kept", [("passed", False), ("failed", True), ("no results", True),
                                           ("build error", False), ("interrupted", False)])
def test_a_scratch_simulation_folder_is_kept_only_when_it_holds_a_failure(monkeypatch, tmp_path, outcome, kept):
    """run_cocotb without test_dir: its temp folder goes after a pass (the data is read), stays when a
    test failed or the simulator wrote no results (the log named there), goes on a build error (its log
    is in the build cache) or an interruption."""
    import tempfile

    from cdsl.sim import runner

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def fake_run(*, test_dir, **kwargs):
        (test_dir / "sim.log").write_text("log")
        if outcome == "build error":
            raise build_mod.BuildError("compiler exploded")
        if outcome == "interrupted":
            raise KeyboardInterrupt
        if outcome == "no results":
            raise runner.SimulationError(f"wrote no results; log {test_dir / 'sim.log'}")
        return runner.CocotbResult(tests=(runner.TestCase("t", outcome == "passed", 0.0, 0.0),), build=None,
                                   results_xml=test_dir / "results.xml", log=test_dir / "sim.log",
                                   results_json=test_dir / "r.json", waves=None, seconds=0.0, seed=1)

    monkeypatch.setattr(runner, "_run", fake_run)
    try:
        runner.run_cocotb(verilog="module t; endmodule\n", toplevel="t", test_module="m")
    except (build_mod.BuildError, KeyboardInterrupt, runner.SimulationError):
        pass
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith("cdsl-sim-")]
    assert len(left) == (1 if kept else 0), (outcome, left)
