"""Mac and BitSerialMac in amaranth.sim against their references (dense, bitserial_dot, cycles)."""

import numpy as np
import pytest

from cdsl.hw.bitserial_mac import BitSerialMac
from cdsl.hw.mac import LATENCY as MAC_LATENCY, Mac, step_layout
from cdsl.hw.plan import EngineConfig, EngineKind
from cdsl.hw.pysim import run_streams
from cdsl.hw.ref import bitserial_mac as bs_ref
from cdsl.hw.ref.dense import dense


def acc_width_for(k, a_bits, a_signed, w_bits):
    cfg = EngineConfig(name="t", kind=EngineKind.DENSE, in_shape=(k, 1, 1), out_shape=(1, 1, 1), in_bits=a_bits,
                       in_signed=a_signed, out_bits=8, out_signed=True, w_bits=w_bits,
                       weight=np.zeros((1, k, 1, 1), dtype=np.int64))
    return cfg.acc_width


def cases(rng, rows, k, a_bits, a_signed, w_bits):
    alo, ahi = (-(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1) if a_signed else (0, (1 << a_bits) - 1)
    wlo, whi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    alt = np.arange(k) % 2 == 0
    yield "max*min", np.full(k, ahi), np.full((rows, k), wlo)
    yield "min*min", np.full(k, alo), np.full((rows, k), wlo)
    yield "max*max", np.full(k, ahi), np.full((rows, k), whi)
    yield "zeros", np.zeros(k, dtype=np.int64), rng.integers(wlo, whi + 1, size=(rows, k))
    yield "alternating", np.where(alt, ahi, alo), np.where(alt, whi, wlo)[None].repeat(rows, 0)
    holes = rng.choice([0, 1, 1 << max(0, w_bits - 2)], size=(rows, k)) if w_bits > 1 else np.zeros((rows, k), np.int64)
    holes[0] = 0  # one row without any plane
    yield "holes", rng.integers(alo, ahi + 1, size=k), holes
    yield "random", rng.integers(alo, ahi + 1, size=k), rng.integers(wlo, whi + 1, size=(rows, k))


def steps_for(layout, x, w, lanes, *, masks=None):
    """MAC input transfers: per row, ceil(K/L) steps of `lanes` (x, w), zero-padded."""
    k = len(x)
    n_steps = -(-k // lanes)
    xp = np.zeros(n_steps * lanes, dtype=np.int64)
    xp[:k] = x
    words = []
    for r, row in enumerate(w):
        wp = np.zeros(n_steps * lanes, dtype=np.int64)
        wp[:k] = row
        for s in range(n_steps):
            fields = {"x": [int(v) for v in xp[s * lanes:(s + 1) * lanes]],
                      "w": [int(v) for v in wp[s * lanes:(s + 1) * lanes]],
                      "first": int(s == 0), "last": int(s == n_steps - 1)}
            if masks is not None:
                fields["mask"] = int(masks[r])
            words.append(layout.const(fields))
    return words


@pytest.mark.parametrize("lanes,a_bits,a_signed,w_bits", [
    (1, 8, False, 8), (3, 8, True, 4), (8, 8, False, 8), (4, 4, True, 2), (5, 8, False, 1),
])
def test_mac_matches_dense(lanes, a_bits, a_signed, w_bits):
    seed = lanes * 100 + w_bits
    rng = np.random.default_rng(seed)
    k, rows = 11, 3
    acc_width = acc_width_for(k, a_bits, a_signed, w_bits)
    layout = step_layout(lanes=lanes, a_width=a_bits, a_signed=a_signed, w_bits=w_bits)
    for name, x, w in cases(rng, rows, k, a_bits, a_signed, w_bits):
        dut = Mac(lanes=lanes, a_width=a_bits, a_signed=a_signed, w_bits=w_bits, acc_width=acc_width)
        want = dense(x.astype(np.int64), w.astype(np.int64)).tolist()
        words = steps_for(layout, x, w, lanes)
        got, cycles = run_streams(dut, words, n_out=rows)
        assert got == want, f"case={name} seed={seed}"
        assert cycles == len(words) + MAC_LATENCY, f"case={name} seed={seed}"
        got, _ = run_streams(dut, words, n_out=rows, seed=seed, in_stall=0.3, out_stall=0.5)
        assert got == want, f"case={name} seed={seed} (backpressure)"


@pytest.mark.parametrize("lanes,a_bits,a_signed,w_bits", [
    (1, 8, False, 8), (4, 8, True, 8), (3, 8, False, 4), (2, 4, True, 2), (4, 8, False, 1),
])
def test_bitserial_mac_every_precision(lanes, a_bits, a_signed, w_bits):
    seed = 7000 + lanes * 100 + w_bits
    rng = np.random.default_rng(seed)
    k, rows = 9, 3
    acc_width = acc_width_for(k, a_bits, a_signed, w_bits)
    layout = step_layout(lanes=lanes, a_width=a_bits, a_signed=a_signed, w_bits=w_bits, mask=True)
    for name, x, w in cases(rng, rows, k, a_bits, a_signed, w_bits):
        masks = bs_ref.plane_masks(w, w_bits)
        words = steps_for(layout, x, w, lanes, masks=masks)
        for port in [0, *range(1, w_bits + 1)]:
            p = w_bits if port == 0 else port
            dut = BitSerialMac(lanes=lanes, a_width=a_bits, a_signed=a_signed, w_bits=w_bits, acc_width=acc_width)
            want = bs_ref.bitserial_dot(x, w, w_bits=w_bits, precision=p, lanes=lanes).tolist()
            got, cycles = run_streams(dut, words, n_out=rows, ports={"precision": port})
            assert got == want, f"case={name} precision={port} seed={seed}"
            assert cycles == bs_ref.cycles(w, w_bits=w_bits, precision=p, lanes=lanes), \
                f"case={name} precision={port} seed={seed}"
        got, _ = run_streams(dut, words, n_out=rows, ports={"precision": p}, seed=seed, in_stall=0.3, out_stall=0.5)
        assert got == want, f"case={name} seed={seed} (backpressure)"
