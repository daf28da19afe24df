"""AqfpAccumulator in amaranth.sim against the plain-math model of tests/tb/aqfp_cases (never the reference).

Both `BLOCK_CONFIGS`: a dense-like one with two channel blocks per row (a partial last group of 2, an
absent lane group in the second block, LFSR states multiplexed across steps) and a conv-like one with
four kernel positions and a partial group of 1. Every case of `block_samples`: T = 1, T = 0, all
products agreeing and all disagreeing (with zero inputs), a threshold exactly at the count, two seeds
whose outputs differ, each twice. Cycles = rows * steps * max(T, 1) + LATENCY; inferences back to back
restart the LFSRs; random stalls change nothing but the cycles; a mutant LFSR start is caught.
"""

import gc

import pytest

from cdsl.contract.ref import aqfp_accumulator as ref
from cdsl.hw.aqfp_accumulator import LATENCY, AqfpAccumulator
from tb.aqfp_cases import BLOCK_CONFIGS, block_cases, block_cycles, block_dut
from tb.pysim import run_streams


def mismatches(name: str, seed: int = 21) -> list[str]:
    """Every case of the configuration through a fresh device; one line per output or cycle count that
    differs from the plain model (empty: the block agrees). Also checks the cases' premises."""
    cfg = BLOCK_CONFIGS[name]
    rows = cfg.outputs * cfg.pixels
    bad, results = [], {}
    for sample, words, want in block_cases(cfg, seed):
        got, cycles = run_streams(block_dut(cfg), words, n_out=rows, ports={"T": sample.T, "lfsr_seed": sample.seed})
        if got != want:
            bad.append(f"{name} {sample.name}: margins {got}, want {want}")
        if cycles != block_cycles(cfg, sample.T, LATENCY):
            bad.append(f"{name} {sample.name}: {cycles} cycles, want {block_cycles(cfg, sample.T, LATENCY)}")
        results.setdefault(sample.name, []).append(want)
    assert results["seed 5"][0] != results[f"seed {0xBEEF}"][0]  # two seeds, two outputs, each run twice
    at_count = results["threshold at the count"][0]
    assert all(at_count[o * cfg.pixels] == 0 for o in range(cfg.outputs))  # margin exactly 0 on pixel 0
    return bad


@pytest.mark.parametrize("name", BLOCK_CONFIGS)
def test_block_matches_the_plain_model(name):
    assert mismatches(name) == []


def test_a_mutant_lfsr_start_is_caught(monkeypatch):
    """The device's group start states jumped one step too far: the block test reports it."""
    monkeypatch.setattr(ref, "GROUP_STRIDE", ref.GROUP_STRIDE + 1)
    assert any("seed" in line for line in mismatches("dense"))


@pytest.mark.parametrize("name", BLOCK_CONFIGS)
def test_inferences_back_to_back_and_stalls(name):
    """Two inferences in one stream (the LFSRs restart at the second), with random stalls on both sides."""
    cfg = BLOCK_CONFIGS[name]
    rows = cfg.outputs * cfg.pixels
    sample, words, want = [c for c in block_cases(cfg, seed=22) if c[0].name == "seed 5"][0]
    got, _ = run_streams(block_dut(cfg), words + words, n_out=2 * rows, ports={"T": sample.T, "lfsr_seed": sample.seed},
                         seed=3, in_stall=0.3, out_stall=0.4)
    assert got == want + want


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # the refused devices
def test_parameters_are_checked():
    table4, table2 = ref.bit_table(4, gray=1.0, atten=0.0), ref.bit_table(2, gray=1.0, atten=0.0)
    common = dict(a_width=2, w_bits=2, group=4, taps=1, rows=1, t_max=16, tau_bits=20)
    with pytest.raises(ValueError, match="multiple of group"):
        AqfpAccumulator(lanes=6, channels=10, table=table4, table_partial=table2, acc_width=40, **common)
    with pytest.raises(ValueError, match="table_partial"):
        AqfpAccumulator(lanes=8, channels=10, table=table4, table_partial=None, acc_width=40, **common)
    with pytest.raises(ValueError, match="acc_width"):
        AqfpAccumulator(lanes=8, channels=8, table=table4, table_partial=None, acc_width=8, **common)
    gc.collect()  # the refused devices warn when collected: here, under this test's filter
