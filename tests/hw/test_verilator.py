"""cocotb + Verilator: blocks through the bulk-load Harness against cdsl.contract.ref and plain math, and
generated designs (network.sv, as `cdsl gen` writes it) against the golden model through cdsl.sim.cosim.

Block builds: Mac, BitSerialMac (through a plane feeder), RequantUnit (per-channel and lean), a conv MacEngine, max and average pool engines. Network
designs: an MLP with a bit-serial and a bit-parallel layer, a conv net with a bit-serial conv and max
pooling, a conv net with average pooling; runtime precisions go through the design's registers.
Every build is cached by content hash (cdsl.sim.build).
"""

import numpy as np
import pytest
import torch

from tb.engine_cases import corner_images, pool_node, pool_reference, reference, weighted_node
from tb.harness_case import run_case, verify_design
from tb.mac_cases import acc_width_for, bitserial_cycles, bitserial_steps, mac_cases, mac_steps, truncated_dot
from tb.random_models import random_convnet, random_mlp

from cdsl.contract.intmodel import replace_payload
from cdsl.contract.ref.dense import dense
from cdsl.contract.ref.requant import quantize_multiplier, requantize
from tb.bitserial_feed import PlaneFedMac
from cdsl.hw.generate import generate
from cdsl.hw.mac import LATENCY as MAC_LATENCY, Mac, step_layout
from cdsl.hw.plan import network_cycles
from cdsl.hw.requant_unit import LATENCY as RQ_LATENCY, RequantUnit
from cdsl.sim.cosim import verify
from cdsl.sim.design import Design

pytestmark = pytest.mark.slow


def test_mac_block(tmp_path):
    """Bit-parallel Mac: every corner case of `mac_cases`, signed and unsigned activations."""
    seed = 40
    rng = np.random.default_rng(seed)
    lanes, w_bits, k, rows = 3, 8, 10, 4
    samples, expected, cycles = [], [], []
    layout = step_layout(lanes=lanes, a_width=8, a_signed=True, w_bits=w_bits)
    for _name, x, w in mac_cases(rng, rows, k, 8, True, w_bits):
        words = mac_steps(layout, x, w, lanes)
        samples.append([c.as_value().value for c in words])
        expected.append(dense(x.astype(np.int64), w.astype(np.int64)).tolist())
        cycles.append(len(words) + MAC_LATENCY)
    dut = Mac(lanes=lanes, a_width=8, a_signed=True, w_bits=w_bits, acc_width=acc_width_for(k, 8, True, w_bits))
    run_case(tmp_path, "mac", dut, samples, expected, cycles, throttle_seed=seed, throttle=True)


def test_bitserial_mac_block(tmp_path):
    """BitSerialMac: every corner case of `mac_cases` at every runtime precision (0 = full), expected
    sums and cycles from plain integer math (not from the helpers that build its plane masks)."""
    seed = 41
    rng = np.random.default_rng(seed)
    lanes, w_bits, k, rows = 4, 8, 10, 6
    layout = step_layout(lanes=lanes, a_width=8, a_signed=True, w_bits=w_bits, mask=True)
    samples, expected, cycles, ports = [], [], [], []
    for _name, x, weight in mac_cases(rng, rows, k, 8, True, w_bits):
        words = [c.as_value().value for c in bitserial_steps(layout, x, weight, lanes, w_bits)]
        for p in range(0, w_bits + 1):
            prec = p or w_bits
            samples.append(words)
            ports.append({"precision": p})
            expected.append([truncated_dot(x, row, w_bits, prec) for row in weight])
            cycles.append(bitserial_cycles(weight, w_bits, prec, lanes))
    dut = PlaneFedMac(lanes=lanes, a_width=8, a_signed=True, w_bits=w_bits, acc_width=acc_width_for(k, 8, True, w_bits))
    run_case(tmp_path, "bitserial_mac", dut, samples, expected, cycles, ports=ports, throttle_seed=seed, throttle=True)


def test_requant_block(tmp_path):
    seed = 42
    rng = np.random.default_rng(seed)
    acc_width, channels = 24, 4
    pairs = [quantize_multiplier(float(r)) for r in rng.uniform(1e-5, 1e-3, size=channels)]
    pairs[-1] = (5, 0)
    mult, shift = [p[0] for p in pairs], [p[1] for p in pairs]
    dut = RequantUnit(acc_width=acc_width, channels=channels, multipliers=mult, shifts=shift, qmin=-128, qmax=127,
                      out_bits=8, out_signed=True)
    layout = dut.i.payload.shape()
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    samples, expected, cycles = [], [], []
    for _ in range(6):
        accs = [lo, hi, 0, -1] + rng.integers(lo, hi + 1, size=28).tolist()
        chans = [i % channels for i in range(len(accs))]
        samples.append([layout.const({"acc": a, "ch": c}).as_value().value for a, c in zip(accs, chans)])
        expected.append([int(requantize(a, mult[c], shift[c], -128, 127)) for a, c in zip(accs, chans)])
        cycles.append(len(accs) + RQ_LATENCY)
    run_case(tmp_path, "requant", dut, samples, expected, cycles)


def test_lean_requant_block(tmp_path):
    """RequantUnit with one (M, S) (the lean form over acc_range): the range ends, both window edges and
    random accumulators, expected from plain integer math (floor((acc*M + 2**(S-1)) / 2**S), clamped)."""
    seed = 47
    rng = np.random.default_rng(seed)
    acc_width, (lo, hi), m, s = 22, (-2089561, 2073631), 1019927816, 36  # the digits MLP's h1
    dut = RequantUnit(acc_width=acc_width, channels=1, multipliers=[m], shifts=[s], qmin=0, qmax=255, out_bits=8,
                      out_signed=False, acc_range=(lo, hi))
    layout = dut.i.payload.shape()
    edges = [e + d for e in (dut.lean[0].lo_edge, dut.lean[0].hi_edge) for d in (-1, 0, 1)]
    samples, expected, cycles = [], [], []
    for _ in range(4):
        accs = [lo, hi, 0, *edges] + rng.integers(dut.lean[0].lo_edge - 5, dut.lean[0].hi_edge + 5, size=40).tolist()
        samples.append([layout.const({"acc": int(a), "ch": 0}).as_value().value for a in accs])
        expected.append([min(max((int(a) * m + (1 << (s - 1))) >> s, 0), 255) for a in accs])
        cycles.append(len(accs) + RQ_LATENCY)
    run_case(tmp_path, "lean_requant", dut, samples, expected, cycles)


def test_conv_engine_block(tmp_path):
    """One conv MacEngine (frame buffer, window generator with padding and stride 2, lanes over input
    channels, per-channel requant), first output channel all -128 weights, second all +127."""
    seed = 46
    rng = np.random.default_rng(seed)
    weight = rng.integers(-128, 128, size=(4, 3, 3, 3))
    weight[0], weight[1] = -128, 127
    node = weighted_node(rng, in_shape=(3, 6, 6), co=4, kernel=3, stride=2, padding=1, lanes=2, per_channel=True,
                         weight=weight)
    xs = corner_images(rng, node.in_shape)
    samples = [x.reshape(-1).tolist() for x in xs]
    expected = [reference(node, x) for x in xs]
    run_case(tmp_path, "conv_engine", node.component(), samples, expected,
             [node.in_types[0].words + node.delay({})] * len(xs), throttle_seed=seed, throttle=True)


@pytest.mark.parametrize("average", [False, True])
def test_pool_engine_block(tmp_path, average):
    seed = 47
    rng = np.random.default_rng(seed)
    node = pool_node(average=average, in_shape=(3, 5, 5), kernel=3, stride=2)
    xs = corner_images(rng, node.in_shape)
    samples = [x.reshape(-1).tolist() for x in xs]
    expected = [pool_reference(node, x) for x in xs]
    run_case(tmp_path, "avgpool" if average else "maxpool", node.component(), samples, expected,
             [node.in_types[0].words + node.delay({})] * len(xs), throttle_seed=seed, throttle=True)


def test_mlp_network(tmp_path):
    seed = 43
    rng = np.random.default_rng(seed)
    im = random_mlp([16, 8, 4], seed=seed, w_bits=[8, 4], bitserial_lanes=[4, None], sparsity=0.3)
    fc1 = im.layers[0]
    w = fc1.payload.weight.copy()
    w[0], w[1], w[2] = -128, 127, 0
    w[3] = rng.choice([0, 2, 32], size=w.shape[1])
    im = type(im)(im.name, im.inputs, (replace_payload(fc1, weight=w), *im.layers[1:]), im.outputs)
    inputs = corner_images(rng, (16,), count=3)
    verify_design(tmp_path, "mlp", im, inputs, [{"fc1": {"precision": p}} for p in range(0, 9)], default_lanes=2)


def test_convnet_bitserial_maxpool(tmp_path):
    seed = 44
    rng = np.random.default_rng(seed)
    im = random_convnet(seed=seed, conv_bitserial_lanes=1)
    inputs = corner_images(rng, (1, 6, 6), count=2)
    verify_design(tmp_path, "convnet_max", im, inputs, [{"c1": {"precision": p}} for p in (0, 2, 5)], default_lanes=2)


def test_convnet_avgpool(tmp_path):
    seed = 45
    rng = np.random.default_rng(seed)
    im = random_convnet(seed=seed, pool="avg")
    inputs = corner_images(rng, (1, 6, 6), count=3)
    verify_design(tmp_path, "convnet_avg", im, inputs, [{}], default_lanes=4)


def test_residual_network(tmp_path):
    """A residual join (two FIFOs sized by the plan) around a bit-serial layer, at several precisions."""
    from tb.random_models import random_residual

    seed = 48
    rng = np.random.default_rng(seed)
    im = random_residual(seed=seed, lanes=3)
    inputs = corner_images(rng, (12,), count=3)
    design = verify_design(tmp_path, "residual", im, inputs, [{"fc2": {"precision": p}} for p in (0, 3, 8)],
                           default_lanes=4)
    assert len(design.plan.buffers) == 2


def test_two_inputs_two_outputs_network(tmp_path):
    """Two input streams fed at once, a join of a layer and an input, an input read twice, two outputs."""
    from tb.random_models import random_two_inputs

    seed = 49
    rng = np.random.default_rng(seed)
    im = random_two_inputs(seed=seed)
    generate(im, tmp_path / "two", default_lanes=2)
    design = Design.load(tmp_path / "two")
    xs = {"xa": torch.tensor(corner_images(rng, (8,), count=3)), "xb": torch.tensor(corner_images(rng, (8,), count=3))}
    report = verify(im, design, xs, work_dir=tmp_path / "two_sim")
    assert report.passed, report.first_mismatch
    assert set(report.run.outputs) == {"y", "yb"}
    assert list(report.run.cycles) == [network_cycles(design.plan)] * len(xs["xa"])
