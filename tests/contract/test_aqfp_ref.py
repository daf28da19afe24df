"""The AQFP accumulator's reference against plain statements of its model, on Python ints.

Independent statements:
- the LFSR is the 32-bit Galois register of the polynomial x^32 + x^22 + x^2 + x + 1, written here as a
  list of bits whose taps are those exponents (not the mask constant); its output bits satisfy the
  recurrence of the reciprocal polynomial, a[i+32] = a[i+31] ^ a[i+30] ^ a[i+10] ^ a[i], and the
  polynomial is primitive (x has order 2**32 - 1 modulo it), so the period is maximal;
- a jump of n steps is n plain steps, and multiplication by x**-n modulo the polynomial (a right-shifting
  Galois step divides the state polynomial by x); group g starts (g + 1) * 2**24 steps after the seed;
- a draw is 8 consecutive output bits, the first one least significant; the draws are uniform over
  0..255, so P(draw < c) = c / 256;
- the table entry for d is round half up of 256 * Phi(d / (gray * (1 + atten * (size - 1)))) for d > 0,
  256 minus that for -d, 128 at 0;
- the margin is a loop over outputs, groups and cycles: group (chunk m, tap t) holds channels
  m*n .. m*n+n-1 at tap t, its current d is the sum of x*w over them, its bit is draw < table[d + size],
  count * 2**16 - tau * T; or, for T = 0, sum of the table entries * 2**8 - tau.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cdsl.contract.ref import aqfp_accumulator as ref
from tb.aqfp_cases import BitLfsr, plain_jump, plain_margins, start_state, x_power


def test_the_polynomial_is_primitive():
    order = 2**32 - 1
    assert x_power(order) == 1
    for prime in (3, 5, 17, 257, 65537):  # 2**32 - 1 = 3 * 5 * 17 * 257 * 65537
        assert x_power(order // prime) != 1


def plain_steps(state: int, steps: int) -> int:
    lfsr = BitLfsr(state)
    for _ in range(steps):
        lfsr.step()
    return lfsr.state


def test_a_step_divides_the_state_polynomial_by_x():
    """The statement `plain_jump` rests on: x * (state after one step) = state modulo the polynomial."""
    for state in (1, 0x80000000, 0x12345678, 0xFFFFFFFF):
        assert plain_jump(state, 1) == plain_steps(state, 1)
        assert plain_jump(plain_steps(state, 5), -5) == state


@pytest.mark.parametrize("state", [1, 0x12345678, 0xFFFFFFFF, 0x80000000])
def test_lfsr_is_the_bit_list_register_and_its_recurrence_holds(state):
    plain = BitLfsr(state)
    s, bits = state, []
    for _ in range(600):
        s, out = ref.lfsr_step(s)
        assert out == plain.step()
        bits.append(out)
    assert s == plain.state
    assert all(bits[i + 32] == bits[i + 31] ^ bits[i + 30] ^ bits[i + 10] ^ bits[i] for i in range(len(bits) - 32))


def test_draws_are_eight_output_bits_lsb_first():
    seeds = [1, 7, 0xDEADBEEF]
    draws = ref.lfsr_draws([start_state(s, g) for s in seeds for g in range(3)], 50)
    for row, (s, g) in zip(draws, [(s, g) for s in seeds for g in range(3)]):
        plain = BitLfsr(start_state(s, g))
        assert list(row) == [plain.draw() for _ in range(50)]


@pytest.mark.parametrize("steps", [0, 1, 31, 33, 1000, 5003])
def test_a_jump_is_that_many_plain_steps(steps):
    for state in (1, 0x9E3779B9, 0xFFFFFFFF):
        assert ref.lfsr_jump(state, steps) == plain_steps(state, steps)


def test_long_jumps_are_polynomial_products_and_group_seeds_are_jumps():
    for state in (5, 0xABCDEF01):
        for steps in ((1 << 24) + 12345, 3 << 24, 2**32 - 2):
            assert ref.lfsr_jump(state, steps) == plain_jump(state, steps)
    assert [ref.group_seed(7, g) for g in range(3)] == [start_state(7, g) for g in range(3)]
    with pytest.raises(ValueError, match="seed"):
        ref.group_seed(0, 0)


def test_draws_are_uniform_so_a_code_is_a_probability():
    draws = ref.lfsr_draws([start_state(3, g) for g in range(4)], 2**14).reshape(-1)
    hist = np.bincount(draws, minlength=256)
    expected = draws.size / 256
    chi2 = float(((hist - expected) ** 2 / expected).sum())
    assert chi2 < 255 + 5 * math.sqrt(2 * 255)  # 255 degrees of freedom, a 5-sigma bound
    for code in (0, 1, 64, 128, 200, 256):
        assert abs(float((draws < code).mean()) - code / 256) < 5 * math.sqrt(0.25 / draws.size)


@pytest.mark.parametrize("size,gray,atten", [(16, 1.0, 0.0625), (5, 0.5, 0.2), (1, 2.0, 0.0), (8, 0.0, 1.0)])
def test_bit_table_is_the_rounded_gray_zone(size, gray, atten):
    table = ref.bit_table(size, gray=gray, atten=atten)
    sigma = gray * (1 + atten * (size - 1))
    assert len(table) == 2 * size + 1 and table[size] == 128
    for d in range(1, size + 1):
        p = 1.0 if sigma == 0 else 0.5 * (1 + math.erf(d / sigma / math.sqrt(2)))
        assert table[size + d] == math.floor(256 * p + 0.5)
        assert table[size - d] == 256 - table[size + d]
    assert all(np.diff(table) >= 0)


def test_gray_zone_widens_with_the_group():
    """Attenuation: the same current d is less decisive in a larger group."""
    small, large = ref.bit_table(4, gray=1.0, atten=0.25), ref.bit_table(32, gray=1.0, atten=0.25)
    assert small[4 + 2] > large[32 + 2]


# ---------------------------------------------------------------- the accumulator as a plain loop


def _case(rng, *, n, pixels, channels, taps, outputs, group, gray=1.0, atten=0.0625):
    k = channels * taps
    x = rng.choice([-1, 1], size=(n, pixels, k))
    x[0, 0, : k // 3] = 0  # zero inputs (convolution padding)
    w = rng.choice([-1, 1], size=(outputs, k))
    w[0, 1] = 0  # a pruned weight
    groups = ref.groups_of(k, group=group, taps=taps)
    table = ref.bit_table(group, gray=gray, atten=atten)
    partial = None if groups.partial == group else ref.bit_table(groups.partial, gray=gray, atten=atten)
    tau = rng.integers(0, groups.count * 65536, size=outputs)
    return x, w, groups, table, partial, tau


@pytest.mark.parametrize("T", [0, 1, 3, 8])
@pytest.mark.parametrize("shape", [dict(pixels=1, channels=10, taps=1, group=4),  # dense, a partial group of 2
                                   dict(pixels=4, channels=3, taps=4, group=2),  # conv taps, partial group of 1
                                   dict(pixels=1, channels=8, taps=1, group=8)])  # one full group
def test_margin_is_the_plain_loop(T, shape):
    rng = np.random.default_rng(11 + T)
    x, w, groups, table, partial, tau = _case(rng, n=3, outputs=3, **shape)
    for seed in (1, 0xC0FFEE):
        want = plain_margins(x.tolist(), w.tolist(), group=shape["group"], taps=shape["taps"], table=table.tolist(),
                             table_partial=None if partial is None else partial.tolist(), tau=tau.tolist(), T=T,
                             seed=seed)
        got = ref.aqfp_margin(torch.tensor(x), torch.tensor(w), groups=groups, table=table, table_partial=partial,
                              tau=tau, T=T, seed=seed, batch=2)
        assert got.tolist() == want


def test_margin_keeps_pixel_dims_and_each_inference_restarts_the_lfsrs():
    rng = np.random.default_rng(5)
    x, w, groups, table, partial, tau = _case(rng, n=2, pixels=6, channels=3, taps=1, outputs=2, group=2)
    x[1] = x[0]
    grid = torch.tensor(x).reshape(2, 2, 3, 3)
    got = ref.aqfp_margin(grid, torch.tensor(w), groups=groups, table=table, table_partial=partial, tau=tau, T=4,
                          seed=9)
    assert got.shape == (2, 2, 3, 2) and torch.equal(got[0], got[1])


def test_seeds_change_the_bits_and_t_zero_is_the_expectation():
    rng = np.random.default_rng(6)
    x, w, groups, table, partial, tau = _case(rng, n=8, pixels=1, channels=32, taps=1, outputs=4, group=8, gray=3.0)
    args = dict(groups=groups, table=table, table_partial=partial, tau=np.zeros(4, dtype=np.int64))
    xt, wt = torch.tensor(x), torch.tensor(w)
    assert not torch.equal(ref.aqfp_margin(xt, wt, T=16, seed=1, **args), ref.aqfp_margin(xt, wt, T=16, seed=2, **args))
    counts = torch.stack([ref.aqfp_margin(xt, wt, T=16, seed=s, **args) >> 16 for s in range(1, 201)]).double()
    expected = (ref.aqfp_margin(xt, wt, T=0, seed=1, **args) >> 8).double() * 16 / 256  # T * sum p
    spread = 6 * math.sqrt(16 * 4 * 0.25 / 200)  # the count's mean over 200 seeds, 4 groups at p(1-p) <= 1/4
    assert torch.all((counts.mean(dim=0) - expected).abs() < spread)


def test_tau_from_threshold_rounds_up_and_clips():
    groups = ref.groups_of(32, group=8, taps=1)
    tau = ref.tau_from_threshold(np.array([-1.0, 0.0, 1.5, 1 + 2**-20, 10.0]), groups)
    assert tau.tolist() == [0, 0, 98304, 65537, 4 * 65536 + 1]


def test_core_settings_and_checks():
    table = ref.bit_table(4, gray=1.0, atten=0.0)
    core = ref.AqfpCore(group=4, taps=1, T=16, t_max=64, seed=7, table=table, table_partial=None,
                        tau=np.zeros(3, dtype=np.int64), gray=1.0, atten=0.0)
    t, seed = core.settings(w_bits=2)
    assert (t.name, t.lo, t.hi, t.default) == ("T", 0, 64, 16)
    assert (seed.name, seed.lo, seed.hi, seed.default) == ("seed", 1, 2**32 - 1, 7)
    core.check(w_bits=2)
    with pytest.raises(ValueError, match="payload.core.table"):
        ref.AqfpCore(group=5, taps=1, T=16, t_max=64, seed=7, table=table, table_partial=None,
                     tau=np.zeros(3, dtype=np.int64), gray=1.0, atten=0.0).check(w_bits=2)
    with pytest.raises(ValueError, match="a group of 2 inputs needs a table of 5 entries"):
        core.matmul(torch.ones(1, 6, dtype=torch.int64), torch.ones(3, 6, dtype=torch.int64), w_bits=2, settings={})
