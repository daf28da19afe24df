"""Random token selectors for the selector's tests: integer weights, each requantization calibrated on
a batch of tokens so that every stage uses its range (scores spread over 0..256, not all saturated)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from cdsl.contract.intmodel import Requant
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.contract.ref.token_selector import HEAD_WEIGHT_BITS, TokenSelector


def _rq(scales, qmin: int, qmax: int) -> Requant:
    pairs = [quantize_multiplier(float(s)) for s in scales]
    return Requant(multiplier=np.array([m for m, _ in pairs], dtype=np.int64),
                   shift=np.array([s for _, s in pairs], dtype=np.int64), qmin=qmin, qmax=qmax)


def head_weights(rng: np.random.Generator, heads: int) -> np.ndarray:
    cuts = np.sort(rng.integers(0, (1 << HEAD_WEIGHT_BITS) + 1, heads - 1))
    edges = np.concatenate([[0], cuts, [1 << HEAD_WEIGHT_BITS]])
    return np.diff(edges).astype(np.int64)


def random_selector(rng: np.random.Generator, tokens: torch.Tensor, *, heads: int, local: int, hidden: int,
                    w_bits: int = 8, a_bits: int = 8, logit_bits: int = 8, logit_frac: int = 4,
                    threshold: int = 128, logit_spread: float = 3.0) -> TokenSelector:
    """A selector for `tokens` [B, N, D] whose requantizations are calibrated on them: local and hidden
    features reach about 3/4 of their range, logits spread about `logit_spread` (real units, one std)."""
    dim = tokens.shape[-1]
    d = dim // heads
    wlo, whi = -(1 << (w_bits - 1)), (1 << (w_bits - 1))
    ints = lambda *shape: rng.integers(wlo, whi, shape).astype(np.int64)  # noqa: E731
    amax = (1 << a_bits) - 1
    lmax = (1 << (logit_bits - 1)) - 1
    unit = np.ones(heads)
    sel = TokenSelector(
        heads=heads, w_bits=w_bits,
        w_local=ints(heads, local, d), b_local=rng.integers(-2000, 2000, (heads, local)).astype(np.int64),
        rq_local=_rq(unit, 0, amax),
        w_hidden=ints(heads, hidden, 2 * local), b_hidden=rng.integers(-2000, 2000, (heads, hidden)).astype(np.int64),
        rq_hidden=_rq(unit, 0, amax),
        w_score=ints(heads, hidden), b_score=rng.integers(-2000, 2000, (heads,)).astype(np.int64),
        rq_score=_rq(unit, -lmax - 1, lmax), logit_frac=logit_frac,
        head_weights=head_weights(rng, heads), threshold=threshold)

    def calibrate(acc: torch.Tensor, channel_dim: int, top: float) -> np.ndarray:
        a = acc.movedim(channel_dim, 0).reshape(heads, -1).abs().double().amax(dim=1).clamp(min=1).numpy()
        return top / a

    xt = torch.as_tensor(tokens, dtype=torch.int64)
    n = xt.shape[1]
    xh = xt[:, 1:, :].reshape(xt.shape[0], n - 1, heads, d)
    acc = torch.einsum("bchk,hlk->bchl", xh, torch.from_numpy(sel.w_local)) + torch.from_numpy(sel.b_local)
    sel = dataclasses.replace(sel, rq_local=_rq(calibrate(acc, -2, 0.75 * amax), 0, amax))
    loc = sel.local(xt)
    feat = torch.cat([loc, sel.global_feature(loc)[:, None].expand_as(loc)], dim=-1)
    acc = torch.einsum("bchf,hjf->bchj", feat, torch.from_numpy(sel.w_hidden)) + torch.from_numpy(sel.b_hidden)
    sel = dataclasses.replace(sel, rq_hidden=_rq(calibrate(acc, -2, 0.75 * amax), 0, amax))
    hid = sel.rq_hidden.apply(acc, channel_dim=-2)
    acc = torch.einsum("bchj,hj->bch", hid, torch.from_numpy(sel.w_score)) + torch.from_numpy(sel.b_score)
    centred = acc - acc.double().mean(dim=(0, 1)).round().to(torch.int64)
    std = centred.double().movedim(-1, 0).reshape(heads, -1).std(dim=1).clamp(min=1).numpy()
    scale = logit_spread * (1 << logit_frac) / std
    bias = sel.b_score - acc.double().mean(dim=(0, 1)).round().to(torch.int64).numpy()
    bias = np.clip(bias, -(1 << 31), (1 << 31) - 1).astype(np.int64)
    return dataclasses.replace(sel, rq_score=_rq(scale, -lmax - 1, lmax), b_score=bias)


def random_tokens(rng: np.random.Generator, batch: int, n: int, dim: int, bits: int = 8) -> torch.Tensor:
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    return torch.from_numpy(rng.integers(lo, hi, (batch, n, dim)).astype(np.int64))
