"""Mac and BitSerialMac in amaranth.sim.

Mac against `dense` (itself tested against loops in tests/contract). BitSerialMac against plain
Python-int math (`tb.mac_cases.truncated_dot`, `bitserial_cycles`), never through the reference
that makes its plane masks: a mutant `plane_masks` is shown to fail the block check.
"""

import numpy as np
import pytest

from cdsl.contract.ref import bitserial_mac as bs_ref
from cdsl.contract.ref.dense import dense
from tb.bitserial_feed import PlaneFedMac
from cdsl.hw.mac import LATENCY as MAC_LATENCY, Mac, step_layout
from tb.mac_cases import (acc_width_for, bitserial_cycles, bitserial_steps, mac_cases as cases,
                          mac_steps as steps_for, truncated_dot)
from tb.pysim import run_streams

REAL_PLANE_MASKS = bs_ref.plane_masks


def bitserial_mismatches(lanes, a_bits, a_signed, w_bits, seed) -> list[str]:
    """Run BitSerialMac on every `mac_cases` case at every precision port value (0 = full, 1..B),
    and once with random stalls; one line per accumulator list or cycle count that differs from
    the plain-math expectation (an empty list: the block agrees)."""
    rng = np.random.default_rng(seed)
    k, rows = 9, 3
    acc_width = acc_width_for(k, a_bits, a_signed, w_bits)
    layout = step_layout(lanes=lanes, a_width=a_bits, a_signed=a_signed, w_bits=w_bits, mask=True)
    config = f"lanes={lanes} a_bits={a_bits} a_signed={a_signed} w_bits={w_bits} seed={seed}"

    def run(words, port, **stalls):
        dut = PlaneFedMac(lanes=lanes, a_width=a_bits, a_signed=a_signed, w_bits=w_bits, acc_width=acc_width)
        return run_streams(dut, words, n_out=rows, ports={"precision": port}, **stalls)

    mismatches = []
    for name, x, w in cases(rng, rows, k, a_bits, a_signed, w_bits):
        words = bitserial_steps(layout, x, w, lanes, w_bits)
        for port in [0, *range(1, w_bits + 1)]:
            p = w_bits if port == 0 else port
            want = [truncated_dot(x, row, w_bits, p) for row in w]
            want_cycles = bitserial_cycles(w, w_bits, p, lanes)
            got, cycles = run(words, port)
            if got != want:
                mismatches.append(f"{config} case={name} precision={port}: acc {got}, want {want}")
            if cycles != want_cycles:
                mismatches.append(f"{config} case={name} precision={port}: {cycles} cycles, want {want_cycles}")
        port = int(rng.integers(1, w_bits + 1))
        got, _ = run(words, port, seed=seed, in_stall=0.3, out_stall=0.5)
        want = [truncated_dot(x, row, w_bits, port) for row in w]
        if got != want:
            mismatches.append(f"{config} case={name} precision={port} (backpressure): acc {got}, want {want}")
    return mismatches


def forgets_msb_plane(w, w_bits):
    return REAL_PLANE_MASKS(w, w_bits) & ~(1 << (w_bits - 1))


def ors_over_rows(w, w_bits):
    """ORs each column over the rows (axis 0 of [R, K, B]) instead of each row over its weights."""
    present = bs_ref.plane_bits(np.asarray(w), w_bits).any(axis=0)  # [K, B]
    return (present.astype(np.int64) << np.arange(w_bits)).sum(axis=1)


def off_by_one_plane(w, w_bits):
    return (REAL_PLANE_MASKS(w, w_bits) << 1) & ((1 << w_bits) - 1)


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


def test_mac_with_more_lanes_than_one_chained_sum():
    """130 lanes: the lane sum is built as chains of at most MAX_CHAIN terms held in acc-width
    signals (64 + 64 + 2 here), equal to plain math on the corner cases and at random; 1100 lanes
    elaborates (a --target-cycles fold gave a 2048-input dense 2048 lanes, and one 2048-term
    expression exceeded Python's recursion limit: a traceback from cdsl gen)."""
    from amaranth.hdl import Fragment

    from cdsl.hw._reduce import MAX_CHAIN

    lanes, a_bits, a_signed, w_bits, k, rows = 130, 8, True, 5, 260, 1
    assert lanes > 2 * MAX_CHAIN
    seed = 130005
    rng = np.random.default_rng(seed)
    acc_width = acc_width_for(k, a_bits, a_signed, w_bits)
    layout = step_layout(lanes=lanes, a_width=a_bits, a_signed=a_signed, w_bits=w_bits)
    for name, x, w in cases(rng, rows, k, a_bits, a_signed, w_bits):
        if name not in ("max*min", "min*min", "random"):
            continue
        dut = Mac(lanes=lanes, a_width=a_bits, a_signed=a_signed, w_bits=w_bits, acc_width=acc_width)
        want = [sum(int(a) * int(b) for a, b in zip(x, row)) for row in w]  # plain math
        got, _ = run_streams(dut, steps_for(layout, x, w, lanes), n_out=rows)
        assert got == want, f"case={name} seed={seed}"
    Fragment.get(Mac(lanes=1100, a_width=2, a_signed=False, w_bits=2, acc_width=acc_width_for(1100, 2, False, 2)), None)


@pytest.mark.parametrize("lanes,a_bits,a_signed,w_bits", [
    (1, 8, False, 8), (4, 8, True, 8), (3, 8, False, 4), (2, 4, True, 2), (4, 8, False, 1),
])
def test_bitserial_mac_every_precision(lanes, a_bits, a_signed, w_bits):
    mismatches = bitserial_mismatches(lanes, a_bits, a_signed, w_bits, seed=7000 + lanes * 100 + w_bits)
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("masks,caught", [
    (REAL_PLANE_MASKS, False), (forgets_msb_plane, True), (ors_over_rows, True), (off_by_one_plane, True),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_bitserial_block_check_catches_a_wrong_plane_mask(monkeypatch, masks, caught):
    """The block check fails when the plane masks that feed the device are wrong: the device then
    skips planes that carry ones, so its sums (and cycle counts) leave the plain-math ones. With the
    real `plane_masks` (the control) the same check is clean."""
    monkeypatch.setattr(bs_ref, "plane_masks", masks)
    mismatches = bitserial_mismatches(lanes=3, a_bits=8, a_signed=True, w_bits=4, seed=11)
    print("\n".join(mismatches))
    if caught:
        assert any(": acc " in line for line in mismatches), f"{masks.__name__} went unnoticed"
    else:
        assert not mismatches, "\n".join(mismatches)


def test_plane_and_order_roms_hold_one_plane_per_word():
    """plane_rom_words and order_rom_words against plain bit arithmetic: at a set plane b of a step's row
    mask, bit j of the plane word is bit b of lane j's weight mod 2**B, and the row's order word names
    b and the next set plane below it; at B-1 both hold the row's top set plane (zero words when the
    mask is empty)."""
    from cdsl.hw.bitserial_mac import index_bits, order_rom_words, plane_rom_words

    seed = 77
    rng = np.random.default_rng(seed)
    for w_bits, lanes in ((8, 4), (4, 3), (1, 2), (5, 1)):
        steps = [rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), size=lanes).tolist() for _ in range(6)]
        steps[0] = [0] * lanes
        steps[1] = [-(1 << (w_bits - 1))] * lanes
        row_masks = [0] + [int(rng.integers(0, 1 << w_bits)) for _ in range(2)]
        masks = [row_masks[a // 2] for a in range(len(steps))]  # two steps per row
        prom = plane_rom_words(steps, masks, w_bits=w_bits)
        orom = order_rom_words(row_masks, w_bits=w_bits)
        ib = index_bits(w_bits)
        for a, (ws, mask) in enumerate(zip(steps, masks)):
            r = a // 2
            set_planes = [b for b in range(w_bits) if mask >> b & 1]
            for b in set_planes:
                below = [c for c in set_planes if c < b]
                assert prom[a * 2**ib + b] == sum(((w % 2**w_bits) // 2**b % 2) * 2**j for j, w in enumerate(ws)), \
                    f"seed={seed} step {a} plane {b}"
                assert orom[r * 2**ib + b] == {"plane": b, "next": max(below) if below else 0, "more": int(bool(below))}
            top = max(set_planes) if set_planes else None
            assert prom[a * 2**ib + w_bits - 1] == (prom[a * 2**ib + top] if set_planes else 0)
            assert orom[r * 2**ib + w_bits - 1] == (orom[r * 2**ib + top] if set_planes else
                                                    {"plane": 0, "next": 0, "more": 0})
