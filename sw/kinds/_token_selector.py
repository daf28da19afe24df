"""The training twin of the HeatViT-style token selector in front of an `@tokens` encoder.

The integer semantics are `cdsl.contract.ref.token_selector.TokenSelector` (the vit-hw reference);
this module trains the float parameters behind it and exports them into that payload.

Float surrogate (the gradient path), per head h of d = D / H features, L = J = max(1, d / 2):
    local  = relu(x_h @ w_local[h].T + b_local[h])             8-bit unsigned activation quantizer
    glob   = mean of local over the candidates
    hidden = relu([local, glob] @ w_hidden[h].T + b_hidden[h])  8-bit unsigned activation quantizer
    z      = hidden @ w_score[h] + b_score[h]                   on the logit grid 2**-LOGIT_FRAC
    s_h    = sigmoid(z);  score = sum_h softmax(head_logits)_h * s_h
Keep decisions while training: hard Gumbel-softmax, straight through (DynamicViT's
`F.gumbel_softmax(hard=True)`), on logits centred so that the expected share of keeps over the batch is `keep` (`keep_offset`), divided by a
temperature that anneals from TAU_START to TAU_END over the selector's epochs (`policy`); the ratio
loss (`regularizer`) pulls the sampled keep ratio and the scores' level to the spec's `keep`. The
encoder's surrogate attention masks the dropped keys (DynamicViT's softmax with policy) and appends the
package token, the score-weighted mean of the dropped candidates. (Uncentred sampling at temperature 1,
DynamicViT's as published, let the task loss pull the sampled keep ratio far above `keep` on small
networks: the network trained near keep 0.9 and ran at 0.5 — see README, "Token selection".)

The forward value, with quantization on, is the integer reference (see `cdsl.sw.kinds._vit`): the
selector exported from the current state (`export(in_scale)`) picks the tokens. Its threshold is our
choice, not HeatViT's fixed 0.5: a moving average (momentum THRESHOLD_MOMENTUM) of the integer score
that keeps the spec's share of the candidates in each training batch, so the measured keep ratio at
inference lands near `keep`. Weights are quantized per head to the encoder's `@quant(w=...)` bits. Every candidate starts with
keep probability `keep`; the parameters learn GAIN times faster than the backbone's (see GAIN).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cdsl.contract.ref._vit import ACC_BOUND
from cdsl.contract.ref.token_selector import HEAD_WEIGHT_BITS, MAX_THRESHOLD, SCORE_ONE, TokenSelector
from cdsl.sw.kinds._vit import requant, scale_of
from cdsl.sw.layers import ActQuant, WeightQuant, fake_quant, round_half_up

LOGIT_FRAC = 8  # z holds the logit * 2**8
LOGIT_BITS = 12  # |logit| < 8
FEATURE_BITS = 8  # local and hidden features: unsigned
RATIO_WEIGHT = 2.0  # DynamicViT's ratio_weight
THRESHOLD_MOMENTUM = 0.9
# The selector trains in a short late stage at the end of a cosine schedule: its parameters are
# stored divided by GAIN and used times GAIN, so that Adam's steps (about lr each) move them GAIN
# times faster than the backbone's, without a learning rate of their own.
GAIN = 30.0
# Gumbel temperature of the training decisions: geometric from TAU_START at the selector's first
# epoch to TAU_END at the last (see `SelectorTwin.policy`).
TAU_START = 1.0
TAU_END = 0.05


class SelectorTwin(nn.Module):
    def __init__(self, *, dim: int, heads: int, keep: float, w_bits: int, act_mode: str):
        super().__init__()
        d = dim // heads
        n_l = n_j = max(1, d // 2)
        self.heads, self.keep_target = heads, float(keep)
        g = 1.0 / GAIN  # parameters are stored divided by GAIN (see GAIN)
        self.w_local = nn.Parameter(g * torch.randn(heads, n_l, d) / math.sqrt(d))
        self.b_local = nn.Parameter(torch.zeros(heads, n_l))
        self.w_hidden = nn.Parameter(g * torch.randn(heads, n_j, 2 * n_l) / math.sqrt(2 * n_l))
        self.b_hidden = nn.Parameter(torch.zeros(heads, n_j))
        self.w_score = nn.Parameter(g * torch.randn(heads, n_j) / math.sqrt(n_j))
        # every token starts with keep probability `keep` (the ratio loss's target)
        k = min(max(float(keep), 0.01), 0.99)
        self.b_score = nn.Parameter(torch.full((heads,), g * math.log(k / (1 - k))))
        self.head_logits = nn.Parameter(torch.zeros(heads))
        self.wq = nn.ModuleDict({n: WeightQuant(bits=w_bits, channels=heads, per_channel=True, learned=False)
                                 for n in ("local", "hidden", "score")})
        for q in self.wq.values():  # max-abs scales at every step: nothing to calibrate
            q.calibrated.fill_(True)
        self.a_local = ActQuant(bits=FEATURE_BITS, signed=False, mode=act_mode)
        self.a_hidden = ActQuant(bits=FEATURE_BITS, signed=False, mode=act_mode)
        # The selector often starts in a later stage than quantization (a pruning stage after a
        # plain one): its feature quantizers observe its first training batch themselves instead of
        # asking the network to calibrate again (which would reset every other scale).
        for q in (self.a_local, self.a_hidden):
            q.calibrated.fill_(True)
        self.register_buffer("trained", torch.tensor(False))
        self.register_buffer("threshold_ema", torch.tensor(-1.0))
        self.last_keep: torch.Tensor | None = None
        self.last_score: torch.Tensor | None = None
        self.tau = TAU_START
        self.first_epoch: int | None = None  # the first training epoch with the selector on
        self.kept = {True: [0.0, 0], False: [0.0, 0]}  # training / evaluating: (candidates kept, candidates)

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        """Called before each epoch in which the selector trains: sets the Gumbel temperature."""
        if self.first_epoch is None:
            self.first_epoch = epoch
        frac = min(1.0, (epoch - self.first_epoch) / max(1, total_epochs - 1 - self.first_epoch))
        self.tau = TAU_START * (TAU_END / TAU_START) ** frac

    def p(self, name: str) -> torch.Tensor:
        """A parameter's value (stored divided by GAIN)."""
        return getattr(self, name) * GAIN

    # ------------------------------------------------------------ float surrogate

    def _fq(self, name: str, w: torch.Tensor) -> torch.Tensor:
        q = self.wq[name]
        s = q.effective_scale(w)
        return q.codes(w, s) * s.reshape((-1,) + (1,) * (w.dim() - 1))

    def scores(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Float tokens [B, N, D] -> the candidates' keep probabilities [B, N-1] (the surrogate).
        `valid` (bool [B, N-1]): the candidates each sample really holds (behind an earlier selector;
        default all): the global feature averages over those only."""
        first = not bool(self.trained) and (self.training or self.a_local.observing)
        if first:
            self.a_local.observing = self.a_hidden.observing = True
        try:
            return self._scores(x, valid)
        finally:
            if first:
                self.a_local.observing = self.a_hidden.observing = False
                if self.training:
                    self.trained.fill_(True)

    def _scores(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        b, n, dim = x.shape
        xh = x[:, 1:].reshape(b, n - 1, self.heads, dim // self.heads)
        local, _ = self.a_local(torch.einsum("bchk,hlk->bchl", xh, self._fq("local", self.p("w_local")))
                                + self.p("b_local"))
        if valid is None:
            glob = local.mean(dim=1, keepdim=True).expand_as(local)
        else:
            v = valid.to(local.dtype)[:, :, None, None]
            glob = ((local * v).sum(dim=1, keepdim=True) / v.sum(dim=1, keepdim=True).clamp(min=1)).expand_as(local)
        feat = torch.cat([local, glob], dim=-1)
        hid, _ = self.a_hidden(torch.einsum("bchf,hjf->bchj", feat, self._fq("hidden", self.p("w_hidden")))
                               + self.p("b_hidden"))
        z = torch.einsum("bchj,hj->bch", hid, self._fq("score", self.p("w_score"))) + self.p("b_score")
        lim = 1 << (LOGIT_BITS - 1)
        z = fake_quant(z, torch.tensor(2.0 ** -LOGIT_FRAC), -lim, lim - 1)
        return (torch.sigmoid(z) * torch.softmax(self.head_logits, dim=0)).sum(dim=-1)

    def policy(self, x: torch.Tensor, threshold: float,
               valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(keep mask of the candidates [B, N-1] in {0, 1}, their scores [B, N-1]). `valid` (bool
        [B, N-1], default all): the candidates each sample holds; the others are never kept, and
        neither the batch's keep share nor the ratio loss counts them.

        While training: hard Gumbel-softmax, straight through, with keep probability
        sigmoid((logit(score) - c) / tau), where c (`keep_offset`) makes the batch's expected share of
        keeps `keep`. So centred, the decisions rank the tokens as the inference threshold (a batch
        quantile, see `observe`) does and keep about `keep` of them whatever the scores' level and
        spread, so the network trains at the keep ratio it will run at; tau anneals (see
        `start_epoch`) so the decisions end as deterministic as inference's. Otherwise: the threshold."""
        score = self.scores(x, valid)
        v = torch.ones_like(score) if valid is None else valid.to(score.dtype)
        if self.training and self.keep_target >= 1.0:
            mask = torch.ones_like(score)
            self.last_score = None
        elif self.training:
            eps = 1e-6
            logit = torch.log(score + eps) - torch.log(1 - score + eps)
            centred = logit - keep_offset(logit if valid is None else logit[valid], self.keep_target, self.tau)
            both = torch.stack([centred, torch.zeros_like(centred)], dim=-1)
            mask = F.gumbel_softmax(both / self.tau, tau=1.0, hard=True)[..., 0]
            self.last_score = score if valid is None else score[valid]
        else:
            mask = (score * SCORE_ONE >= threshold).to(score.dtype)
            self.last_score = None
        mask = mask * v
        self.last_keep = (mask, v)
        kept = self.kept[self.training]
        kept[0] += float(mask.detach().sum())
        kept[1] += float(v.sum())
        return mask, score

    def take_keep_ratios(self) -> tuple[float | None, float | None]:
        """(share of candidates kept while training, while evaluating) since the last call."""
        out = tuple(k / n if n else None for k, n in (self.kept[True], self.kept[False]))
        self.kept = {True: [0.0, 0], False: [0.0, 0]}
        return out

    def regularizer(self) -> torch.Tensor | None:
        """RATIO_WEIGHT * ((sampled keep ratio - keep)**2 + (mean score - keep)**2). The first term is
        DynamicViT's ratio loss. The second holds the scores' level near `keep`: the centred decisions
        are blind to it, and left free it drifts to where the sigmoid saturates and the 8-bit integer
        score can no longer tell the tokens apart."""
        if self.last_keep is None:
            return None
        mask, v = self.last_keep
        ratio = mask.sum(dim=1) / v.sum(dim=1).clamp(min=1)
        loss = ((ratio - self.keep_target) ** 2).mean()
        if self.last_score is not None:
            loss = loss + (self.last_score.mean() - self.keep_target) ** 2
        self.last_keep = self.last_score = None
        return RATIO_WEIGHT * loss

    # ------------------------------------------------------------ integers

    def threshold(self) -> int:
        if self.keep_target >= 1.0:
            return 0
        t = float(self.threshold_ema)
        return int(min(max(round(t), 0), MAX_THRESHOLD)) if t >= 0 else SCORE_ONE // 2

    @torch.no_grad()
    def observe(self, cand_scores: torch.Tensor) -> None:
        """While training: move the threshold toward the integer score that keeps `keep` of this
        batch's candidates (cand_scores: the integer selector's scores of every candidate of the batch,
        the class tokens left out, any shape)."""
        if self.keep_target >= 1.0:
            return
        cand = cand_scores.reshape(-1).sort(descending=True).values
        k = min(max(round(self.keep_target * cand.numel()), 1), cand.numel())
        t = int(cand[k - 1])  # keeps at least k (more on ties); t + 1 fewer than k: take the nearer
        want = self.keep_target * cand.numel()
        if abs(int((cand >= t + 1).sum()) - want) < abs(int((cand >= t).sum()) - want):
            t += 1
        t = float(t)
        if float(self.threshold_ema) < 0:
            self.threshold_ema.fill_(t)
        else:
            self.threshold_ema.mul_(THRESHOLD_MOMENTUM).add_((1 - THRESHOLD_MOMENTUM) * t)

    @torch.no_grad()
    def export(self, in_scale: float) -> TokenSelector:
        """The integer selector for tokens on a grid of `in_scale`, from the current state."""
        s_loc, s_hid = scale_of(self.a_local), scale_of(self.a_hidden)
        ws = {}
        for name, w in (("local", self.p("w_local")), ("hidden", self.p("w_hidden")), ("score", self.p("w_score"))):
            q = self.wq[name]
            s = q.effective_scale(w).detach().double()
            ws[name] = (q.codes(w, s.float()).detach().to(torch.int64).numpy(), s)

        def bias(b, unit):
            shape = (-1,) + (1,) * (b.dim() - 1)
            return round_half_up(b.detach().double() / unit.reshape(shape)).clamp(
                -ACC_BOUND, ACC_BOUND - 1).to(torch.int64).numpy()

        u_local = in_scale * ws["local"][1]
        u_hidden = s_loc * ws["hidden"][1]
        u_score = s_hid * ws["score"][1]
        lim = 1 << (LOGIT_BITS - 1)
        fmax = (1 << FEATURE_BITS) - 1
        return TokenSelector(
            heads=self.heads, w_bits=self.wq["local"].bits,
            w_local=ws["local"][0], b_local=bias(self.p("b_local"), u_local),
            rq_local=requant((u_local / s_loc).numpy(), 0, fmax),
            w_hidden=ws["hidden"][0], b_hidden=bias(self.p("b_hidden"), u_hidden),
            rq_hidden=requant((u_hidden / s_hid).numpy(), 0, fmax),
            w_score=ws["score"][0], b_score=bias(self.p("b_score"), u_score),
            rq_score=requant((u_score * 2.0 ** LOGIT_FRAC).numpy(), -lim, lim - 1),
            logit_frac=LOGIT_FRAC, head_weights=head_weights(self.head_logits.detach()),
            threshold=self.threshold())


def keep_offset(logit: torch.Tensor, keep: float, tau: float) -> torch.Tensor:
    """The offset c with mean(sigmoid((logit - c) / tau)) = keep over the batch (bisection to 1e-6),
    so the expected share of sampled keeps is `keep` whatever the logits' level, spread and the
    temperature. Its gradient is the mean logit's: a common shift of the logits shifts c by as much,
    so the centred logits carry no gradient toward a level (the ratio loss's level term holds it)."""
    flat = logit.detach().reshape(-1)
    lo, hi = flat.min() - 40 * tau, flat.max() + 40 * tau
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(torch.sigmoid((flat - mid) / tau).mean()) > keep:
            lo = mid
        else:
            hi = mid
    mean = logit.mean()
    return (lo + hi) / 2 + (mean - mean.detach())


def head_weights(logits: torch.Tensor) -> np.ndarray:
    """softmax(logits) as non-negative integers summing to 2**HEAD_WEIGHT_BITS (largest remainders)."""
    total = 1 << HEAD_WEIGHT_BITS
    share = torch.softmax(logits.double(), dim=0).numpy() * total
    w = np.floor(share).astype(np.int64)
    for i in np.argsort(-(share - w), kind="stable")[: total - int(w.sum())]:
        w[i] += 1
    return w
