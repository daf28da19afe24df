"""The bit-serial reference against the plain-math statement `(w >> t << t) @ x`."""

import numpy as np
import pytest

from cdsl.contract.ref import bitserial_mac as bs


def plain(x, w, w_bits, p):
    t = w_bits - p
    return (np.asarray(w, dtype=np.int64) >> t << t) @ np.asarray(x, dtype=np.int64).T


def corner_weights(w_bits, rows, k, rng):
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    cases = {
        "all_max": np.full((rows, k), hi),
        "all_min": np.full((rows, k), lo),
        "zeros": np.zeros((rows, k), dtype=np.int64),
        "alternating": np.where(np.arange(k) % 2 == 0, hi, lo)[None, :].repeat(rows, 0),
        "random": rng.integers(lo, hi + 1, size=(rows, k)),
        # holes: only some planes used (small positive values with gaps in their bits)
        "holes": (rng.integers(0, 2, size=(rows, k)) << ((w_bits - 1) // 2)) if w_bits > 1 else np.zeros((rows, k), np.int64),
    }
    if w_bits >= 3:
        cases["holes2"] = rng.choice([0, 1, 1 << (w_bits - 2)], size=(rows, k))
    return cases


@pytest.mark.parametrize("w_bits", [1, 2, 4, 8])
@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_bitserial_dot_equals_truncation(w_bits, lanes):
    seed = 1000 * w_bits + lanes
    rng = np.random.default_rng(seed)
    k, rows = 13, 5
    xs = {
        "x_max": np.full((2, k), 255),
        "x_signed": rng.integers(-128, 128, size=(3, k)),
        "x_zero": np.zeros((1, k), dtype=np.int64),
        "x_alt": np.where(np.arange(k) % 2 == 0, 127, -128)[None, :],
    }
    for wname, w in corner_weights(w_bits, rows, k, rng).items():
        for xname, x in xs.items():
            for p in range(1, w_bits + 1):
                got = bs.bitserial_dot(x, w, w_bits=w_bits, precision=p, lanes=lanes)
                want = plain(x, w, w_bits, p).T
                assert np.array_equal(got, want), f"seed={seed} w={wname} x={xname} p={p}"
                assert np.array_equal(bs.truncate(w, w_bits, p), np.asarray(w) >> (w_bits - p) << (w_bits - p))


def test_single_vector_and_min_times_max():
    w = np.array([[-128] * 64])
    x = np.array([255] * 64)
    assert bs.bitserial_dot(x, w, w_bits=8, precision=8, lanes=8)[0] == -128 * 255 * 64
    assert bs.bitserial_dot(x, w, w_bits=8, precision=1, lanes=8)[0] == -128 * 255 * 64


def test_plane_masks_and_cycles():
    w = np.array([
        [0, 0, 0, 0],  # no planes
        [1, 4, 0, 1],  # planes 0 and 2 (a hole at 1)
        [-1, 0, 0, 0],  # every plane
        [64, 0, 0, 0],  # plane 6 only
    ])
    masks = bs.plane_masks(w, 8)
    assert list(masks) == [0, 0b101, 0xFF, 0b1000000]
    assert bs.active_planes(0b101, 8, 8) == (2, 0)
    assert bs.active_planes(0b101, 8, 6) == (2,)
    assert bs.active_planes(0b101, 8, 5) == ()
    # K=4, lanes=3 -> 2 steps per plane
    assert bs.row_cycles(0, k=4, w_bits=8, precision=8, lanes=3) == 2
    assert bs.row_cycles(0b101, k=4, w_bits=8, precision=8, lanes=3) == 4
    assert bs.cycles(w, w_bits=8, precision=8, lanes=3) == 2 + 4 + 16 + 2 + bs.LATENCY
    assert bs.cycles(w, w_bits=8, precision=2, lanes=3) == 2 + 2 + 4 + 2 + bs.LATENCY


def test_checks():
    with pytest.raises(ValueError, match="precision"):
        bs.truncate(np.array([1]), 8, 0)
    with pytest.raises(ValueError, match="lie in"):
        bs.plane_masks(np.array([[200]]), 8)
    with pytest.raises(ValueError, match="lanes"):
        bs.bitserial_dot(np.array([1]), np.array([[1]]), w_bits=8, precision=8, lanes=0)
