"""cocotb + Verilator: the AQFP accumulator block through the bulk-load Harness against the plain model of
tests/tb/aqfp_cases (every case of `block_samples`, inferences back to back in one harness, then again with
back-pressure), and a generated conv BNN (zero padding, four kernel positions, a partial group, one group
per step) verified against the golden model at several runtime T and seeds, cycles equal to the plan's."""

import numpy as np
import pytest

from tb.aqfp_cases import BLOCK_CONFIGS, block_cases, block_cycles, block_dut
from tb.engine_cases import corner_images
from tb.harness_case import run_case, verify_design
from tb.random_models import random_bnn

from cdsl.hw.aqfp_accumulator import LATENCY

pytestmark = pytest.mark.slow


def test_aqfp_accumulator_block(tmp_path):
    cfg = BLOCK_CONFIGS["dense"]
    samples, expected, cycles, ports = [], [], [], []
    for sample, words, want in block_cases(cfg, seed=23):
        samples.append([w.as_value().value for w in words])
        expected.append(want)
        cycles.append(block_cycles(cfg, sample.T, LATENCY))
        ports.append({"T": sample.T, "lfsr_seed": sample.seed})
    assert expected[-4] == expected[-2] != expected[-3] == expected[-1]  # seeds 5, 0xBEEF, 5, 0xBEEF
    run_case(tmp_path, "aqfp_accumulator", block_dut(cfg), samples, expected, cycles, ports=ports, throttle_seed=23,
             throttle=True)


def test_conv_bnn_network(tmp_path):
    seed = 50
    rng = np.random.default_rng(seed)
    im = random_bnn(seed=seed, conv=True, group=2, T=3)
    inputs = corner_images(rng, (1, 5, 5), count=3)
    settings = [{}, {"b": {"T": 0}}, {"b": {"T": 1}}, {"b": {"T": 7, "seed": 99}}]
    design = verify_design(tmp_path, "bnn_conv", im, inputs, settings, default_lanes=2, lanes={"b": 1})
    assert design.plan.node("b").steps == 8
