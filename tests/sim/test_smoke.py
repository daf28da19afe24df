"""The chain works on this machine: Amaranth -> Verilog -> Verilator (cached) -> cocotb checks values.

Slow tests (they build Verilator models; each new design ~3-5 s once Verilator's runtime objects
are cached, ~15 s the very first time; cache hits skip compilation). Seeds are printed on failure.
"""

from __future__ import annotations

import shutil
import time
import uuid

import pytest
from amaranth.back import verilog

from cdsl.sim.speed import run_bench
from cdsl.sim.build import build_verilog
from cdsl.sim.selftest import MacStream, selftest_env, selftest_harness
from cdsl.sim.harness import Harness
from cdsl.sim.runner import run_cocotb
from cdsl.sim.toolchain import ToolchainError, fst_supported

K, WIDTH = 8, 8


def _harness_verilog() -> tuple[str, Harness]:
    harness = selftest_harness(k=K, width=WIDTH)
    return verilog.convert(harness, name="smoke_harness_top"), harness


def _env(harness: Harness, *, k: int = K, samples: int = 300) -> dict:
    return selftest_env(harness, k=k, width=WIDTH, samples=samples)


def _explain(result) -> str:
    return f"{result.summary()}\nlog {result.log}:\n{result.log_text(tail=25)}"


@pytest.mark.slow
def test_harness_bulk_runs_check_real_values(tmp_path):
    text, harness = _harness_verilog()
    result = run_cocotb(verilog=text, toplevel="smoke_harness_top", test_module="cdsl.sim.selftest_bench",
                        test_dir=tmp_path, extra_env=_env(harness))
    print(f"seed {result.seed}")
    assert result.passed, _explain(result)
    assert [t.name for t in result.tests] == ["harness_one_sample_per_run", "harness_many_samples_per_run",
                                              "harness_throttled"]
    data = result.data
    assert data["one_per_run"]["samples"] == 306 and set(data["one_per_run"]["cycles"]) == {K + 1}
    assert set(data["four_per_run"]["cycles"]) == {4 * (K + 1)}
    assert sum(data["throttled"]["cycles"]) > data["throttled"]["clean_cycles"] == 306 * (K + 1)


@pytest.mark.slow
def test_wrong_expectations_fail_with_a_located_report(tmp_path):
    """The same (cached) build checked against a wrong reference (k=16 for a k=8 design): the test
    fails and names sample, port, element, values and seed; a run that never finishes (k=4: the
    design waits for more input) fails with a timeout instead of hanging."""
    text, harness = _harness_verilog()
    result = run_cocotb(verilog=text, toplevel="smoke_harness_top", test_module="cdsl.sim.selftest_bench",
                        test_dir=tmp_path / "wrong", extra_env=_env(harness, k=2 * K, samples=5), seed=42,
                        testcase="harness_one_sample_per_run")
    assert result.build.hit
    assert not result.passed and len(result.tests) == 1
    message = result.tests[0].message
    # Sample 0 is all max: the design sums 8 products, the wrong reference 16.
    assert (f"mismatch in sample 0, port 'o', element [0]: expected {2 * K * 127 * 127}, got {K * 127 * 127}"
            in message), message
    assert "seed 42" in message, message

    hung = run_cocotb(verilog=text, toplevel="smoke_harness_top", test_module="cdsl.sim.selftest_bench",
                      test_dir=tmp_path / "hung", extra_env=_env(harness, k=K // 2, samples=5), seed=43,
                      testcase="harness_one_sample_per_run")
    assert not hung.passed
    assert "`done` not raised within 100000 cycles" in hung.tests[0].message, hung.tests[0].message


@pytest.mark.slow
def test_stream_drivers_with_backpressure(tmp_path):
    text = verilog.convert(MacStream(k=K, width=WIDTH), name="smoke_mac_stream")
    result = run_cocotb(verilog=text, toplevel="smoke_mac_stream", test_module="tb.stream_bench",
                        test_dir=tmp_path, extra_env={"CDSL_SMOKE_K": str(K), "CDSL_SMOKE_WIDTH": str(WIDTH),
                                                      "CDSL_SMOKE_SAMPLES": "60"})
    print(f"seed {result.seed}")
    assert result.passed, _explain(result)
    assert {t.name for t in result.tests} == {"stream_backpressure", "stream_full_rate"}
    assert result.data["samples"] == 63
    # Random stalls on both sides: sending 63 groups of 8 words took longer than at full rate.
    assert result.data["send_cycles"] > 63 * (K + 1)


@pytest.mark.slow
def test_build_cache_hit_and_miss():
    text, _ = _harness_verilog()
    first = build_verilog(verilog=text, toplevel="smoke_harness_top")
    t0 = time.perf_counter()
    again = build_verilog(verilog=text, toplevel="smoke_harness_top")
    hit_seconds = time.perf_counter() - t0
    assert again.hit and again.directory == first.directory and hit_seconds < 2.0
    assert (again.directory / "smoke_harness_top").is_file()
    changed = text + f"\n// {uuid.uuid4().hex}\n"
    miss = build_verilog(verilog=changed, toplevel="smoke_harness_top")
    try:
        assert not miss.hit and miss.key != first.key and miss.directory != first.directory
        assert (miss.directory / "smoke_harness_top").is_file()
    finally:
        shutil.rmtree(miss.directory, ignore_errors=True)


@pytest.mark.slow
def test_waveform_written_to_the_given_file(tmp_path):
    text = verilog.convert(MacStream(k=K, width=WIDTH), name="smoke_mac_stream")
    env = {"CDSL_SMOKE_K": str(K), "CDSL_SMOKE_WIDTH": str(WIDTH), "CDSL_SMOKE_SAMPLES": "4"}
    waves = tmp_path / "waves" / "smoke.vcd"
    result = run_cocotb(verilog=text, toplevel="smoke_mac_stream", test_module="tb.stream_bench",
                        test_dir=tmp_path, waves=waves, testcase="stream_full_rate", extra_env=env)
    assert result.passed, _explain(result)
    assert result.build.options.waves == "vcd" and result.waves == waves
    vcd = waves.read_text()
    assert "$enddefinitions" in vcd and "o__payload" in vcd and "i__valid" in vcd
    # 4 + 3 corner groups of 8 words at full rate: the clock toggles for well over 60 edges.
    assert vcd.count("\n#") > 60

    if fst_supported():
        fst = tmp_path / "smoke.fst"
        again = run_cocotb(verilog=text, toplevel="smoke_mac_stream", test_module="tb.stream_bench",
                           test_dir=tmp_path, waves=fst, testcase="stream_full_rate", extra_env=env)
        assert again.passed and fst.stat().st_size > 100
    else:
        with pytest.raises(ToolchainError, match="liblz4-dev"):
            run_cocotb(verilog=text, toplevel="smoke_mac_stream", test_module="tb.stream_bench",
                       waves=tmp_path / "smoke.fst", extra_env=env)


@pytest.mark.slow
def test_bulk_simulation_speed():
    """SerialDense 64 -> 10 (714 cycles per sample) in the harness: hundreds of thousands of cycles/s."""
    result = run_bench(samples=300)
    assert result.passed, _explain(result)
    data = result.data
    print(f"simulated {data['cycles']} cycles in {data['wall_s']:.3f} s: {data['cycles_per_s']:,.0f} cycles/s")
    assert data["cycles_per_sample"] == 714
    # ~550-800k on 2 busy cores; the bound leaves room for a loaded CI machine.


@pytest.mark.slow
def test_bad_verilog_is_a_build_error_with_the_log(tmp_path):
    from cdsl.sim.build import BuildError

    with pytest.raises(BuildError) as err:
        build_verilog(verilog="module broken(a); input a; wire b = ; endmodule\n", toplevel="broken",
                      cache_dir=tmp_path)
    text = str(err.value)
    assert "Verilator build of 'broken' failed" in text and "syntax error" in text.lower()
    assert err.value.exit_code == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
