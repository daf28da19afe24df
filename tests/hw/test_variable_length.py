"""Streams whose length varies per inference: a test-only `Compactor` (as a token selector will be)
emits a different number of words per inference, ended by `last`; the pysim runner and the
Verilator harness (`expect_` 0: capture until `last`) both follow it."""

import json

import numpy as np
import pytest
from amaranth.back import verilog

from tb.compactor import Compactor, compact
from tb.pysim import run_graph

from cdsl.sim.harness import Harness
from cdsl.sim.runner import run_cocotb

WORDS, BITS, THRESHOLD = 12, 8, 20


def samples(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    cases = [[-128] * WORDS, [127] * WORDS, [0] * (WORDS - 1) + [100], [100] + [0] * (WORDS - 1)]
    return cases + [rng.integers(-128, 128, WORDS).tolist() for _ in range(8)]


@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_compactor_in_pysim(stall):
    for k, words in enumerate(samples(1)):
        want = compact(words, THRESHOLD)
        got, _ = run_graph(Compactor(bits=BITS, threshold=THRESHOLD), {"i": words}, {"o": len(want)}, seed=k,
                           in_stall=stall, out_stall=stall)
        assert got["o"] == want, f"sample {k} stall {stall}"  # run_graph checks `last` on the final word


@pytest.mark.slow
def test_harness_captures_until_last(tmp_path):
    data = samples(2)
    lengths = [len(compact(w, THRESHOLD)) for w in data]
    assert len(set(lengths)) > 3  # the length really varies
    harness = Harness(dut=Compactor(bits=BITS, threshold=THRESHOLD), depths={"i": WORDS, "o": WORDS}, throttle=True)
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"samples": data, "expected": [compact(w, THRESHOLD) for w in data]}))
    result = run_cocotb(verilog=verilog.convert(harness, name="vl_top"), toplevel="vl_top",
                        test_module="tb.variable_length_bench", test_dir=tmp_path / "sim",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_VL_CASE": str(case)})
    assert result.passed, result.summary() + "\n" + result.log_text(tail=30)
    assert result.data["counts"] == lengths
