"""Token-wise linear engine (`cdsl.hw.token_linear.TokenLinear`, node `TokenLinearNode`) against plain
math written here (numpy-free Python integers: the dot product per token, the bias or per-token
table, and the requantization formula `clamp((acc * M + 2**(S-1)) >> S, qmin, qmax)`), element by
element, in Amaranth's simulator: frames of 1 to N tokens, K not a multiple of the lanes, lanes 1, 3
and 8, bit-parallel and bit-serial MAC units, per-channel and per-tensor requantization, a per-token
table, signed and unsigned inputs, corner frames (all max, all min, zeros, saturation on both
sides); random input gaps (the measured last-input-to-last-output delay equals `delay_tokens`) and
random output back-pressure (values still right), back to back."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tb.frame_stream import run_frames

from cdsl.contract.intmodel import Requant
from cdsl.contract.ref._vit import IntLinear
from cdsl.hw.kinds.token_linear import bitserial_unit, plan_token_linear
from cdsl.hw.plan import StreamType

# (N, K, O, lanes, unit, per_channel, table, in_bits, in_signed, w_bits)
CONFIGS = [
    (5, 7, 6, 3, "parallel", True, False, 8, True, 6),
    (4, 10, 5, 8, "bitserial", False, True, 8, True, 5),
    (3, 4, 9, 1, "bitserial", True, False, 8, True, 4),
    (1, 6, 4, 3, "parallel", False, False, 8, True, 8),
    (6, 9, 4, 8, "parallel", False, True, 4, False, 7),
    (4, 5, 7, 8, "parallel", True, True, 8, True, 6),  # lanes > K: one step per output, an output every cycle
]


def requant_plain(acc: int, m: int, s: int, qmin: int, qmax: int) -> int:
    v = (acc * m + ((1 << (s - 1)) if s else 0)) >> s
    return min(max(v, qmin), qmax)


def expected(frame, n, k, weight, bias_rows, mults, shifts, qmin, qmax):
    out = []
    for t in range(n):
        x = frame[t * k:(t + 1) * k]
        for o, wrow in enumerate(weight):
            acc = sum(int(a) * int(w) for a, w in zip(x, wrow)) + int(bias_rows[t][o])
            c = o if len(mults) > 1 else 0
            out.append(requant_plain(acc, mults[c], shifts[c], qmin, qmax))
    return out


def make(seed, n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits):
    rng = np.random.default_rng(seed)
    lim = 1 << (w_bits - 1)
    weight = rng.integers(-lim, lim, (o, k))
    if unit == "bitserial":
        low = 2 if w_bits > 3 else 1
        weight[0] = (weight[0] >> low) << low  # a row with empty low planes (skipped)
        weight[-1] = 0  # a row without set planes
    weight[0, 0] = -lim  # the most negative weight: the MSB plane is subtracted
    bias = rng.integers(-2000, 2000, o)
    tab = rng.integers(-3000, 3000, (n, o)) if table else None
    x_hi = (1 << (in_bits - 1)) - 1 if in_signed else (1 << in_bits) - 1
    scale = 400.0 / (x_hi * lim * k)  # random tokens map inside the 8-bit range; aligned ones saturate
    reals = [scale * float(rng.uniform(1.5, 4.0)) for _ in range(o if per_channel else 1)]
    from cdsl.contract.ref.requant import quantize_multiplier

    ms = [quantize_multiplier(r) for r in reals]
    rq = Requant(np.array([m for m, _ in ms]), np.array([s for _, s in ms]), -128, 127)
    lin = IntLinear(weight, bias, rq)
    in_type = StreamType(in_bits, in_signed, (n, k))
    out_type = StreamType(8, True, (n, o) if n > 1 else (o,))
    node = plan_token_linear("lin", "x", in_type, lin, out_type=out_type, lanes=lanes,
                             unit=bitserial_unit(lin) if unit == "bitserial" else None, table=tab)
    assert node.w_bits <= w_bits
    return node, lin, tab


def frames_for(rng, node, count):
    n_max, k = node.tokens, node.k
    lo, hi = node.in_types[0].range
    frames = [[hi] * (n_max * k), [lo] * (n_max * k), [0] * k]  # all max, all min, zeros (one token)
    w0 = node.weight[0]
    up = [hi if w >= 0 else lo for w in w0]  # channel 0's largest and smallest dot products: saturation
    down = [lo if w >= 0 else hi for w in w0]
    frames.append((up + down) * (n_max // 2) + up * (n_max % 2))
    sizes = [1, n_max] + [rng.randint(1, n_max) for _ in range(count)]
    for n in sizes:
        frames.append([rng.randint(lo, hi) for _ in range(n * k)])
    return frames


def check(node, lin, tab, frames, outs, lasts, seed):
    mults, shifts = node.multipliers, node.shifts
    saturated = set()
    for f, frame in enumerate(frames):
        n = len(frame) // node.k
        rows = tab if tab is not None else [lin.bias] * n
        want = expected(frame, n, node.k, lin.weight, rows, mults, shifts, node.qmin, node.qmax)
        assert outs[f] == want, f"frame {f} ({n} tokens) differs (seed={seed})"
        assert lasts[f] == [0] * (len(want) - 1) + [1], f"frame {f}: `last` misplaced (seed={seed})"
        saturated.update(v for v in want if v in (node.qmin, node.qmax))
    return saturated


@pytest.mark.parametrize("n,k,o,lanes,unit,per_channel,table,in_bits,in_signed,w_bits", CONFIGS)
def test_values_and_delay_with_input_gaps(n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits):
    seed = 1000 + 97 * n + 13 * k + o + lanes
    node, lin, tab = make(seed, n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits)
    rng = random.Random(seed)
    frames = frames_for(rng, node, 3)
    dut = node.component()
    out_lens = [len(fr) // k * o for fr in frames]
    outs, lasts, delays = run_frames(dut, frames, out_lens=out_lens, seed=seed, in_stall=0.4, wait=True)
    saturated = check(node, lin, tab, frames, outs, lasts, seed)
    assert {node.qmin, node.qmax} <= saturated, f"the corner frames should saturate both ways (seed={seed})"
    for f, fr in enumerate(frames):
        tokens = len(fr) // k
        assert delays[f] == node.delay_tokens({}, tokens), \
            f"frame {f} ({tokens} tokens): delay {delays[f]}, model {node.delay_tokens({}, tokens)} (seed={seed})"
    assert node.delay({}) == node.delay_tokens({}, n)


@pytest.mark.parametrize("n,k,o,lanes,unit,per_channel,table,in_bits,in_signed,w_bits", CONFIGS[:3] + CONFIGS[5:])
def test_values_under_back_pressure_back_to_back(n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits):
    seed = 2000 + 97 * n + 13 * k + o + lanes
    node, lin, tab = make(seed, n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits)
    rng = random.Random(seed)
    frames = frames_for(rng, node, 3)
    out_lens = [len(fr) // k * o for fr in frames]
    outs, lasts, _ = run_frames(node.component(), frames, out_lens=out_lens, seed=seed, in_stall=0.3,
                                out_stall=0.5, wait=False)
    check(node, lin, tab, frames, outs, lasts, seed)


def test_cycle_model_and_figures():
    node, lin, _ = make(5, 5, 7, 6, 3, "parallel", True, False, 8, True, 6)
    # 6 outputs x ceil(7 / 3) steps per token; START + FETCH + MAC latency + requantization = 5
    assert node.token_cycles() == 18
    assert [node.delay_tokens({}, t) for t in (1, 5)] == [18 + 5, 90 + 5]
    assert node.memory_bits() == 5 * 3 * 3 * 8
    fig = node.figures({})
    assert fig["weight_rom_bits"] == 6 * 3 * 3 * node.w_bits and fig["token_buffer_bits"] == 360
    assert node.pe_problem(2) is not None and node.foldings()[0] == (1, 1)
    with pytest.raises(ValueError, match="tokens must be in 1..5"):
        node.delay_tokens({}, 6)
    serial, _, _ = make(5, 3, 4, 9, 1, "bitserial", True, False, 8, True, 4)
    masks = serial.unit.masks
    # per output channel: ceil(4 / 1) steps times max(1, its set planes)
    assert serial.token_cycles() == sum(4 * max(1, bin(mk).count("1")) for mk in masks)


def test_plan_refuses_mismatched_shapes():
    node, lin, _ = make(5, 5, 7, 6, 3, "parallel", True, False, 8, True, 6)
    with pytest.raises(ValueError, match="does not take tokens of 8"):
        plan_token_linear("l", "x", StreamType(8, True, (5, 8)), lin, out_type=StreamType(8, True, (5, 6)), lanes=2)
    with pytest.raises(ValueError, match="is not 5 tokens of 6"):
        plan_token_linear("l", "x", StreamType(8, True, (5, 7)), lin, out_type=StreamType(8, True, (5, 5)), lanes=2)
    with pytest.raises(ValueError, match="table"):
        plan_token_linear("l", "x", StreamType(8, True, (5, 7)), lin, out_type=StreamType(8, True, (5, 6)), lanes=2,
                          table=np.zeros((4, 6), dtype=np.int64))


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[1], CONFIGS[5]])
def test_interval_is_a_bound_back_to_back(config):
    """Full frames back to back, input always valid, output always ready: the engine finishes a frame at
    most every `interval` cycles (a bound: `interval_exact` is False)."""
    n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits = config
    seed = 3000 + n + k
    node, lin, tab = make(seed, n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits)
    rng = random.Random(seed)
    lo, hi = node.in_types[0].range
    frames = [[rng.randint(lo, hi) for _ in range(n * k)] for _ in range(4)]
    ends = []
    outs, lasts, _ = run_frames(node.component(), frames, out_lens=[n * o] * 4, seed=seed, wait=False, ends=ends)
    check(node, lin, tab, frames, outs, lasts, seed)
    gaps = [b - a for a, b in zip(ends, ends[1:])]
    assert not node.interval_exact and max(gaps) <= node.interval({}), f"{gaps} vs {node.interval({})} (seed={seed})"


@pytest.mark.slow
def test_frames_of_every_length_in_verilator(tmp_path):
    """Verilator, bulk-load harness: frames of 1..N tokens (bit-serial, per-token table), clean and
    under back-pressure, equal to plain math; each clean frame's cycles (first input offered to last
    output, input offered every cycle) equal n K + delay_tokens(n)."""
    import json

    from cdsl.hw.verilog_text import verilog_text
    from cdsl.sim.harness import Harness
    from cdsl.sim.runner import run_cocotb

    n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits = CONFIGS[1]
    seed = 4000
    node, lin, tab = make(seed, n, k, o, lanes, unit, per_channel, table, in_bits, in_signed, w_bits)
    frames = frames_for(random.Random(seed), node, 3) + [[7] * (t * k) for t in range(1, n + 1)]
    want = [expected(fr, len(fr) // k, k, lin.weight, tab, node.multipliers, node.shifts, node.qmin, node.qmax)
            for fr in frames]
    harness = Harness(dut=node.component(), depths={"i": n * k, "o": n * o}, throttle=True)
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"samples": frames, "expected": want}))
    result = run_cocotb(verilog=verilog_text(harness, name="token_linear_top"), toplevel="token_linear_top",
                        test_module="tb.frames_bench", test_dir=tmp_path / "sim",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_FRAMES_CASE": str(case)})
    assert result.passed, result.summary() + "\n" + result.log_text(tail=30)
    tokens = [len(fr) // k for fr in frames]
    assert result.data["cycles"] == [t * k + node.delay_tokens({}, t) for t in tokens], f"seed={seed}"


def test_generated_verilog_is_deterministic():
    from cdsl.hw.verilog_text import verilog_text

    node, _, _ = make(6, *CONFIGS[1])
    texts = {verilog_text(node.component(), name="tl") for _ in range(2)}
    assert len(texts) == 1


def test_example_vit_figures():
    """The figures README gives for `examples/vit.cdsl`'s shapes (17 tokens of 32, MLP 64, 10 classes,
    8-bit weights, 8 lanes, bit-parallel): cycles per token, delays, token buffer and weight ROM bits."""
    rng = np.random.default_rng(0)
    rq = Requant(np.array([1 << 20]), np.array([30]), -128, 127)
    want = {  # name: (K, O, N) -> (cycles per token, delay at N, delay at 12 tokens, buffer bits, weight bits)
        "t": ((4, 32, 17), (32, 549, 389, 544, 1024)),
        "qkv": ((32, 96, 17), (384, 6533, 4613, 4352, 24576)),
        "proj": ((32, 32, 17), (128, 2181, 1541, 4352, 8192)),
        "fc1": ((32, 64, 17), (256, 4357, 3077, 4352, 16384)),
        "fc2": ((64, 32, 17), (256, 4357, 3077, 8704, 16384)),
        "head": ((32, 10, 1), (40, 45, 45, 256, 2560)),
    }
    for name, ((k, o, n), figures) in want.items():
        weight = rng.integers(-128, 128, (o, k))
        weight[0, 0] = -128
        lin = IntLinear(weight, rng.integers(-1000, 1000, o), rq)
        node = plan_token_linear(name, "x", StreamType(8, True, (n, k)), lin, lanes=8,
                                 out_type=StreamType(8, True, (n, o) if n > 1 else (o,)))
        got = (node.token_cycles(), node.delay({}), node.delay_tokens({}, min(12, n)), node.memory_bits(),
               node.figures({})["weight_rom_bits"])
        print(name, got)
        assert got == figures, name
