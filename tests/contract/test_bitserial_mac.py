"""The bit-serial reference against plain math on Python ints, bits read from binary strings.

The independent statements (B = w_bits, p = precision, weights in two's complement):
- truncate keeps the top p of the B bits: the binary string with its last B-p digits zeroed,
  and equally floor(w / 2**(B-p)) * 2**(B-p).
- bitserial_dot is the sum over the top p planes b of sign_b * 2**b * sum_k x_k * bit_b(w_k),
  sign -1 on the MSB plane only.
- plane_masks sets bit b of a row's mask iff some weight of the row has digit b set.
- row_cycles/cycles: ceil(K/L) * max(1, number of kept planes set in the row), summed over rows,
  plus LATENCY.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from cdsl.contract.ref import bitserial_mac as bs


# --- the plain-math statements ----------------------------------------------------------------

def binary(w: int, bits: int) -> str:
    """Two's complement of w as a string of `bits` digits, MSB first."""
    assert -2**(bits - 1) <= w < 2**(bits - 1)
    return format(w if w >= 0 else w + 2**bits, f"0{bits}b")


def from_binary(digits: str) -> int:
    return int(digits, 2) - (2**len(digits) if digits[0] == "1" else 0)


def bit(w: int, b: int, bits: int) -> int:
    return int(binary(w, bits)[bits - 1 - b])


def kept_planes(bits: int, p: int) -> range:
    return range(bits - p, bits)


def plain_dot(x_row, w_row, bits: int, p: int) -> int:
    """sum over the kept planes of sign * 2**b * sum_k x_k * bit_b(w_k), Python ints."""
    total = 0
    for b in kept_planes(bits, p):
        sign = -1 if b == bits - 1 else 1
        total += sign * 2**b * sum(int(x) * bit(int(w), b, bits) for x, w in zip(x_row, w_row))
    return total


def plain_mask(w_row, bits: int) -> int:
    return sum(2**b for b in range(bits) if any(bit(int(w), b, bits) for w in w_row))


def plain_cycles(w_rows, bits: int, p: int, lanes: int) -> int:
    k = len(w_rows[0])
    steps = math.ceil(Fraction(k, lanes))
    total = 0
    for row in w_rows:
        planes = sum(1 for b in kept_planes(bits, p) if any(bit(int(w), b, bits) for w in row))
        total += steps * max(1, planes)
    return total + bs.LATENCY


def weight_range(bits: int) -> tuple[int, int]:
    return -2**(bits - 1), 2**(bits - 1) - 1


def corner_weights(w_bits, rows, k, rng):
    lo, hi = weight_range(w_bits)
    cases = {
        "all_max": np.full((rows, k), hi),
        "all_min": np.full((rows, k), lo),
        "zeros": np.zeros((rows, k), dtype=np.int64),
        "alternating": np.where(np.arange(k) % 2 == 0, hi, lo)[None, :].repeat(rows, 0),
        "random": rng.integers(lo, hi + 1, size=(rows, k)),
        "few_planes": sparse_plane_weights(w_bits, rows, k, rng),
    }
    cases["few_planes"][0] = 0  # a row without any plane
    return cases


def sparse_plane_weights(w_bits, rows, k, rng):
    """Each row draws its weights' digits only from a random subset of the planes (holes)."""
    out = np.zeros((rows, k), dtype=np.int64)
    for r in range(rows):
        allowed = rng.random(w_bits) < 0.4
        for j in range(k):
            digits = "".join("1" if allowed[w_bits - 1 - i] and rng.random() < 0.5 else "0" for i in range(w_bits))
            out[r, j] = from_binary(digits)
    return out


# --- truncate -----------------------------------------------------------------------------------

@pytest.mark.parametrize("w_bits", range(1, 17))
def test_truncate_keeps_the_top_bits(w_bits):
    lo, hi = weight_range(w_bits)
    rng = np.random.default_rng(w_bits)
    weights = list(range(lo, hi + 1)) if w_bits <= 8 else [lo, lo + 1, hi, hi - 1, -1, 0, 1,
                                                            *rng.integers(lo, hi + 1, size=300).tolist()]
    for p in range(1, w_bits + 1):
        got = bs.truncate(np.array(weights), w_bits, p).tolist()
        for w, g in zip(weights, got):
            by_digits = from_binary(binary(w, w_bits)[:p] + "0" * (w_bits - p))
            by_floor = math.floor(Fraction(w, 2**(w_bits - p))) * 2**(w_bits - p)
            assert g == by_digits == by_floor, f"w={w} B={w_bits} p={p}: got {g}, want {by_digits}"


def test_truncate_extremes_by_hand():
    assert bs.truncate(np.array([-128, 127, -1, 0, 1]), 8, 1).tolist() == [-128, 0, -128, 0, 0]
    assert bs.truncate(np.array([-128, 127, -1, 0, 1]), 8, 7).tolist() == [-128, 126, -2, 0, 0]
    assert bs.truncate(np.array([-5, 5]), 4, 2).tolist() == [-8, 4]


# --- bitserial_dot ------------------------------------------------------------------------------

@pytest.mark.parametrize("w_bits", [1, 2, 4, 8])
@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_bitserial_dot_is_the_plane_sum(w_bits, lanes):
    seed = 1000 * w_bits + lanes
    rng = np.random.default_rng(seed)
    k, rows = 13, 5
    xs = {
        "x_max": np.full((2, k), 255),
        "x_signed": rng.integers(-128, 128, size=(3, k)),
        "x_zero": np.zeros((1, k), dtype=np.int64),
        "x_alt": np.where(np.arange(k) % 2 == 0, 127, -128)[None, :],
        "x_16bit": np.where(np.arange(k) % 3 == 0, 2**15 - 1, -2**15)[None, :],
    }
    for wname, w in corner_weights(w_bits, rows, k, rng).items():
        for xname, x in xs.items():
            for p in range(1, w_bits + 1):
                got = bs.bitserial_dot(x, w, w_bits=w_bits, precision=p, lanes=lanes)
                for n in range(x.shape[0]):
                    for r in range(rows):
                        want = plain_dot(x[n], w[r], w_bits, p)
                        assert got[n, r] == want, f"seed={seed} w={wname} x={xname} p={p} n={n} r={r}"


def test_bitserial_dot_single_vector_and_min_times_max():
    w = np.array([[-128] * 64])
    x = np.array([255] * 64)
    assert bs.bitserial_dot(x, w, w_bits=8, precision=8, lanes=8).tolist() == [-128 * 255 * 64]
    assert bs.bitserial_dot(x, w, w_bits=8, precision=1, lanes=8).tolist() == [-128 * 255 * 64]
    assert bs.bitserial_dot(x, -w - 1, w_bits=8, precision=8, lanes=8).tolist() == [127 * 255 * 64]
    assert bs.bitserial_dot(x, -w - 1, w_bits=8, precision=1, lanes=8).tolist() == [0]


# --- plane_masks, active_planes, cycles ---------------------------------------------------------

@pytest.mark.parametrize("w_bits", [1, 2, 3, 5, 8, 12, 16])
def test_plane_masks_and_cycles_count_the_set_planes(w_bits):
    seed = 50 + w_bits
    rng = np.random.default_rng(seed)
    k, rows = 7, 4
    for wname, w in corner_weights(w_bits, rows, k, rng).items():
        masks = bs.plane_masks(w, w_bits).tolist()
        assert masks == [plain_mask(row, w_bits) for row in w], f"seed={seed} w={wname}"
        for p in range(1, w_bits + 1):
            for lanes in (1, 2, 7, 9):
                got = bs.cycles(w, w_bits=w_bits, precision=p, lanes=lanes)
                assert got == plain_cycles(w, w_bits, p, lanes), f"seed={seed} w={wname} p={p} lanes={lanes}"
                for r, m in enumerate(masks):
                    want = plain_cycles(w[r:r + 1], w_bits, p, lanes) - bs.LATENCY
                    assert bs.row_cycles(m, k=k, w_bits=w_bits, precision=p, lanes=lanes) == want, \
                        f"seed={seed} w={wname} p={p} lanes={lanes} row={r}"


def test_plane_masks_and_cycles_by_hand():
    w = np.array([
        [0, 0, 0, 0],  # no planes
        [1, 4, 0, 1],  # planes 0 and 2 (a hole at 1)
        [-1, 0, 0, 0],  # every plane
        [64, 0, 0, 0],  # plane 6 only
    ])
    assert bs.plane_masks(w, 8).tolist() == [0, 0b101, 0xFF, 0b1000000]
    assert bs.plane_masks(w.reshape(4, 2, 2), 8).tolist() == [0, 0b101, 0xFF, 0b1000000]  # rows of any shape
    assert bs.active_planes(0b101, 8, 8) == (2, 0)
    assert bs.active_planes(0b101, 8, 6) == (2,)
    assert bs.active_planes(0b101, 8, 5) == ()
    assert bs.active_planes(0xFF, 8, 3) == (7, 6, 5)
    # K=4, lanes=3 -> 2 steps per plane
    assert bs.row_cycles(0, k=4, w_bits=8, precision=8, lanes=3) == 2
    assert bs.row_cycles(0b101, k=4, w_bits=8, precision=8, lanes=3) == 4
    assert bs.cycles(w, w_bits=8, precision=8, lanes=3) == 2 + 4 + 16 + 2 + bs.LATENCY
    assert bs.cycles(w, w_bits=8, precision=2, lanes=3) == 2 + 2 + 4 + 2 + bs.LATENCY


def test_checks():
    with pytest.raises(ValueError, match="precision"):
        bs.truncate(np.array([1]), 8, 0)
    with pytest.raises(ValueError, match="precision"):
        bs.truncate(np.array([1]), 8, 9)
    with pytest.raises(ValueError, match="lie in"):
        bs.plane_masks(np.array([[200]]), 8)
    with pytest.raises(ValueError, match="lie in"):
        bs.truncate(np.array([-129]), 8, 8)
    with pytest.raises(ValueError, match="lanes"):
        bs.bitserial_dot(np.array([1]), np.array([[1]]), w_bits=8, precision=8, lanes=0)
