"""Patchify (`cdsl.hw.patchify`) and first-token (`cdsl.hw.first_token`) engines in Amaranth's simulator,
element by element: patchify against the patch order written here (zero token, then patches row-major,
each channel-major) and against `cdsl.contract.ref.patch_embed.patches`; the first token against
token 0 of frames of 1..N tokens; both under random input gaps (the measured last-input-to-last-output
delay equals the node's) and output back-pressure. Then the patch embedding end to end: patchify
followed by a token linear with the per-token table (`embed_table`), against
`cdsl.contract.ref.patch_embed.patch_embed`, bit-parallel and bit-serial."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from tb.frame_stream import run_frames

from cdsl.contract.intmodel import Requant
from cdsl.contract.ref._vit import IntLinear
from cdsl.contract.ref.patch_embed import patch_embed, patches
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.hw.kinds.first_token import plan_first_token
from cdsl.hw.kinds.patchify import embed_table, plan_patchify
from cdsl.hw.kinds.token_linear import bitserial_unit, plan_token_linear
from cdsl.hw.plan import StreamType
from cdsl.hw.streams import frame_signature


def patch_order(img, ch, h, w, p):
    """The patch tokens of a CHW list, written out: a zero token, then each patch (row-major), channel-major."""
    out = [0] * (ch * p * p)
    for pr in range(h // p):
        for pc in range(w // p):
            for c in range(ch):
                for py in range(p):
                    for px in range(p):
                        out.append(img[c * h * w + (pr * p + py) * w + pc * p + px])
    return out


@pytest.mark.parametrize("shape,patch,bits,signed", [((1, 8, 8), 4, 4, False), ((3, 6, 4), 2, 8, True),
                                                     ((2, 3, 3), 3, 8, True), ((1, 2, 2), 1, 5, False)])
@pytest.mark.parametrize("out_stall", [0.0, 0.5])
def test_patchify(shape, patch, bits, signed, out_stall):
    seed = sum(shape) * 7 + patch + bits + int(out_stall * 10)
    rng = random.Random(seed)
    t = StreamType(bits, signed, shape)
    node = plan_patchify("p", "x", t, patch)
    ch, h, w = shape
    lo, hi = t.range
    frames = [[hi] * t.words, [lo] * t.words, [0] * t.words] + [[rng.randint(lo, hi) for _ in range(t.words)]
                                                                 for _ in range(3)]
    outs, lasts, delays = run_frames(node.component(), frames, out_lens=[node.out_type.words] * len(frames),
                                     seed=seed, in_stall=0.4, out_stall=out_stall, wait=True)
    for f, img in enumerate(frames):
        want = patch_order(img, ch, h, w, patch)
        ref = patches(torch.tensor(img).reshape(1, ch, h, w), patch).reshape(-1).tolist()
        assert want[ch * patch * patch:] == ref  # the plain statement agrees with the contract's order
        assert outs[f] == want, f"frame {f} differs (seed={seed})"
        assert lasts[f] == [0] * (len(want) - 1) + [1], f"frame {f}: `last` misplaced (seed={seed})"
        if out_stall == 0:
            assert delays[f] == node.delay({}), f"frame {f}: delay {delays[f]}, model {node.delay({})} (seed={seed})"


def test_patchify_refuses_bad_patches():
    with pytest.raises(ValueError, match="does not divide"):
        plan_patchify("p", "x", StreamType(8, True, (1, 6, 6)), 4)
    with pytest.raises(ValueError, match="expected an image"):
        plan_patchify("p", "x", StreamType(8, True, (6, 6)), 2)


@pytest.mark.parametrize("n_max,d", [(5, 4), (1, 3), (17, 32)])
@pytest.mark.parametrize("out_stall", [0.0, 0.5])
def test_first_token(n_max, d, out_stall):
    seed = 31 * n_max + d + int(out_stall * 10)
    rng = random.Random(seed)
    t = StreamType(8, True, (n_max, d))
    node = plan_first_token("c", "x", t)
    assert node.out_type.shape == (1, d) and node.out_tokens(n_max) == 1
    sizes = [1, n_max, n_max] + [rng.randint(1, n_max) for _ in range(4)]
    frames = [[rng.randint(-128, 127) for _ in range(n * d)] for n in sizes]
    frames[1] = [127] * (n_max * d)
    frames[2] = [-128] * (n_max * d)
    outs, lasts, delays = run_frames(node.component(), frames, out_lens=[d] * len(frames), seed=seed,
                                     in_stall=0.4, out_stall=out_stall, wait=out_stall == 0)
    for f, fr in enumerate(frames):
        assert outs[f] == fr[:d], f"frame {f} ({sizes[f]} tokens) differs (seed={seed})"
        assert lasts[f] == [0] * (d - 1) + [1], f"frame {f}: `last` misplaced (seed={seed})"
        if out_stall == 0:
            assert delays[f] == node.delay_tokens({}, sizes[f]) == d + 1, f"frame {f}: delay {delays[f]} (seed={seed})"


class Chain(wiring.Component):
    """Components one after another: `i` into the first, `o` out of the last."""

    def __init__(self, parts, in_type, out_type):
        self._parts = parts
        super().__init__({"i": In(frame_signature(in_type.bits, in_type.signed)),
                          "o": Out(frame_signature(out_type.bits, out_type.signed))})

    def elaborate(self, platform):
        m = Module()
        for k, part in enumerate(self._parts):
            m.submodules[f"part{k}"] = part
        wiring.connect(m, wiring.flipped(self.i), self._parts[0].i)
        for a, b in zip(self._parts, self._parts[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self._parts[-1].o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("serial", [False, True])
def test_patch_embed_end_to_end(serial):
    seed = 77 + serial
    rng = np.random.default_rng(seed)
    ch, h, w, p, d = 1, 8, 8, 4, 6
    k = ch * p * p
    n1 = (h // p) * (w // p) + 1
    weight = rng.integers(-32, 32, (d, k))
    bias, cls, pos = rng.integers(-500, 500, d), rng.integers(-2000, 2000, d), rng.integers(-800, 800, (n1, d))
    m, s = quantize_multiplier(1.5 / (15 * 32 * 4))
    rq = Requant(np.array([m]), np.array([s]), -128, 127)
    img_type = StreamType(4, False, (ch, h, w))
    pnode = plan_patchify("t.patches", "x", img_type, p)
    lin = IntLinear(weight, bias, rq)
    tnode = plan_token_linear("t", "t.patches", pnode.out_type, lin, out_type=StreamType(8, True, (n1, d)), lanes=3,
                              unit=bitserial_unit(lin) if serial else None, table=embed_table(cls, bias, pos))
    dut = Chain([pnode.component(), tnode.component()], img_type, tnode.out_type)
    imgs = [np.full(img_type.words, 15), np.zeros(img_type.words, dtype=np.int64)] + [
        rng.integers(0, 16, img_type.words) for _ in range(3)]
    outs, lasts, delays = run_frames(dut, [im.tolist() for im in imgs], out_lens=[n1 * d] * len(imgs), seed=seed,
                                     in_stall=0.3, wait=True)
    for f, im in enumerate(imgs):
        want = patch_embed(torch.tensor(im).reshape(1, ch, h, w), p, weight, bias, cls, pos, rq).reshape(-1).tolist()
        assert outs[f] == want, f"image {f} differs (seed={seed})"
        assert delays[f] == pnode.delay({}) + tnode.delay_tokens({}, n1), f"image {f}: delay {delays[f]} (seed={seed})"


def test_intervals_are_bounds_back_to_back():
    """Full frames back to back, input always valid, output always ready: each engine finishes a frame at
    most every `interval` cycles."""
    rng = random.Random(9)
    for node in (plan_patchify("p", "x", StreamType(8, True, (2, 4, 4)), 2),
                 plan_first_token("c", "x", StreamType(8, True, (5, 6)))):
        t = node.in_types[0]
        frames = [[rng.randint(-128, 127) for _ in range(t.words)] for _ in range(4)]
        ends = []
        run_frames(node.component(), frames, out_lens=[node.out_type.words] * 4, wait=False, ends=ends)
        gaps = [b - a for a, b in zip(ends, ends[1:])]
        assert max(gaps) <= node.interval({}), f"{node.name}: {gaps} vs {node.interval({})}"
