"""FrameBuffer in amaranth.sim: the ping-pong of two banks (a frame loads while the other is held), the
layout of a frame in its words (lanes of channels), and one bank's refusal when `frames=1`."""

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from cdsl.hw.frame_buffer import FrameBuffer


def run(fb, frames, *, release_after, seed):
    """Offer `frames` back to back; release a held frame `release_after` cycles after it became full.
    Returns, per frame, the words read from the buffer while held, and the words accepted by each release."""
    c, h, w = frames[0].shape
    lanes = fb.rd_data.shape().length
    words = [int(v) for f in frames for v in f.reshape(-1)]
    read, accepted = [], []

    async def testbench(ctx):
        k, held_for, cycle = 0, 0, 0
        while len(read) < len(frames):
            assert cycle < 10_000, f"seed={seed}: stuck"
            ctx.set(fb.i.valid, k < len(words))
            if k < len(words):
                ctx.set(fb.i.payload, {"data": words[k], "last": 0})
                if ctx.get(fb.i.ready):
                    k += 1
            release = False
            if ctx.get(fb.full):
                held_for += 1
                if held_for > release_after:
                    got = np.zeros((c, h, w), dtype=np.int64)
                    for addr in range(fb.depth):  # read the whole frame (one cycle of latency each)
                        ctx.set(fb.rd_addr, addr)
                        ctx.set(fb.rd_en, 1)
                        await ctx.tick()
                        data = ctx.get(fb.rd_data)
                        g, pix = divmod(addr, h * w)
                        for j in range(lanes):
                            if g * lanes + j < c:
                                got[g * lanes + j, pix // w, pix % w] = data[j]
                    read.append(got)
                    ctx.set(fb.rd_en, 0)
                    release, held_for = True, 0
                    accepted.append(k)
            ctx.set(fb.release, release)
            await ctx.tick()
            ctx.set(fb.release, 0)
            cycle += 1

    sim = Simulator(fb)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return read, accepted


@pytest.mark.parametrize("frames_n", [1, 2])
@pytest.mark.parametrize("shape, lanes", [((3, 2, 2), 2), ((5, 1, 1), 3), ((1, 3, 3), 1)])
def test_frames_round_trip_and_ping_pong(frames_n, shape, lanes):
    seed = 7
    rng = np.random.default_rng(seed)
    frames = [rng.integers(-128, 128, size=shape) for _ in range(4)]
    fb = FrameBuffer(shape=shape, lanes=lanes, a_width=8, a_signed=True, frames=frames_n)
    words = int(np.prod(shape))
    read, accepted = run(fb, frames, release_after=words + 3, seed=seed)
    for k, (want, got) in enumerate(zip(frames, read)):
        assert (got == want).all(), f"seed={seed} frame {k}"
    # held longer than a frame takes to load: with two banks the next frame is in before each release,
    # with one the input stops at the held frame
    assert accepted[:3] == [words * min(f + frames_n, 4) for f in range(3)], f"seed={seed}"
    assert fb.bits == frames_n * fb.depth * lanes * 8


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # the refused buffer
def test_parameters_are_checked():
    with pytest.raises(ValueError, match="frames"):
        FrameBuffer(shape=(2, 1, 1), lanes=1, a_width=8, a_signed=False, frames=3)
    gc.collect()  # its warning now, under this test's filter
