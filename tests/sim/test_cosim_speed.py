"""The pieces behind co-verification speed, held to values (never to timings): the bare C++ Verilator
loop that `cdsl bench` measures against, the batch harness (many samples per Python wake-up, each
with the cycles of a run of its own), and the simulator main that drives the clock in C++."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdsl.hw.generate import generate
from cdsl.hw.plan import cycle_report, network_cycles
from cdsl.sim.bare_loop import build_bare_loop, ports_header, run_bare_loop, verilated_name
from cdsl.sim.cosim import batch_size, harness_for, simulate, verify
from cdsl.sim.design import Design
from tb.random_models import random_mlp


def _design(tmp_path, **kw) -> tuple:
    intmodel = random_mlp([12, 8, 4], seed=5, bitserial_lanes=[2, None], **kw)
    generate(intmodel, tmp_path / "rtl")
    return intmodel, Design.load(tmp_path / "rtl")


def test_verilated_names_escape_double_underscores():
    assert verilated_name("i_x__payload") == "i_x___05Fpayload"
    assert verilated_name("clk") == "clk"
    assert verilated_name("a___b") == "a___05F__05Fb"


def test_ports_header_names_every_stream_and_its_last_bit(tmp_path):
    _, design = _design(tmp_path)
    text = ports_header(design)
    assert '#define CDSL_TOP Vnetwork' in text
    assert "X(i_x___05Fpayload, i_x___05Fvalid, i_x___05Fready, 8, 8, 12)" in text  # 8 data bits, last at 8
    assert "X(o_fc2___05Fpayload, o_fc2___05Fvalid, o_fc2___05Fready, 8)" in text


def test_batch_harness_has_per_sample_memories(tmp_path):
    _, design = _design(tmp_path)
    one, many = harness_for(design, probes=False), harness_for(design, probes=False, samples=batch_size(design))
    assert "mem_cycles" not in one.memory_names() and one.samples == 1
    assert many.samples == 64
    assert {"mem_cycles", "mem_counts_o_fc2"} <= set(many.memory_names())
    assert "n_samples" in many.signature.members and "n_samples" not in one.signature.members
    with pytest.raises(ValueError, match="samples"):
        harness_for(design, probes=False, samples=0)


@pytest.mark.slow
def test_bare_loop_counts_inferences_as_the_cycle_model_predicts(tmp_path):
    """The bare loop over a small network: one inference at a time, every latency is the model's and
    the output `last`s count the inferences; back to back, the first inference takes the model's
    latency and the later ones at least the slowest engine's cycles and at most the latency."""
    _, design = _design(tmp_path)
    latency = network_cycles(design.plan)
    bare = build_bare_loop(design)
    assert bare.executable.is_file()
    single = run_bare_loop(bare, mode="single", cycles=3 * latency + 5)
    assert single.latencies == (latency, latency, latency)
    assert single.inferences == 3
    assert single.first_latency == latency
    stream = run_bare_loop(bare, mode="stream", cycles=20 * latency, seed=7)
    assert stream.first_latency == latency
    slowest = max(f["delay"] for f in cycle_report(design.plan)["engines"].values())
    assert stream.inferences >= 20 and slowest <= stream.interval <= latency
    assert stream.latencies == ()


@pytest.mark.slow
def test_batches_give_every_sample_its_own_run(tmp_path):
    """70 samples (a batch of 64 and one of 6) at a truncated precision (register writes before each
    sample): bit-exact, and every sample's cycles those of a run of its own, in Verilator with the
    clock in C++ and in Icarus (if installed) with cocotb's clock."""
    import shutil

    intmodel, design = _design(tmp_path)
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.integers(0, 256, size=(70, 12)))
    settings = {"fc1": {"precision": 3}}
    report = verify(intmodel, design, x, settings=settings, work_dir=tmp_path / "sim")
    assert report.passed, report.first_mismatch
    assert list(report.run.cycles) == [network_cycles(design.plan, settings=settings)] * 70
    assert list(report.run.counts["fc2"]) == [4] * 70
    if shutil.which("iverilog") and shutil.which("vvp"):
        icarus = simulate(design, x[:3], settings=settings, simulator="icarus")
        assert list(icarus.cycles) == list(report.run.cycles[:3])
        assert np.array_equal(icarus.outputs["fc2"], report.run.outputs["fc2"][:3])
