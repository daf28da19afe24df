"""RequantUnit in amaranth.sim against cdsl.contract.ref.requant.requantize."""

import numpy as np
import pytest

from tb.pysim import run_streams
from cdsl.contract.ref.requant import quantize_multiplier, requantize
from cdsl.hw.requant_unit import LATENCY, RequantUnit


@pytest.mark.parametrize("acc_width,channels,out_bits,out_signed,relu", [
    (20, 1, 8, True, False), (24, 4, 8, False, False), (16, 3, 4, True, False), (22, 2, 8, True, True),
])
def test_requant_matches_contract(acc_width, channels, out_bits, out_signed, relu):
    seed = acc_width * 10 + channels
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    pairs = [quantize_multiplier(float(r)) for r in rng.uniform(1e-4, 2e-2, size=channels)]
    if channels > 1:
        pairs[-1] = (3, 0)  # S == 0: no rounding term
    mult = [p[0] for p in pairs]
    shift = [p[1] for p in pairs]
    qmin = 0 if (relu or not out_signed) else -(1 << (out_bits - 1))
    qmax = (1 << (out_bits - 1)) - 1 if out_signed else (1 << out_bits) - 1
    accs = [lo, hi, 0, -1, 1, lo + 1, hi - 1] + rng.integers(lo, hi + 1, size=40).tolist()
    # exact rounding ties: acc * M = (2k+1) * 2**(S-1)
    chans = [i % channels for i in range(len(accs))]
    dut = RequantUnit(acc_width=acc_width, channels=channels, multipliers=mult, shifts=shift, qmin=qmin, qmax=qmax,
                  out_bits=out_bits, out_signed=out_signed)
    layout = dut.i.payload.shape()
    words = [layout.const({"acc": a, "ch": c}) for a, c in zip(accs, chans)]
    want = [int(requantize(a, mult[c], shift[c], qmin, qmax)) for a, c in zip(accs, chans)]
    got, cycles = run_streams(dut, words, n_out=len(words))
    assert got == want, f"seed={seed}"
    assert cycles == len(words) + LATENCY
    got, _ = run_streams(dut, words, n_out=len(words), seed=seed, in_stall=0.4, out_stall=0.4)
    assert got == want, f"seed={seed} (backpressure)"


def test_requant_rounding_ties():
    # M=1, S=2: acc/4 rounded half up, including negative ties (-2/4 = -0.5 -> 0, -6/4 = -1.5 -> -1)
    accs = list(range(-9, 10))
    dut = RequantUnit(acc_width=8, channels=1, multipliers=[1], shifts=[2], qmin=-128, qmax=127, out_bits=8,
                  out_signed=True)
    words = [dut.i.payload.shape().const({"acc": a, "ch": 0}) for a in accs]
    got, _ = run_streams(dut, words, n_out=len(accs))
    assert got == [(a + 2) >> 2 for a in accs]
    assert got[accs.index(-2)] == 0 and got[accs.index(-6)] == -1


def test_requant_checks():
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the half-built components are never elaborated
        with pytest.raises(ValueError, match="multipliers"):
            RequantUnit(acc_width=8, channels=3, multipliers=[1, 2], shifts=[1, 1], qmin=0, qmax=255, out_bits=8,
                    out_signed=False)
        with pytest.raises(ValueError, match="shift"):
            RequantUnit(acc_width=8, channels=1, multipliers=[1], shifts=[63], qmin=0, qmax=255, out_bits=8,
                    out_signed=False)
        gc.collect()


# --- the lean form (one constant M, S over the accumulators the block can reach) ------------------

def plain_requant(acc: int, m: int, s: int, qmin: int, qmax: int) -> int:
    """clamp(floor(acc * M / 2**S + 1/2)) in Python ints (acc * M when S == 0)."""
    from fractions import Fraction
    import math

    value = acc * m if s == 0 else math.floor(Fraction(acc * m, 2**s) + Fraction(1, 2))
    return min(max(value, qmin), qmax)


LEAN_CASES = [  # acc_width, (lo, hi) reachable, M, S, out_bits, out_signed, qmin, qmax
    (22, (-2089561, 2073631), 1019927816, 36, 8, False, 0, 255),  # digits MLP h1 (ReLU fused)
    (21, (-1045521, 1037250), 673529415, 39, 8, True, -128, 127),  # digits MLP y
    (16, (-32768, 32767), 3, 0, 8, True, -128, 127),  # S == 0, saturating both ways
    (20, (-300000, 200000), 96 << 20, 30, 8, True, -128, 127),  # M with trailing zeros
    (12, (-2048, 2047), 0, 9, 4, True, -8, 7),  # M == 0: constant output
    (12, (-400, 400), 5, 1, 8, True, -128, 127),  # scale 2.5: several levels per accumulator
    (18, (-5000, 70000), 123456789, 40, 4, False, 0, 15),  # few levels, 4-bit out
    (24, (-(1 << 23), (1 << 23) - 1), 1518500250, 40, 8, True, -128, 127),  # the whole acc_width
    (12, (-1000, 1000), (1 << 31) - 1, 0, 8, True, -128, 127),  # huge scale: the whole staircase at acc = 0
    (10, (-100, 100), 7, 2, 1, True, -1, 0),  # 1-bit signed output
    (10, (-100, 100), 7, 2, 4, True, 3, 3),  # qmin == qmax
    (16, (1234, 1234), 12345, 10, 8, True, -128, 127),  # one reachable accumulator
]


@pytest.mark.parametrize("case", LEAN_CASES, ids=lambda c: f"M{c[2]}-S{c[3]}")
def test_lean_requant_matches_plain_math(case):
    acc_width, (lo, hi), m, s, out_bits, out_signed, qmin, qmax = case
    seed = (m ^ (s << 7) ^ lo) % 2**32
    rng = np.random.default_rng(seed)
    dut = RequantUnit(acc_width=acc_width, channels=1, multipliers=[m], shifts=[s], qmin=qmin, qmax=qmax,
                      out_bits=out_bits, out_signed=out_signed, acc_range=(lo, hi))
    lean = dut.lean[0]
    edges = [e + d for e in (lean.lo_edge, lean.hi_edge) for d in (-2, -1, 0, 1)]
    accs = [lo, hi, lo + 1, hi - 1, 0, -1, 1, *edges] + rng.integers(lo, hi + 1, size=40).tolist()
    window = rng.integers(max(lo, lean.lo_edge - 3), min(hi, lean.hi_edge + 3) + 1, size=40).tolist()
    accs = [int(a) for a in accs + window if lo <= a <= hi]
    words = [dut.i.payload.shape().const({"acc": a, "ch": 0}) for a in accs]
    want = [plain_requant(a, m, s, qmin, qmax) for a in accs]
    got, cycles = run_streams(dut, words, n_out=len(words))
    assert got == want, f"seed={seed} {lean}: " + ", ".join(
        f"acc {a}: {g} != {w}" for a, g, w in zip(accs, got, want) if g != w)
    assert cycles == len(words) + LATENCY
    got, _ = run_streams(dut, words, n_out=len(words), seed=seed, in_stall=0.4, out_stall=0.4)
    assert got == want, f"seed={seed} (backpressure)"


def test_lean_requant_range_checked():
    with pytest.raises(ValueError, match="acc_range"):
        RequantUnit(acc_width=8, channels=1, multipliers=[3], shifts=[2], qmin=-128, qmax=127, out_bits=8,
                    out_signed=True, acc_range=(-200, 10))


@pytest.mark.parametrize("first", [0, 3])
def test_lean_requant_per_channel_tables(first):
    """Per-channel (M, S) tables as lean forms with one shared shift: channels with trailing zeros in M,
    S == 0, M == 0, a scale above 1, a constant and the digits CNN's first conv; every channel at the
    range ends, its own window edges and random accumulators, expected from plain math. `first`: the
    table rotated so that this channel comes first (3: M == 0, a constant form whose own shift is 0)."""
    seed = 1402 + first
    rng = np.random.default_rng(seed)
    lo, hi = -294112, 292921
    table = [(1019927816, 35), (96 << 20, 30), (3, 0), (0, 9), (5, 1), (1 << 10, 40), (711231797, 34)]
    table = table[first:] + table[:first]
    mult, shift = [p[0] for p in table], [p[1] for p in table]
    dut = RequantUnit(acc_width=20, channels=len(table), multipliers=mult, shifts=shift, qmin=0, qmax=255,
                      out_bits=8, out_signed=False, acc_range=(lo, hi))
    assert len({f.shift for f in dut.lean if f.mult}) == 1
    accs, chans = [], []
    for c, form in enumerate(dut.lean):
        near = [e + d for e in (form.lo_edge, form.hi_edge) for d in (-1, 0, 1)]
        these = [lo, hi, 0, *near, *rng.integers(lo, hi + 1, size=10).tolist(),
                 *rng.integers(form.lo_edge - 3, form.hi_edge + 3, size=10).tolist()]
        these = [int(a) for a in these if lo <= a <= hi]
        accs += these
        chans += [c] * len(these)
    order = rng.permutation(len(accs))
    accs, chans = [accs[i] for i in order], [chans[i] for i in order]
    words = [dut.i.payload.shape().const({"acc": a, "ch": c}) for a, c in zip(accs, chans)]
    want = [plain_requant(a, mult[c], shift[c], 0, 255) for a, c in zip(accs, chans)]
    got, cycles = run_streams(dut, words, n_out=len(words))
    assert got == want, f"seed={seed}: " + ", ".join(
        f"ch {c} acc {a}: {g} != {w}" for a, c, g, w in zip(accs, chans, got, want) if g != w)
    assert cycles == len(words) + LATENCY
    got, _ = run_streams(dut, words, n_out=len(words), seed=seed, in_stall=0.4, out_stall=0.4)
    assert got == want, f"seed={seed} (backpressure)"
