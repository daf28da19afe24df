"""The CIM reference (`cdsl.contract.ref.cim_tile`) against a plain-math statement of the same
semantics: Python integers, digits by divmod, the ADC's rounding with `fractions.Fraction`."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch

from cdsl.contract import codec
from cdsl.contract.ref.cim_tile import CimCore


def digits(v: int, bits: int, width: int) -> list[int]:
    """v = sum_i 2**(width*i) * d_i with d_i in [0, 2**width) below the top digit, least significant first."""
    n = -(-bits // width)
    out = []
    for _ in range(n - 1):
        v, d = divmod(v, 2 ** width)
        out.append(d)
    return out + [v]


def plain_cim(x, w, *, rows_per_tile, cell, dac, adc, in_bits, in_signed, w_bits, steps, frac):
    """acc[b][o] for x [B][K], w [O][K] (lists of ints), as the module docstring states it."""
    out = []
    nx, nw = -(-in_bits // dac), -(-w_bits // cell)
    for xrow in x:
        accs = []
        for o, wrow in enumerate(w):
            total = Fraction(0)
            for t, start in enumerate(range(0, len(xrow), rows_per_tile)):
                ks = range(start, min(start + rows_per_tile, len(xrow)))
                for s in range(nw):
                    step = Fraction(int(steps[t][o][s]), 2 ** frac)
                    for b in range(nx):
                        psum = sum(digits(xrow[k], in_bits, dac)[b] * digits(wrow[k], w_bits, cell)[s] for k in ks)
                        signed = s == nw - 1 or (in_signed and b == nx - 1)
                        levels = 2 ** adc
                        lo, hi = (-levels // 2, levels // 2 - 1) if signed else (0, levels - 1)
                        code = min(max(int((Fraction(psum) / step + Fraction(1, 2)).__floor__()), lo), hi)
                        total += code * step * 2 ** (dac * b) * 2 ** (cell * s)
            accs.append(int((total + Fraction(1, 2)).__floor__()))
        out.append(accs)
    return out


def core_for(*, k, o, rows_per_tile, cell, dac, adc, in_bits, in_signed, w_bits, steps, frac=4):
    return CimCore(rows=rows_per_tile + 3, cols=max(o * -(-w_bits // cell), 1), cell=cell, dac=dac, adc=adc,
                   in_bits=in_bits, in_signed=in_signed, tile_rows=rows_per_tile, steps=steps, step_frac=frac)


def check(rng, *, k, o, rows_per_tile, cell, dac, adc, in_bits, in_signed, w_bits, step_range, frac=4, batch=3,
          x=None, w=None):
    t = -(-k // rows_per_tile)
    nw = -(-w_bits // cell)
    steps = rng.integers(step_range[0], step_range[1] + 1, size=(t, o, nw))
    if x is None:
        lo, hi = (-(2 ** (in_bits - 1)), 2 ** (in_bits - 1) - 1) if in_signed else (0, 2 ** in_bits - 1)
        x = rng.integers(lo, hi + 1, size=(batch, k))
    if w is None:
        w = rng.integers(-(2 ** (w_bits - 1)), 2 ** (w_bits - 1), size=(o, k))
    core = core_for(k=k, o=o, rows_per_tile=rows_per_tile, cell=cell, dac=dac, adc=adc, in_bits=in_bits,
                    in_signed=in_signed, w_bits=w_bits, steps=steps, frac=frac)
    got = core.matmul(torch.tensor(x), torch.tensor(w), w_bits=w_bits, settings={}).tolist()
    want = plain_cim(np.asarray(x).tolist(), np.asarray(w).tolist(), rows_per_tile=rows_per_tile, cell=cell, dac=dac,
                     adc=adc, in_bits=in_bits, in_signed=in_signed, w_bits=w_bits, steps=steps.tolist(), frac=frac)
    assert got == want
    return got, x, w


@pytest.mark.parametrize("cell,dac", list(itertools.product([1, 2, 4], [1, 2, 4])))
@pytest.mark.parametrize("in_signed", [False, True])
def test_every_cell_and_dac_against_plain_math(cell, dac, in_signed):
    """Row tiling with a partial last tile (K=11, 4 rows per tile), 5-bit ADC, 4-bit weights, 7-bit inputs
    (a top input slice narrower than dac when dac does not divide 7)."""
    rng = np.random.default_rng(100 * cell + 10 * dac + in_signed)
    check(rng, k=11, o=3, rows_per_tile=4, cell=cell, dac=dac, adc=5, in_bits=7, in_signed=in_signed, w_bits=4,
          step_range=(3, 60))


def test_saturation_at_both_ends():
    """Tiny steps: every all-positive and all-negative partial sum clamps to the code range's ends."""
    rng = np.random.default_rng(7)
    k, o = 8, 2
    x = np.array([[255] * k, [0] * k, [128] * k])
    w = np.array([[7] * k, [-8] * k])  # 4-bit extremes: top slice +1 (7 = 01|11) and -2 (-8 = 10|00)
    got, _, _ = check(rng, k=k, o=o, rows_per_tile=4, cell=2, dac=2, adc=3, in_bits=8, in_signed=False, w_bits=4,
                      step_range=(1, 1), frac=0, x=x, w=w)
    # one conversion at step 1 saturates at 7 (unsigned) or 3 / -4 (signed): far below x @ w.T
    exact = (x @ w.T).tolist()
    assert got[0][0] < exact[0][0] and got[0][1] > exact[0][1]
    assert got[1] == [0, 0]


def test_exact_when_steps_are_one_unit_and_the_adc_is_wide():
    """n = 2**frac (a step of one partial-sum unit) and 16 ADC bits: no quantization at all."""
    rng = np.random.default_rng(3)
    for cell, dac, signed in itertools.product([1, 2, 3], [1, 3], [False, True]):
        k, o, w_bits, in_bits = 13, 4, 6, 8
        t = -(-k // 5)
        steps = np.full((t, o, -(-w_bits // cell)), 16)
        core = core_for(k=k, o=o, rows_per_tile=5, cell=cell, dac=dac, adc=16, in_bits=in_bits, in_signed=signed,
                        w_bits=w_bits, steps=steps)
        lo = -128 if signed else 0
        x = torch.tensor(rng.integers(lo, lo + 256, size=(4, k)))
        w = torch.tensor(rng.integers(-32, 32, size=(o, k)))
        assert torch.equal(core.matmul(x, w, w_bits=w_bits, settings={}), x @ w.T)


def test_conv_rows_reach_the_core_through_im2col():
    """A conv payload's golden step hands the core im2col rows [N, Ho, Wo, K]: the result is the core
    applied to each row."""
    from cdsl.contract.intmodel import IntLayer, QType, Requant
    from cdsl.contract.ref.conv2d import Conv2dPayload, im2col

    rng = np.random.default_rng(11)
    w = rng.integers(-8, 8, size=(3, 2 * 9))
    steps = rng.integers(5, 40, size=(2, 3, 2))
    core = core_for(k=18, o=3, rows_per_tile=9, cell=2, dac=1, adc=4, in_bits=8, in_signed=False, w_bits=4,
                    steps=steps)
    rq = Requant(np.array([1]), np.array([0]), -(2 ** 31), 2 ** 31 - 1)
    pay = Conv2dPayload(weight=w, bias=None, w_bits=4, w_scale=np.ones(1), mask=None, requant=rq, core=core,
                        kernel=3, stride=1, padding=1)
    lay = IntLayer("c", ("x",), ((2, 4, 4),), (QType(8, False, 1.0),), (3, 4, 4), QType(32, True, 1.0), pay)
    x = torch.tensor(rng.integers(0, 256, size=(2, 2, 4, 4)))
    got = pay.run(lay, [x], {})
    cols = im2col(x, kernel=3, stride=1, padding=1)
    want = plain_cim(cols.reshape(-1, 18).tolist(), w.tolist(), rows_per_tile=9, cell=2, dac=1, adc=4, in_bits=8,
                     in_signed=False, w_bits=4, steps=steps.tolist(), frac=4)
    assert got.permute(0, 2, 3, 1).reshape(-1, 3).tolist() == want


def test_shapes_ranges_and_codec():
    steps = np.full((2, 3, 2), 9)
    core = core_for(k=8, o=3, rows_per_tile=4, cell=2, dac=1, adc=4, in_bits=8, in_signed=False, w_bits=4,
                    steps=steps)
    with pytest.raises(ValueError, match=r"shape \(3, 3, 2\)"):
        core.matmul(torch.zeros(1, 9, dtype=torch.int64), torch.zeros(3, 9, dtype=torch.int64), w_bits=4, settings={})
    with pytest.raises(ValueError, match="unsigned 8-bit codes"):
        core.matmul(torch.full((1, 8), -1), torch.zeros(3, 8, dtype=torch.int64), w_bits=4, settings={})
    with pytest.raises(ValueError, match="steps must be positive"):
        core_for(k=8, o=3, rows_per_tile=4, cell=2, dac=1, adc=4, in_bits=8, in_signed=False, w_bits=4,
                 steps=np.zeros((2, 3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="tile_rows"):
        CimCore(rows=4, cols=8, cell=2, dac=1, adc=4, in_bits=8, in_signed=False, tile_rows=5, steps=steps, step_frac=4)
    arrays: dict = {}
    back = codec.decode(codec.encode(core, arrays, "c"), arrays)
    assert back == core and back is not core
