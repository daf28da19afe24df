"""Mac and BitSerialMac in amaranth.sim against their references (dense, bitserial_dot, cycles)."""

import numpy as np
import pytest

from cdsl.hw.bitserial_mac import BitSerialMac
from cdsl.hw.mac import LATENCY as MAC_LATENCY, Mac, step_layout
from tb.pysim import run_streams
from cdsl.contract.ref import bitserial_mac as bs_ref
from cdsl.contract.ref.dense import dense
from tb.mac_cases import acc_width_for, mac_cases as cases, mac_steps as steps_for


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
