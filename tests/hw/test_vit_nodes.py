"""The ViT engines as plan nodes (`cdsl.hw.kinds.layernorm`, `.attention`, `.gelu`) and the frame gate
(`cdsl.hw.frame_gate`), in Amaranth's simulator.

Values are checked element by element against plain-Python-integer statements of the kernels written
out here (I-LayerNorm with `math.isqrt`, Shiftmax from `tb.plain_vit`, i-GELU, the requantization),
never through the node or the helpers that build the device. Cycles: each node's `delay_tokens(n)`
must equal the measured cycles from the frame's last input transfer to its last output transfer,
with random gaps between the input words (output always ready), for n = 1, N and between; values
are also checked under back-pressure. Corner cases: a constant token (zero variance), all max, all
min, zeros, saturation, all-equal attention scores, extreme GELU inputs, one token. The chain test
runs norm1, attention, norm2 and GELU of a random encoder block on the reference's own intermediate
tensors (`cdsl.contract.ref.encoder`) and compares with the reference's.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator
from tb.frame_stream import drive_frames
from tb.plain_vit import shiftmax_python

from cdsl.contract.intmodel import Requant
from cdsl.contract.ref._vit import IntLinear, IntNorm
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.hw.frame_gate import FrameGate, release_latency
from cdsl.hw.kinds.attention import plan_attention
from cdsl.hw.kinds.gelu import plan_gelu
from cdsl.hw.kinds.layernorm import plan_layernorm
from cdsl.hw.plan import StreamType

# ------------------------------------------------------------------ plain-integer statements


def requant_plain(acc: int, m: int, s: int, qmin: int, qmax: int) -> int:
    v = (acc * m + (1 << (s - 1))) >> s if s else acc * m
    return min(max(v, qmin), qmax)


def layernorm_plain(row, gamma, beta, m, s, qmin, qmax):
    d = len(row)
    total = sum(row)
    c = [d * x - total for x in row]
    v = sum(ci * ci for ci in c) // d
    std = max(math.isqrt(v * 2 ** 20), 1)  # 10 extra bits of the root
    f = 2 ** 41 // std  # R = 31 + 10
    n = [(ci * f + 2 ** 22) >> 23 for ci in c]  # R - 8 fraction bits - 10
    return [requant_plain(ni * g + b, m, s, qmin, qmax) for ni, g, b in zip(n, gamma, beta)]


def gelu_plain(v: int, cut: int, c: int) -> int:
    mag = min(abs(v), cut)
    e = (1 if v > 0 else -1 if v < 0 else 0) * (c - (cut - mag) ** 2)
    return v * (e + c)


def attention_plain(tokens, dim, heads, x0, mults, shifts, qmin, qmax):
    """tokens: n rows of 3 D codes (q | k | v) -> n rows of D."""
    hd = dim // heads
    q = [t[:dim] for t in tokens]
    k = [t[dim:2 * dim] for t in tokens]
    v = [t[2 * dim:] for t in tokens]
    out = [[0] * dim for _ in tokens]
    for h in range(heads):
        lo = h * hd
        for i, qi in enumerate(q):
            scores = [sum(qi[lo + f] * kj[lo + f] for f in range(hd)) for kj in k]
            p = shiftmax_python(scores, x0)
            for f in range(hd):
                ch = lo + f
                acc = sum(pj * vj[ch] for pj, vj in zip(p, v))
                m, s = (mults[ch], shifts[ch]) if len(mults) > 1 else (mults[0], shifts[0])
                out[i][ch] = requant_plain(acc, m, s, qmin, qmax)
    return out


# ------------------------------------------------------------------ the bench


def run_frames(dut, frames, *, seed, out_words=None, in_stall=0.0, out_stall=0.0, back_to_back=False,
               max_cycles=200_000):
    """Offer each frame (a list of words, `last` on its final one) on `i`, collect `o` (`out_words[f]`
    results of frame f; default as many as its words), through `tests/tb/frame_stream.drive_frames`.

    One frame at a time (the next is offered once every result of the previous one is out), unless
    `back_to_back`. Returns per frame: (results, lasts, cycle of the last input transfer, cycle of
    the last output transfer, cycle of the first input transfer)."""
    recs = drive_frames(dut, frames, out_lens=[len(f) for f in frames] if out_words is None else out_words,
                        seed=seed, in_stall=in_stall, out_stall=out_stall, wait=not back_to_back,
                        max_cycles=max_cycles)
    return [(r.out, r.lasts, r.last_in, r.last_out, r.first_in) for r in recs]


def check_frames(node, frames, want, *, seed, label, delay=True, **kw):
    """Every frame's results equal `want` (rows of words), `last` only on the final word, and (with
    `delay`) the node's delay_tokens from the last input to the last output."""
    width = node.in_types[0].shape[1]
    results = run_frames(node.component(), frames, seed=seed, out_words=[len(w) for w in want], **kw)
    for f, ((out, lasts, t_in, t_out, _), exp) in enumerate(zip(results, want)):
        n = len(frames[f]) // width
        assert out == exp, f"{label}: frame {f} ({n} tokens) differs (seed={seed})"
        assert lasts == [0] * (len(exp) - 1) + [1], f"{label}: frame {f}: `last` misplaced (seed={seed})"
        if delay:
            assert t_out - t_in == node.delay_tokens({}, n), \
                f"{label}: frame {f} ({n} tokens): {t_out - t_in} cycles after the last input, " \
                f"model {node.delay_tokens({}, n)} (seed={seed})"
    return results


def flat(rows):
    return [v for r in rows for v in r]


# ------------------------------------------------------------------ frame gate


@pytest.mark.parametrize("words", [1, 2, 7])
def test_gate_holds_a_frame_until_its_last_word(words):
    seed = 40 + words
    rng = random.Random(seed)
    frames = [[rng.randint(-128, 127) for _ in range(rng.randint(1, words))] for _ in range(6)] + [[5] * words]
    gate = FrameGate(bits=8, signed=True, words=words)
    first_out = {}
    log = []  # (cycle, frame of the word sent)

    async def bench(ctx):
        fi, k, cycle, got = 0, 0, 0, []
        sent_last = {}
        while len(got) < sum(map(len, frames)):
            assert cycle < 20_000, f"timeout (seed={seed})"
            offer = fi < len(frames) and rng.random() < 0.5
            ctx.set(gate.i.valid, offer)
            if fi < len(frames):
                ctx.set(gate.i.payload, {"data": frames[fi][k], "last": int(k == len(frames[fi]) - 1)})
            ctx.set(gate.o.ready, 1)
            if ctx.get(gate.o.valid):
                payload = ctx.get(gate.o.payload)
                got.append((int(payload.data), int(payload.last)))
                log.append(cycle)
            if offer and ctx.get(gate.i.ready):
                k += 1
                if k == len(frames[fi]):
                    sent_last[fi] = cycle
                    fi, k = fi + 1, 0
            await ctx.tick()
            cycle += 1
        first_out["got"], first_out["sent_last"] = got, sent_last

    sim = Simulator(gate)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    got, sent_last = first_out["got"], first_out["sent_last"]
    assert got == [(v, int(j == len(f) - 1)) for f in frames for j, v in enumerate(f)], f"seed={seed}"
    start = 0
    for f, frame in enumerate(frames):
        first = log[start]  # the cycle the frame's first word left
        assert first > sent_last[f], f"frame {f} left before its last word was in (seed={seed})"
        if start == 0 or log[start - 1] < sent_last[f]:  # the gate held nothing else: released exactly then
            assert first == sent_last[f] + release_latency(len(frame)), f"frame {f} (seed={seed})"
        start += len(frame)


@pytest.mark.parametrize("words", [1, 2, 3, 5])
def test_empty_gate_takes_a_whole_frame_back_to_back(words):
    """An empty gate is ready for every word of a frame offered one per cycle (the cycle model takes a
    node's input words as sent): a gate of two words stalled the second for a cycle, so a cls_head of
    width 2 ran one cycle longer than the model (`cdsl verify`: cycles differ on every sample)."""
    gate = FrameGate(bits=8, signed=True, words=words)
    ready = []

    async def bench(ctx):
        ctx.set(gate.o.ready, 0)
        for k in range(words):
            ctx.set(gate.i.valid, 1)
            ctx.set(gate.i.payload, {"data": k, "last": int(k == words - 1)})
            ready.append(ctx.get(gate.i.ready))
            await ctx.tick()
        ctx.set(gate.i.valid, 0)

    sim = Simulator(gate)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert ready == [1] * words, ready


def test_gate_takes_the_next_frame_while_one_drains():
    """Two full frames back to back into a gate of one frame, the output throttled: the second frame
    flows in as the first drains (no deadlock), and both come out whole and in order."""
    seed = 11
    rng = random.Random(seed)
    frames = [[rng.randint(0, 255) for _ in range(12)] for _ in range(3)]
    gate = FrameGate(bits=8, signed=False, words=12)
    results = run_frames(gate, frames, seed=seed, out_stall=0.7, back_to_back=True)
    for (out, lasts, _, _, _), frame in zip(results, frames):
        assert out == frame and lasts == [0] * 11 + [1], f"seed={seed}"
    assert results[1][4] < results[0][3], "the second frame did not enter while the first drained"


# ------------------------------------------------------------------ layer norm


def random_norm(rng, dim, *, spread=300, out_real=2 ** -13):
    gamma = [rng.randint(-(1 << 15), (1 << 15) - 1) if rng.random() < 0.1 else rng.randint(-spread, spread)
             for _ in range(dim)]
    beta = [rng.randint(-(1 << 18), 1 << 18) for _ in range(dim)]
    m, s = quantize_multiplier(out_real)
    return IntNorm(np.array(gamma, dtype=np.int64), np.array(beta, dtype=np.int64),
                   Requant(np.array([m]), np.array([s]), -128, 127))


def norm_plain(norm: IntNorm, row):
    r = norm.requant
    return layernorm_plain(row, norm.gamma.tolist(), norm.beta.tolist(), int(r.multiplier[0]), int(r.shift[0]),
                           r.qmin, r.qmax)


def ln_tokens(rng, n, dim, bits=8):
    lo, hi = -(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1
    corner = [[rng.randint(lo, hi)] * dim, [hi] * dim, [lo] * dim, [0] * dim,
              [hi if j % 2 else lo for j in range(dim)], [rng.randint(-2, 2) for _ in range(dim)]]
    rows = [corner[i] if i < len(corner) and rng.random() < 0.7 else [rng.randint(lo, hi) for _ in range(dim)]
            for i in range(n)]
    rng.shuffle(rows)
    return rows


LN_CONFIGS = [(5, 4, 8), (17, 32, 8), (1, 32, 8), (3, 1, 8), (4, 7, 10)]  # (N, D, bits)


@pytest.mark.parametrize("n_max,dim,bits", LN_CONFIGS)
def test_layernorm_node_values_and_delay(n_max, dim, bits):
    seed = 100 + n_max * 7 + dim
    rng = random.Random(seed)
    norm = random_norm(rng, dim)
    t = StreamType(bits, True, (n_max, dim))
    node = plan_layernorm("e.norm1", "x", t, norm, out_type=StreamType(8, True, (n_max, dim)))
    counts = sorted({1, n_max, max(1, n_max // 2), max(1, n_max - 1)})
    cases = [ln_tokens(rng, n, dim, bits) for n in counts]
    want = [flat(norm_plain(norm, r) for r in rows) for rows in cases]
    frames = [flat(rows) for rows in cases]
    check_frames(node, frames, want, seed=seed, label="layer norm, gaps", in_stall=0.6)
    check_frames(node, frames, want, seed=seed + 1, label="layer norm, full rate")
    check_frames(node, frames, want, seed=seed + 2, label="layer norm, stalls", delay=False, in_stall=0.3,
                 out_stall=0.6)
    assert node.delay({}) == node.delay_tokens({}, n_max)


def test_layernorm_cases_reach_the_corners():
    rng = random.Random(3)
    norm = random_norm(rng, 32)
    rows = [[7] * 32, [127] * 32, [-127] * 32, [0] * 32] + ln_tokens(rng, 12, 32)
    outs = flat(norm_plain(norm, r) for r in rows)
    assert -128 in outs and 127 in outs  # saturation both ways
    # a constant token normalizes to 0: its output is requantize(beta) alone
    r = norm.requant
    assert norm_plain(norm, [7] * 32) == [requant_plain(int(b), int(r.multiplier[0]), int(r.shift[0]), -128, 127)
                                         for b in norm.beta]


def test_layernorm_node_back_to_back_interval():
    seed = 8
    rng = random.Random(seed)
    norm = random_norm(rng, 6)
    node = plan_layernorm("y.norm", "x", StreamType(8, True, (4, 6)), norm, out_type=StreamType(8, True, (4, 6)))
    cases = [ln_tokens(rng, 4, 6) for _ in range(3)]
    results = check_frames(node, [flat(c) for c in cases], [flat(norm_plain(norm, r) for r in c) for c in cases],
                           seed=seed, label="back to back", delay=False, back_to_back=True)
    starts = [r[4] for r in results]
    # the gate takes the next frame while the engine works; the engine starts a frame every `interval`
    assert starts[1] < results[0][3]
    ends = [r[3] for r in results]
    assert ends[2] - ends[1] == node.interval({}), f"{ends} vs interval {node.interval({})}"


def test_layernorm_node_describes_itself():
    norm = random_norm(random.Random(0), 32)
    node = plan_layernorm("e.norm1", "x", StreamType(8, True, (17, 32)), norm, out_type=StreamType(8, True, (17, 32)))
    fig = node.figures({})
    assert fig["token_cycles"] == 133 and fig["token_period"] == 131  # README: 133 cycles for D = 32, 8 bits
    assert sum(fig["phases"].values()) == fig["token_cycles"]
    assert node.delay({}) == 1 + 17 * 131 + 1
    assert node.memory_bits() == 17 * 32 * 9 + 32 * 8  # the gate (data and `last`) + one token
    with pytest.raises(ValueError, match="token stream"):
        plan_layernorm("e.norm1", "x", StreamType(8, True, (32,)), norm, out_type=StreamType(8, True, (32,)))
    with pytest.raises(ValueError, match="signed codes"):
        plan_layernorm("e.norm1", "x", StreamType(8, False, (17, 32)), norm, out_type=StreamType(8, True, (17, 32)))
    with pytest.raises(ValueError, match="does not fit"):
        plan_layernorm("e.norm1", "x", StreamType(8, True, (17, 32)), norm, out_type=StreamType(6, True, (17, 32)))


# ------------------------------------------------------------------ attention


def random_attn(rng, dim, per_channel, real=2 ** -7):
    ms = [quantize_multiplier(rng.uniform(real / 4, real * 4)) for _ in range(dim if per_channel else 1)]
    return Requant(np.array([m for m, _ in ms]), np.array([s for _, s in ms]), -128, 127)


def attn_plain(node, rows):
    a = node.attn
    return attention_plain(rows, node.dim, node.heads, node.x0, a.multiplier.tolist(), a.shift.tolist(), a.qmin,
                           a.qmax)


def attn_cases(rng, n_list, dim):
    cases = []
    for i, n in enumerate(n_list):
        rows = [[rng.randint(-128, 127) for _ in range(3 * dim)] for _ in range(n)]
        if i == 1:  # identical keys: every score of a row equal
            for r in rows:
                r[dim:2 * dim] = rows[0][dim:2 * dim]
        if i == 2:
            rows = [[127] * (3 * dim) for _ in range(n)]
        if i == 3:
            rows = [[-128] * (3 * dim) for _ in range(n)]
        cases.append(rows)
    return cases


ATTN_CONFIGS = [  # (N, D, H, x0, per channel, lanes)
    (5, 8, 2, -20, True, 1), (4, 6, 3, -3, False, 1), (6, 4, 1, -150, False, 1),
    (5, 8, 2, -20, True, 2), (4, 6, 3, -3, False, 2), (6, 4, 1, -150, True, 4),
]


@pytest.mark.parametrize("n_max,dim,heads,x0,per_channel,lanes", ATTN_CONFIGS)
def test_attention_node_values_and_delay(n_max, dim, heads, x0, per_channel, lanes):
    seed = 300 + n_max * 11 + dim + heads + 1000 * lanes
    rng = random.Random(seed)
    node = plan_attention("e.attn", "e.qkv", StreamType(8, True, (n_max, 3 * dim)), heads=heads, x0=x0,
                          attn=random_attn(rng, dim, per_channel), out_type=StreamType(8, True, (n_max, dim)),
                          lanes=lanes)
    cases = attn_cases(rng, [1, n_max, n_max, 2, max(1, n_max // 2), n_max], dim)
    want = [flat(attn_plain(node, rows)) for rows in cases]
    frames = [flat(rows) for rows in cases]
    check_frames(node, frames, want, seed=seed, label="attention, gaps", in_stall=0.6)
    check_frames(node, frames[:2], want[:2], seed=seed + 2, label="attention, stalls", delay=False, in_stall=0.3,
                 out_stall=0.6)


def test_attention_cases_reach_the_corners():
    rng = random.Random(0)
    node = plan_attention("e.attn", "e.qkv", StreamType(8, True, (5, 24)), heads=2, x0=-20,
                          attn=random_attn(rng, 8, True), out_type=StreamType(8, True, (5, 8)))
    cases = attn_cases(rng, [1, 5, 5, 2], 8)
    same = cases[1]
    for h in range(2):
        for qi in same:
            scores = {sum(qi[h * 4 + f] * kj[8 + h * 4 + f] for f in range(4)) for kj in same}
            assert len(scores) == 1  # all-equal scores in every row
    outs = flat(flat(attn_plain(node, c)) for c in cases)
    assert 127 in outs and -128 in outs


@pytest.mark.parametrize("lanes", [1, 2])
def test_attention_node_back_to_back_interval(lanes):
    seed = 5
    rng = random.Random(seed)
    node = plan_attention("e.attn", "e.qkv", StreamType(8, True, (3, 12)), heads=2, x0=-20,
                          attn=random_attn(rng, 4, False), out_type=StreamType(8, True, (3, 4)), lanes=lanes)
    cases = attn_cases(rng, [3, 3, 3], 4)
    results = check_frames(node, [flat(c) for c in cases], [flat(attn_plain(node, c)) for c in cases], seed=seed,
                           label="back to back", delay=False, back_to_back=True)
    starts = [r[4] for r in results]
    assert starts[2] - starts[1] == node.interval({}), f"{starts} vs interval {node.interval({})}"
    assert not node.interval_exact


def test_attention_node_describes_itself():
    node = plan_attention("e.attn", "e.qkv", StreamType(8, True, (17, 96)), heads=2, x0=-20,
                          attn=random_attn(random.Random(0), 32, False), out_type=StreamType(8, True, (17, 32)))
    fig = node.figures({})
    assert sum(fig["phases"].values()) == node.timing.cycles(17)
    assert node.delay({}) == node.timing.cycles(17) - 3 * 17 * 32
    assert node.memory_bits() > 3 * 17 * 32 * 8
    with pytest.raises(ValueError, match="3 D words"):
        plan_attention("e.attn", "e.qkv", StreamType(8, True, (17, 95)), heads=2, x0=-20,
                       attn=random_attn(random.Random(0), 32, False), out_type=StreamType(8, True, (17, 32)))
    with pytest.raises(ValueError, match="heads must divide"):
        plan_attention("e.attn", "e.qkv", StreamType(8, True, (17, 96)), heads=3, x0=-20,
                       attn=random_attn(random.Random(0), 32, False), out_type=StreamType(8, True, (17, 32)))
    with pytest.raises(ValueError, match="lanes must divide"):
        plan_attention("e.attn", "e.qkv", StreamType(8, True, (17, 96)), heads=2, x0=-20,
                       attn=random_attn(random.Random(0), 32, False), out_type=StreamType(8, True, (17, 32)), lanes=3)
    # folding: lanes are the head's divisors; more lanes, fewer cycles (the score and A.V phases shrink)
    assert node.lane_choices() == (1, 2, 4, 8, 16)
    fast = node.with_folding(4, 1)
    assert fast.lanes == 4 and sum(fast.figures({})["phases"].values()) == fast.timing.cycles(17)
    assert fast.delay({}) < node.delay({}) and fast.interval({}) < node.interval({})


# ------------------------------------------------------------------ GELU


def random_gelu(rng, scale=0.05, out_scale=0.02):
    cut, c = round(1.769 / (scale / math.sqrt(2))), round(1 / (0.2888 * (scale / math.sqrt(2)) ** 2))
    m, s = quantize_multiplier(scale / (2.0 * c) / out_scale)
    return cut, c, Requant(np.array([m]), np.array([s]), -128, 127)


@pytest.mark.parametrize("n_max,width,scale", [(5, 6, 0.05), (17, 64, 0.2), (1, 3, 0.005)])
def test_gelu_node_values_and_delay(n_max, width, scale):
    seed = 700 + n_max + width
    rng = random.Random(seed)
    cut, c, rq = random_gelu(rng, scale)
    node = plan_gelu("e.gelu", "e.fc1", StreamType(8, True, (n_max, width)), cut=cut, c=c, requant=rq,
                     out_type=StreamType(8, True, (n_max, width)))
    counts = sorted({1, n_max, max(1, n_max // 2)})
    extremes = [-128, 127, 0, -1, 1, cut, -cut, min(cut + 1, 127), max(-cut - 1, -128)]
    cases = [[extremes[j % len(extremes)] if rng.random() < 0.3 else rng.randint(-128, 127) for j in range(n * width)]
             for n in counts]
    m, s = int(rq.multiplier[0]), int(rq.shift[0])
    want = [[requant_plain(gelu_plain(v, cut, c), m, s, -128, 127) for v in f] for f in cases]
    check_frames(node, cases, want, seed=seed, label="gelu, gaps", in_stall=0.6)
    check_frames(node, cases, want, seed=seed + 1, label="gelu, stalls", delay=False, in_stall=0.3, out_stall=0.6)
    assert node.delay({}) == 2 and node.interval({}) == n_max * width


# ------------------------------------------------------------------ a chain of the reference's tensors


def _calibrated_linear(rng, x: torch.Tensor, k: int, o: int, *, target=40.0) -> IntLinear:
    """A random IntLinear k -> o whose outputs on `x` spread over the int8 codes (std about `target`)."""
    w = torch.tensor([[rng.randint(-127, 127) for _ in range(k)] for _ in range(o)])
    b = torch.tensor([rng.randint(-2000, 2000) for _ in range(o)])
    acc = x.reshape(-1, k) @ w.T + b
    m, s = quantize_multiplier(target / max(float(acc.double().std()), 1.0))
    return IntLinear(w.numpy(), b.numpy(), Requant(np.array([m]), np.array([s]), -128, 127))


def test_chain_on_the_reference_tensors():
    """norm1 -> (qkv by the reference) -> attention -> (proj, add by the reference) -> norm2 -> (fc1) -> GELU:
    each node fed the reference's own input tensor gives the reference's output tensor, and the
    tensors used are the block's (re-running the block from them gives `block(p, x)`)."""
    from cdsl.contract.ref.add import AddPayload, add as add_ref
    from cdsl.contract.ref.encoder import EncoderPayload, block
    from cdsl.contract.ref.int_gelu import int_gelu
    from cdsl.contract.ref.int_softmax import shiftmax

    seed = 21
    rng = random.Random(seed)
    n_max, d, heads, mlp = 9, 16, 2, 24
    x = torch.tensor([[rng.randint(-128, 127) for _ in range(d)] for _ in range(n_max)])
    norm1, norm2 = random_norm(rng, d, out_real=2 ** -11), random_norm(rng, d, out_real=2 ** -11)
    qkv = _calibrated_linear(rng, norm1(x), d, 3 * d)
    h = qkv(norm1(x))
    q, k = h[:, :d], h[:, d:2 * d]
    x0 = -int(float((q[:, :d // heads] @ k[:, :d // heads].T).double().std()) / 2) - 1
    attn = Requant(np.array([quantize_multiplier(2 ** -8)[0]]), np.array([quantize_multiplier(2 ** -8)[1]]), -128, 127)
    proj = _calibrated_linear(rng, x, d, d)
    add = AddPayload(mult_a=3, mult_b=2, shift=2, qmin=-128, qmax=127)
    fc1 = _calibrated_linear(rng, x, d, mlp)
    cut, c, gelu_rq = random_gelu(rng)
    fc2 = _calibrated_linear(rng, torch.zeros(1, mlp, dtype=torch.int64) + 3, mlp, d)
    p = EncoderPayload(heads=heads, norm1=norm1, qkv=qkv, softmax_x0=x0, attn=attn, proj=proj, add1=add, norm2=norm2,
                       fc1=fc1, gelu_cut=cut, gelu_c=c, gelu=gelu_rq, fc2=fc2, add2=add)

    t = lambda shape: StreamType(8, True, shape)  # noqa: E731
    n1 = plan_layernorm("e.norm1", "x", t((n_max, d)), norm1, out_type=t((n_max, d)))
    at = plan_attention("e.attn", "e.qkv", t((n_max, 3 * d)), heads=heads, x0=x0, attn=attn, out_type=t((n_max, d)),
                        lanes=4)
    n2 = plan_layernorm("e.norm2", "e.add1", t((n_max, d)), norm2, out_type=t((n_max, d)))
    ge = plan_gelu("e.gelu", "e.fc1", t((n_max, mlp)), cut=cut, c=c, requant=gelu_rq, out_type=t((n_max, mlp)))
    for n in (n_max, 1, 4):  # the whole frame, one token, a pruned frame
        xs = x[:n].unsqueeze(0)
        h1 = p.norm1(xs)
        hq = p.qkv(h1)
        hd = d // heads
        qkv5 = hq.reshape(1, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
        att = shiftmax(qkv5[0] @ qkv5[1].transpose(-2, -1), x0)
        o = p.attn.apply((att @ qkv5[2]).transpose(1, 2).reshape(1, n, d), channel_dim=-1)
        x1 = add_ref(xs, p.proj(o), mult_a=3, mult_b=2, shift=2, qmin=-128, qmax=127)
        h2 = p.norm2(x1)
        f1 = p.fc1(h2)
        g = p.gelu.apply(int_gelu(f1, cut, c), channel_dim=-1)
        y = add_ref(x1, p.fc2(g), mult_a=3, mult_b=2, shift=2, qmin=-128, qmax=127)
        assert torch.equal(y, block(p, xs)), "the chain's tensors are not the block's"
        assert len(set(o.reshape(-1).tolist())) > 8 and len(set(h1.reshape(-1).tolist())) > 8  # not degenerate
        for node, inp, out in ((n1, xs, h1), (at, hq, o), (n2, x1, h2), (ge, f1, g)):
            results = run_frames(node.component(), [inp.reshape(-1).tolist()], seed=seed + n, in_stall=0.3,
                                 out_words=[out.numel()])
            got, _, t_in, t_out, _ = results[0]
            assert got == out.reshape(-1).tolist(), f"{node.name} ({n} tokens) differs from the reference (seed={seed})"
            assert t_out - t_in == node.delay_tokens({}, n), f"{node.name} ({n} tokens)"


# ------------------------------------------------------------------ in a network plan


def test_nodes_in_a_network_plan():
    """attention -> layer norm -> GELU as a NetworkPlan: it survives the manifest's codec, the network top
    wires it unchanged, and the measured cycles per inference equal `network_cycles`. (Names without
    dots: the network top makes ports and probes `p_<engine>` of engine names.)"""
    from cdsl.hw.network import Network
    from cdsl.hw.plan import NetworkPlan, PlanInput, PlanOutput, cycle_report, network_cycles
    from tb.pysim import run_graph

    seed = 61
    rng = random.Random(seed)
    n, d, heads = 4, 8, 2
    t = lambda shape: StreamType(8, True, shape)  # noqa: E731
    attn = plan_attention("attn", "x", t((n, 3 * d)), heads=heads, x0=-20, attn=random_attn(rng, d, False),
                          out_type=t((n, d)), lanes=2, lanes_fixed=True)
    norm = random_norm(rng, d)
    ln = plan_layernorm("norm2", "attn", t((n, d)), norm, out_type=t((n, d)))
    cut, c, rq = random_gelu(rng)
    ge = plan_gelu("gelu", "norm2", t((n, d)), cut=cut, c=c, requant=rq, out_type=t((n, d)))
    plan = NetworkPlan("chain", (PlanInput("x", t((n, 3 * d))),), (PlanOutput("gelu", "gelu", t((n, d))),),
                       (attn, ln, ge), (), ())
    obj, arrays = plan.to_json()
    back = NetworkPlan.from_json(obj, arrays)
    assert back == plan and [type(a) for a in back.nodes] == [type(a) for a in plan.nodes]
    assert back.node("attn").lanes == 2 and back.node("attn").lanes_fixed
    report = cycle_report(back)
    assert report["memory_bits"]["engines"] == attn.memory_bits() + ln.memory_bits()
    assert not report["initiation_interval_exact"]

    rows = attn_cases(rng, [n], d)[0]
    a = attn_plain(attn, rows)
    h = [norm_plain(norm, r) for r in a]
    m, s = int(rq.multiplier[0]), int(rq.shift[0])
    want = [requant_plain(gelu_plain(v, cut, c), m, s, -128, 127) for v in flat(h)]
    got, cycles = run_graph(Network(plan=back), {"i_x": flat(rows)}, {"o_gelu": n * d}, seed=seed)
    assert got["o_gelu"] == want, f"seed={seed}"
    assert cycles == network_cycles(back), f"{cycles} cycles, model {network_cycles(back)}"


# ------------------------------------------------------------------ Verilator


@pytest.mark.slow
def test_layernorm_node_in_verilator(tmp_path):
    """The gated layer norm of the example's shape (17 tokens of 32) through the bulk-load harness in
    Verilator: frames of 1, 6 and 17 tokens equal the plain statement, and each frame's cycles (first
    word offered to last result, inclusive) are its words plus `delay_tokens`; again under the
    harness' back-pressure (values)."""
    from tb.harness_case import run_case

    seed = 17
    rng = random.Random(seed)
    norm = random_norm(rng, 32)
    node = plan_layernorm("e.norm1", "x", StreamType(8, True, (17, 32)), norm, out_type=StreamType(8, True, (17, 32)))
    cases = [ln_tokens(rng, n, 32) for n in (1, 6, 17, 17)]
    samples = [flat(c) for c in cases]
    expected = [flat(norm_plain(norm, r) for r in c) for c in cases]
    cycles = [len(s) + node.delay_tokens({}, len(c)) for s, c in zip(samples, cases)]
    data = run_case(tmp_path, "layernorm_node", node.component(), samples, expected, cycles, throttle_seed=seed,
                    throttle=True)
    assert data["cycles"] == cycles


@pytest.mark.slow
def test_attention_node_in_verilator(tmp_path):
    """Attention of the example's shape (17 tokens of 32, 2 heads) with 4 lanes through the bulk-load
    harness in Verilator: frames of 1, 9 and 17 tokens equal the plain statement, cycles = words +
    `delay_tokens`; again under back-pressure (values)."""
    from tb.harness_case import run_case

    seed = 23
    rng = random.Random(seed)
    node = plan_attention("e.attn", "e.qkv", StreamType(8, True, (17, 96)), heads=2, x0=-300,
                          attn=random_attn(rng, 32, True), out_type=StreamType(8, True, (17, 32)), lanes=4)
    cases = attn_cases(rng, [1, 17, 9, 17], 32)
    samples = [flat(c) for c in cases]
    expected = [flat(attn_plain(node, c)) for c in cases]
    cycles = [len(s) + node.delay_tokens({}, len(c)) for s, c in zip(samples, cases)]
    data = run_case(tmp_path, "attention_node", node.component(), samples, expected, cycles, throttle_seed=seed,
                    throttle=True)
    assert data["cycles"] == cycles


def test_engines_pass_verilator_lint_wall(tmp_path):
    """`verilator --lint-only -Wall` on each node's Verilog: no error, every warning category documented
    as harmless (`cdsl gen --lint` holds a network of them to the same rule)."""
    from cdsl.hw.verilog_text import verilog_text
    from cdsl.sim.lint import HARMLESS, lint

    rng = random.Random(2)
    t = lambda shape: StreamType(8, True, shape)  # noqa: E731
    cut, c, rq = random_gelu(rng)
    nodes = {
        "attention": plan_attention("a", "q", t((5, 24)), heads=2, x0=-300, attn=random_attn(rng, 8, True),
                                    out_type=t((5, 8)), lanes=2),
        # lanes = hd: one lane group, a zero-width group counter (Yosys writes `wire [-1:0] g`: ASCRANGE)
        "attention-lanes-hd": plan_attention("a", "q", t((5, 24)), heads=2, x0=-300, attn=random_attn(rng, 8, True),
                                             out_type=t((5, 8)), lanes=4),
        "layernorm": plan_layernorm("n", "x", t((5, 8)), random_norm(rng, 8), out_type=t((5, 8))),
        "gelu": plan_gelu("g", "f", t((5, 8)), cut=cut, c=c, requant=rq, out_type=t((5, 8))),
    }
    for name, node in nodes.items():
        src = tmp_path / f"{name}.sv"
        src.write_text(verilog_text(node.component(), name="network"))
        res = lint(src)
        assert res.errors == 0 and set(res.counts) <= set(HARMLESS), f"{name}: {res.counts}\n{res.output[-2000:]}"
        if name == "attention-lanes-hd":  # `cdsl gen --lint` called it undocumented (exit 1) on a folded ViT
            assert "ASCRANGE" in res.counts, res.summary()
