"""Integer reference of the HeatViT-style token selector (`cdsl.hw.token_selector.TokenSelectorEngine`).

The selector sits in front of an encoder block. It reads one sample's tokens x, int64 [N, D] (token 0
is the class token, tokens 1..N-1 are the *candidates*), scores every candidate, keeps those whose
score is at or above a threshold and folds the others into one package token. All arithmetic is
integer; every rounding below is written once here.

Parameters (`TokenSelector`, held by the encoder's payload; H heads of d = D / H features, L local
features per head, J hidden units per head; weights signed `w_bits`, biases int32):

1. **Local feature** of candidate i, head h (x_i^h = x[i, h*d:(h+1)*d]):
       local[i, h, l] = requantize(sum_k x_i^h[k] * w_local[h, l, k] + b_local[h, l], rq_local[h])
   `rq_local` has qmin = 0: the ReLU is fused, local features are unsigned.
2. **Global feature** of head h: the mean of the local features over the candidates,
       glob[h, l] = div_round(sum_{i=1..N-1} local[i, h, l], N - 1)
   with div_round(a, b) = floor((2a + b) / (2b)) for b > 0: a / b rounded half up.
3. **Scoring MLP** per head on the concatenation f = [local[i, h, :], glob[h, :]] (2L features):
       hid[i, h, j] = requantize(sum_f f[f] * w_hidden[h, j, f] + b_hidden[h, j], rq_hidden[h])   (qmin = 0: ReLU)
       z[i, h]      = requantize(sum_j hid[i, h, j] * w_score[h, j] + b_score[h], rq_score[h])   (signed logit)
   z holds the real logit z / 2**logit_frac. The head's keep probability is the integer sigmoid
   (`cdsl.contract.ref.int_sigmoid`, PLAN): s[i, h] = int_sigmoid(z[i, h], logit_frac) in 0..256.
   A one-logit sigmoid is HeatViT's two-way (drop, keep) softmax: softmax_keep = sigmoid(z_keep - z_drop).
4. **Head weighting**: static integer head weights w_head[h] >= 0 with sum = 2**HEAD_WEIGHT_BITS (256):
       score[i] = (sum_h w_head[h] * s[i, h] + 128) >> 8          (0..256, 256 = 1.0)
   (our simplification of HeatViT's per-token head-importance branch: the weights are learned
   constants, normalised at export, so that no division per token is needed.)
5. **Keep rule**: candidate i is kept iff score[i] >= threshold (0..257; 257 keeps no candidate,
   0 keeps all). The class token is always kept. Kept tokens leave in their original order, class
   token first. count = 1 + the number of kept candidates (1..N).
6. **Package token**: the pruned candidates P (score < threshold) folded into one token, their
   score-weighted mean, per feature f:
       den = sum_{i in P} score[i];   num[f] = sum_{i in P} score[i] * x[i, f]
       package[f] = div_round(num[f], den)
   If every pruned score is 0 (den = 0) the weights are all 1 instead (the plain mean over P). A
   weighted mean of values of the input type lies within the input's range, so the package token has
   the input type. **When nothing is pruned there is no package token.**
7. **Output**: the kept tokens (count of them), then the package token if P is not empty:
   count + (count < N) tokens of D features, at most N. The output type is the input type (kept
   tokens are passed through unchanged).

A candidate that is itself the package token of an earlier selector is scored like any other (it
may be kept, or folded into the new package token).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Requant
from cdsl.contract.ref._tensor import as_int64
from cdsl.contract.ref.int_sigmoid import MAX_FRAC_BITS, ONE, int_sigmoid

HEAD_WEIGHT_BITS = 8  # the head weights sum to 2**HEAD_WEIGHT_BITS
SCORE_ONE = ONE  # a score of 1.0
MAX_THRESHOLD = SCORE_ONE + 1  # a threshold no score reaches: only the class token is kept
BIAS_BITS = 32


def div_round(num, den):
    """num / den rounded half up, floor((2 num + den) / (2 den)), elementwise on torch int64; den > 0."""
    num, den = torch.as_tensor(num, dtype=torch.int64), torch.as_tensor(den, dtype=torch.int64)
    if bool((den <= 0).any()):
        raise ValueError("div_round: the divisor must be positive")
    return torch.div(2 * num + den, 2 * den, rounding_mode="floor")


@dataclass(frozen=True)
class Selection:
    """What the selector makes of one sample's tokens."""

    tokens: torch.Tensor  # int64 [count + has_package, D]: kept tokens in order, then the package token
    count: int  # kept tokens, the class token included (1..N)
    keep: torch.Tensor  # bool [N]: kept (True for the class token)
    scores: torch.Tensor  # int64 [N]: the fused score of each token (SCORE_ONE for the class token)
    package: torch.Tensor | None  # int64 [D], or None when nothing was pruned

    @property
    def length(self) -> int:
        """Tokens in the output stream: count, plus one for the package token."""
        return int(self.tokens.shape[0])


@codec.serializable("token_selector")
@dataclass(frozen=True, eq=False)
class TokenSelector(codec.ArrayEq):
    """The selector's integers (see the module docstring). Arrays are int64 numpy arrays:
    w_local [H, L, d], b_local [H, L], w_hidden [H, J, 2L], b_hidden [H, J], w_score [H, J],
    b_score [H], head_weights [H]. Each requantization has multiplier and shift of shape [1] or [H]."""

    heads: int
    w_bits: int
    w_local: np.ndarray
    b_local: np.ndarray
    rq_local: Requant
    w_hidden: np.ndarray
    b_hidden: np.ndarray
    rq_hidden: Requant
    w_score: np.ndarray
    b_score: np.ndarray
    rq_score: Requant
    logit_frac: int
    head_weights: np.ndarray
    threshold: int

    # ------------------------------------------------------------ shapes

    @property
    def local_features(self) -> int:
        """L: local features per head."""
        return int(self.w_local.shape[1])

    @property
    def head_dim(self) -> int:
        """d: input features per head."""
        return int(self.w_local.shape[2])

    @property
    def hidden(self) -> int:
        """J: hidden units per head."""
        return int(self.w_hidden.shape[1])

    def check(self, n_tokens: int, dim: int, in_type, field: str = "payload.selector") -> None:
        """Raise ValueError("field: expected ...") unless the selector fits tokens [n_tokens, dim] of
        `in_type` (a `QType`)."""
        from cdsl.contract.ref import _checks as c
        from cdsl.contract.ref._weighted import check_requant

        c.at_least(n_tokens, f"{field}: tokens", 2)
        c.at_least(self.heads, f"{field}.heads", 1)
        if dim % self.heads:
            raise ValueError(f"{field}.heads: expected a divisor of the width {dim}, found {self.heads}")
        c.at_least(self.w_bits, f"{field}.w_bits", 2, 16)
        h, d = self.heads, dim // self.heads
        wlo, whi = -(1 << (self.w_bits - 1)), (1 << (self.w_bits - 1)) - 1
        blo, bhi = -(1 << (BIAS_BITS - 1)), (1 << (BIAS_BITS - 1)) - 1
        if self.w_local.ndim != 3 or self.w_hidden.ndim != 3:
            raise ValueError(f"{field}.w_local, w_hidden: expected [H, L, d] and [H, J, 2L] arrays")
        n_l, n_j = self.local_features, self.hidden
        c.at_least(n_l, f"{field}.w_local: local features", 1)
        c.at_least(n_j, f"{field}.w_hidden: hidden units", 1)
        c.int_array(self.w_local, f"{field}.w_local", shape=(h, n_l, d), lo=wlo, hi=whi)
        c.int_array(self.b_local, f"{field}.b_local", shape=(h, n_l), lo=blo, hi=bhi)
        c.int_array(self.w_hidden, f"{field}.w_hidden", shape=(h, n_j, 2 * n_l), lo=wlo, hi=whi)
        c.int_array(self.b_hidden, f"{field}.b_hidden", shape=(h, n_j), lo=blo, hi=bhi)
        c.int_array(self.w_score, f"{field}.w_score", shape=(h, n_j), lo=wlo, hi=whi)
        c.int_array(self.b_score, f"{field}.b_score", shape=(h,), lo=blo, hi=bhi)
        for name in ("rq_local", "rq_hidden"):
            rq = getattr(self, name)
            bits = (rq.qmax + 1).bit_length() - 1
            if rq.qmin != 0 or not 1 <= bits <= 16 or rq.qmax != (1 << bits) - 1:
                raise ValueError(f"{field}.{name}: expected qmin = 0 (a fused ReLU) and qmax = 2**b - 1, b in 1..16, "
                                 f"found {rq.qmin}, {rq.qmax}")
            check_requant(rq, f"{field}.{name}", channels=h, out_type=_Range(rq.qmin, rq.qmax))
        bits = (-self.rq_score.qmin).bit_length()
        if not 2 <= bits <= 16 or self.rq_score.qmin != -(1 << (bits - 1)) or self.rq_score.qmax != (1 << (bits - 1)) - 1:
            raise ValueError(f"{field}.rq_score: expected a signed range -2**(b-1)..2**(b-1)-1, b in 2..16, "
                             f"found {self.rq_score.qmin}, {self.rq_score.qmax}")
        check_requant(self.rq_score, f"{field}.rq_score", channels=h, out_type=_Range(self.rq_score.qmin, self.rq_score.qmax))
        c.at_least(self.logit_frac, f"{field}.logit_frac", 0, MAX_FRAC_BITS)
        c.int_array(self.head_weights, f"{field}.head_weights", shape=(h,), lo=0, hi=1 << HEAD_WEIGHT_BITS)
        if int(self.head_weights.sum()) != 1 << HEAD_WEIGHT_BITS:
            raise ValueError(f"{field}.head_weights: expected a sum of {1 << HEAD_WEIGHT_BITS}, "
                             f"found {int(self.head_weights.sum())}")
        c.at_least(self.threshold, f"{field}.threshold", 0, MAX_THRESHOLD)
        if in_type is not None and in_type.bits > 16:
            raise ValueError(f"{field}: expected tokens of at most 16 bits, found {in_type.bits}")

    # ------------------------------------------------------------ the arithmetic, stage by stage

    def _t(self, name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(getattr(self, name), dtype=np.int64))

    def local(self, x) -> torch.Tensor:
        """Tokens int64 [B, N, D] -> local features of the candidates, int64 [B, N-1, H, L] (step 1)."""
        xt = _tokens(x)
        b, n, dim = xt.shape
        xh = xt[:, 1:, :].reshape(b, n - 1, self.heads, dim // self.heads)
        acc = torch.einsum("bchk,hlk->bchl", xh, self._t("w_local")) + self._t("b_local")
        return self.rq_local.apply(acc, channel_dim=-2)

    def global_feature(self, local: torch.Tensor) -> torch.Tensor:
        """Local features [B, N-1, H, L] -> the global feature [B, H, L] (step 2)."""
        return div_round(local.sum(dim=1), local.shape[1])

    def logits(self, x) -> torch.Tensor:
        """Tokens [B, N, D] -> the heads' logits z, int64 [B, N-1, H] (step 3, before the sigmoid)."""
        loc = self.local(x)
        glob = self.global_feature(loc)
        feat = torch.cat([loc, glob[:, None].expand_as(loc)], dim=-1)
        acc = torch.einsum("bchf,hjf->bchj", feat, self._t("w_hidden")) + self._t("b_hidden")
        hid = self.rq_hidden.apply(acc, channel_dim=-2)
        acc = torch.einsum("bchj,hj->bch", hid, self._t("w_score")) + self._t("b_score")
        return self.rq_score.apply(acc, channel_dim=-1)

    def head_scores(self, x) -> torch.Tensor:
        """Tokens [B, N, D] -> each head's keep probability s, int64 [B, N-1, H] in 0..256."""
        return int_sigmoid(self.logits(x), self.logit_frac)

    def scores(self, x) -> torch.Tensor:
        """Tokens [B, N, D] -> fused scores int64 [B, N] in 0..256 (step 4); column 0, the class
        token, is SCORE_ONE (it is kept whatever its score)."""
        s = self.head_scores(x)
        fused = ((s * self._t("head_weights")).sum(dim=-1) + (1 << (HEAD_WEIGHT_BITS - 1))) >> HEAD_WEIGHT_BITS
        return torch.cat([torch.full_like(fused[:, :1], SCORE_ONE), fused], dim=1)

    def keep(self, x) -> torch.Tensor:
        """Tokens [B, N, D] -> bool [B, N]: kept (step 5)."""
        sc = self.scores(x)
        kept = sc >= self.threshold
        kept[:, 0] = True
        return kept

    # ------------------------------------------------------------ the whole selector

    def select(self, x, keep=None) -> list[Selection]:
        """Tokens int64 [B, N, D] (or one sample [N, D]) -> one `Selection` per sample (steps 5-7).
        `keep` (bool [B, N], training only) replaces step 5's threshold decisions with given ones (the
        class token is kept whatever it says): the training forward keeps the tokens its sampled
        policy kept, and steps 6-7 follow from them as always."""
        xt = _tokens(x)
        scores = self.scores(xt)
        if keep is not None:
            keep = torch.as_tensor(keep, dtype=torch.bool).reshape(xt.shape[0], xt.shape[1])
        out = []
        for b in range(xt.shape[0]):
            kept = (scores[b] >= self.threshold) if keep is None else keep[b].clone()
            kept[0] = True
            pruned = ~kept
            package = None
            tokens = xt[b][kept]
            if bool(pruned.any()):
                w = scores[b][pruned]
                if int(w.sum()) == 0:
                    w = torch.ones_like(w)
                package = div_round((w[:, None] * xt[b][pruned]).sum(dim=0), w.sum())
                tokens = torch.cat([tokens, package[None]], dim=0)
            out.append(Selection(tokens=tokens, count=int(kept.sum()), keep=kept, scores=scores[b], package=package))
        return out

    def select_padded(self, x) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens [B, N, D] -> (tokens [B, N, D], lengths [B], counts [B]): each sample's output tokens
        (`Selection.tokens`) in its first `lengths[b]` rows, zeros after them; counts as in `Selection`."""
        xt = _tokens(x)
        sel = self.select(xt)
        out = torch.zeros_like(xt)
        for b, s in enumerate(sel):
            out[b, : s.length] = s.tokens
        return (out, torch.tensor([s.length for s in sel], dtype=torch.int64),
                torch.tensor([s.count for s in sel], dtype=torch.int64))


@dataclass(frozen=True)
class _Range:
    """The (qmin, qmax) a requantization must have (check_requant compares them with an output type's)."""

    qmin: int
    qmax: int


def _tokens(x) -> torch.Tensor:
    xt = as_int64(x, what="token selector input")
    if xt.dim() == 2:
        xt = xt[None]
    if xt.dim() != 3 or xt.shape[1] < 2:
        raise ValueError(f"token selector: expected tokens [B, N, D] with N >= 2, got {tuple(xt.shape)!r}")
    return xt
