"""cocotb + Verilator: blocks and networks through the bulk-load Harness, against hw/ref and golden.

Nine Verilator builds (cached by hash in cdsl.sim.build): Mac, BitSerialMac, Requant, a conv
LayerEngine, max and average pool engines, an MLP with a
bit-serial and a bit-parallel layer, a conv net with a bit-serial conv and max pooling, a conv
net with average pooling. Runtime precisions go in through `PrefixPorts` (one word per frame).
"""

import dataclasses
import json

import numpy as np
import pytest
import torch
from amaranth.back import verilog

from cdsl.dsl import ir
from cdsl.hw.bitserial_mac import BitSerialMac
from cdsl.hw.mac import LATENCY as MAC_LATENCY, Mac, step_layout
from cdsl.hw.network import Network, precision_port
from cdsl.hw.layer_engine import LayerEngine
from cdsl.hw.plan import EngineKind, engine_delay, network_cycles, plan_network
from cdsl.contract.ref import bitserial_mac as bs_ref
from cdsl.contract.ref.dense import dense
from cdsl.contract.ref.requant import quantize_multiplier, requantize
from cdsl.hw.requant import LATENCY as RQ_LATENCY, Requant
from tb.random_models import random_convnet, random_mlp
from tb.engine_cases import corner_images, pool_config, pool_reference, reference, weighted_config
from tb.mac_cases import acc_width_for, mac_cases, mac_steps
from cdsl.hw.prefix_ports import PrefixPorts
from cdsl.sim.harness import Harness
from cdsl.sim.runner import run_cocotb
from cdsl.contract.golden import at_precisions, golden

pytestmark = pytest.mark.slow


def run_case(tmp_path, name, dut, samples, expected, cycles, *, throttle_seed=None, throttle=False):
    harness = Harness(dut=dut, in_depth=max(len(s) for s in samples), out_depth=len(expected[0]),
                      throttle=throttle)
    text = verilog.convert(harness, name="harness_top", emit_src=False)
    case = tmp_path / f"{name}.json"
    case.write_text(json.dumps({"name": name, "samples": samples, "expected": expected, "cycles": cycles,
                                "throttle_seed": throttle_seed}))
    result = run_cocotb(verilog=text, toplevel="harness_top", test_module="tb.bulk",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_HW_CASE": str(case)},
                        test_dir=tmp_path / name)
    assert result.passed, result.summary() + "\n" + result.log_text(tail=40)
    print(f"{name}: {result.data}")
    return result.data


def network_case(intmodel, net, inputs, precision_sets):
    """Samples (prefix words + inputs), golden outputs, predicted cycles for every precision set."""
    samples, expected, cycles = [], [], []
    names = [e.name for e in net.plan.bitserial_engines()]
    for precisions in precision_sets:
        want = golden(at_precisions(intmodel, precisions), torch.tensor(inputs)).reshape(len(inputs), -1).tolist()
        for x, w in zip(inputs, want):
            samples.append([precisions.get(n, 0) for n in names] + [int(v) for v in x.reshape(-1)])
            expected.append(w)
            cycles.append(len(names) + network_cycles(net.plan, precisions=precisions))
    return samples, expected, cycles


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
    """BitSerialMac: every corner case of `mac_cases` at every runtime precision (0 = full)."""
    seed = 41
    rng = np.random.default_rng(seed)
    lanes, w_bits, k, rows = 4, 8, 10, 6
    layout = step_layout(lanes=lanes, a_width=8, a_signed=True, w_bits=w_bits, mask=True)
    samples, expected, cycles = [], [], []
    for _name, x, weight in mac_cases(rng, rows, k, 8, True, w_bits):
        words = [c.as_value().value for c in mac_steps(layout, x, weight, lanes,
                                                        masks=bs_ref.plane_masks(weight, w_bits))]
        for p in range(0, w_bits + 1):
            prec = p or w_bits
            samples.append([p] + words)
            expected.append(bs_ref.bitserial_dot(x, weight, w_bits=w_bits, precision=prec, lanes=lanes).tolist())
            cycles.append(1 + bs_ref.cycles(weight, w_bits=w_bits, precision=prec, lanes=lanes))
    dut = PrefixPorts(dut=BitSerialMac(lanes=lanes, a_width=8, a_signed=True, w_bits=w_bits,
                                       acc_width=acc_width_for(k, 8, True, w_bits)),
                      ports=["precision"], frame=rows * -(-k // lanes))
    run_case(tmp_path, "bitserial_mac", dut, samples, expected, cycles, throttle_seed=seed, throttle=True)


def test_requant_block(tmp_path):
    seed = 42
    rng = np.random.default_rng(seed)
    acc_width, channels = 24, 4
    pairs = [quantize_multiplier(float(r)) for r in rng.uniform(1e-5, 1e-3, size=channels)]
    pairs[-1] = (5, 0)
    mult, shift = [p[0] for p in pairs], [p[1] for p in pairs]
    dut = Requant(acc_width=acc_width, channels=channels, multipliers=mult, shifts=shift, qmin=-128, qmax=127,
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


def test_conv_engine_block(tmp_path):
    """One conv LayerEngine (frame buffer, window generator with padding and stride 2, lanes over input
    channels, per-channel requant), first output channel all -128 weights, second all +127."""
    seed = 46
    rng = np.random.default_rng(seed)
    cfg = weighted_config(rng, kind=EngineKind.CONV, in_shape=(3, 6, 6), co=4, kernel=3, stride=2, padding=1,
                          lanes=2, per_channel=True)
    weight = cfg.weight.copy()
    weight[0], weight[1] = -128, 127
    cfg = dataclasses.replace(cfg, weight=weight)
    xs = corner_images(rng, cfg.in_shape)
    samples = [x.reshape(-1).tolist() for x in xs]
    expected = [reference(cfg, x) for x in xs]
    run_case(tmp_path, "conv_engine", LayerEngine(config=cfg), samples, expected,
             [cfg.n_in + engine_delay(cfg)] * len(xs), throttle_seed=seed, throttle=True)


@pytest.mark.parametrize("kind", [EngineKind.MAXPOOL, EngineKind.AVGPOOL])
def test_pool_engine_block(tmp_path, kind):
    seed = 47
    rng = np.random.default_rng(seed)
    cfg = pool_config(kind=kind, in_shape=(3, 5, 5), kernel=3, stride=2)
    xs = corner_images(rng, cfg.in_shape)
    samples = [x.reshape(-1).tolist() for x in xs]
    expected = [pool_reference(cfg, x) for x in xs]
    run_case(tmp_path, kind.value, LayerEngine(config=cfg), samples, expected,
             [cfg.n_in + engine_delay(cfg)] * len(xs), throttle_seed=seed, throttle=True)


def test_mlp_network(tmp_path):
    seed = 43
    rng = np.random.default_rng(seed)
    im = random_mlp([16, 8, 4], seed=seed, w_bits=[8, 4], bitserial_lanes=[4, None], sparsity=0.3)
    fc1 = im.layers[0]
    w = fc1.weight.copy()
    w[0], w[1], w[2] = -128, 127, 0
    w[3] = rng.choice([0, 2, 32], size=w.shape[1])
    im = dataclasses.replace(im, layers=(dataclasses.replace(fc1, weight=w), *im.layers[1:]))
    net = Network(plan=plan_network(im, default_lanes=2))
    inputs = corner_images(rng, (16,), count=3)
    samples, expected, cycles = network_case(im, net, inputs, [{"fc1": p} for p in range(0, 9)])
    dut = PrefixPorts(dut=net, ports=[precision_port("fc1")], frame=16)
    data = run_case(tmp_path, "mlp", dut, samples, expected, cycles, throttle_seed=seed, throttle=True)
    assert data["cycles_per_s"] > 0


def test_convnet_bitserial_maxpool(tmp_path):
    seed = 44
    rng = np.random.default_rng(seed)
    im = random_convnet(seed=seed, conv_bitserial_lanes=1)
    net = Network(plan=plan_network(im, default_lanes=2))
    inputs = corner_images(rng, (1, 6, 6), count=2)
    samples, expected, cycles = network_case(im, net, inputs, [{"c1": p} for p in (0, 2, 5)])
    dut = PrefixPorts(dut=net, ports=[precision_port("c1")], frame=36)
    run_case(tmp_path, "convnet_max", dut, samples, expected, cycles, throttle_seed=seed, throttle=True)


def test_convnet_avgpool(tmp_path):
    seed = 45
    rng = np.random.default_rng(seed)
    im = random_convnet(seed=seed, pool=ir.PoolKind.AVG)
    net = Network(plan=plan_network(im, default_lanes=4))
    inputs = corner_images(rng, (1, 6, 6), count=3)
    samples, expected, cycles = network_case(im, net, inputs, [{}])
    run_case(tmp_path, "convnet_avg", net, samples, expected, cycles)
