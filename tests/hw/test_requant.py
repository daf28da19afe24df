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
