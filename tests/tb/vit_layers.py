"""Small integer ViT layers (patch embedding, one encoder, class head) with random weights, for tests
that need ViT payloads without training: `vit_layers(rng, lanes)` -> [(planner, layer, input stream type)]."""

from __future__ import annotations

import numpy as np

from cdsl.contract.intmodel import IntLayer, QType, Requant
from cdsl.contract.ref._vit import IntLinear, IntNorm
from cdsl.contract.ref.add import AddPayload
from cdsl.contract.ref.cls_head import ClsHeadPayload
from cdsl.contract.ref.encoder import EncoderPayload
from cdsl.contract.ref.patch_embed import PatchEmbedPayload
from cdsl.hw.kinds.cls_head import plan_cls_head
from cdsl.hw.kinds.encoder import plan_encoder
from cdsl.hw.kinds.patch_embed import plan_patch_embed
from cdsl.hw.plan import StreamType

RQ = Requant(np.array([1 << 30]), np.array([8]), -128, 127)
Q8 = QType(8, True, 0.1)


def lin(rng, k, o, bits=5):
    """Weights of `bits` bits; odd rows in 0..7, so their upper planes are empty (masks differ per row)."""
    w = np.array([[rng.randint(0, 7) if r % 2 else rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                   for _ in range(k)] for r in range(o)], dtype=np.int64)
    return IntLinear(w, np.array([rng.randint(-50, 50) for _ in range(o)], dtype=np.int64), RQ)


def norm(d):
    return IntNorm(np.full(d, 64, dtype=np.int64), np.zeros(d, dtype=np.int64), RQ)


def vit_layers(rng, lanes):
    n, d, m, c, p = 5, 8, 16, 1, 4
    add = AddPayload(mult_a=1, mult_b=1, shift=0, qmin=-128, qmax=127)
    emb = lin(rng, c * p * p, d)
    t = IntLayer("t", ("x",), ((c, 8, 8),), (Q8,), (n, d), Q8, PatchEmbedPayload(
        patch=p, weight=emb.weight, bias=emb.bias, cls=np.zeros(d, dtype=np.int64), pos=np.zeros((n, d), dtype=np.int64),
        requant=RQ, bitserial=lanes))
    e = IntLayer("e", ("t",), ((n, d),), (Q8,), (n, d), Q8, EncoderPayload(
        heads=2, norm1=norm(d), qkv=lin(rng, d, 3 * d), softmax_x0=-100, attn=RQ, proj=lin(rng, d, d), add1=add,
        norm2=norm(d), fc1=lin(rng, d, m), gelu_cut=50, gelu_c=100, gelu=RQ, fc2=lin(rng, m, d), add2=add,
        bitserial=lanes))
    y = IntLayer("y", ("e",), ((n, d),), (Q8,), (10,), Q8, ClsHeadPayload(norm=norm(d), fc=lin(rng, d, 10),
                                                                          bitserial=lanes))
    return [(plan_patch_embed, t, StreamType(8, True, (c, 8, 8))), (plan_encoder, e, StreamType(8, True, (n, d))),
            (plan_cls_head, y, StreamType(8, True, (n, d)))]


