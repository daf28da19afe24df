"""The token selector's reference against an independent plain-math statement: Python integers and
Fractions, loop by loop (no torch, no `requantize`, no `int_sigmoid`), and its corner cases."""

import dataclasses
from fractions import Fraction
from math import floor

import numpy as np
import pytest
import torch

from tb.selector_cases import random_selector, random_tokens
from test_int_sigmoid import plan

from cdsl.contract.intmodel import QType, Requant
from cdsl.contract.ref.token_selector import MAX_THRESHOLD, SCORE_ONE, TokenSelector

HALF = Fraction(1, 2)


def rq(acc: int, r: Requant, h: int) -> int:
    m = int(r.multiplier[h if r.multiplier.shape[0] > 1 else 0])
    s = int(r.shift[h if r.shift.shape[0] > 1 else 0])
    return min(max(floor(Fraction(acc * m, 2 ** s) + HALF), r.qmin), r.qmax)


def sigmoid256(z: int, frac: int) -> int:
    pos = floor(256 * plan(Fraction(abs(z), 2 ** frac)) + HALF)
    return pos if z >= 0 else 256 - pos


def plain_select(sel: TokenSelector, x: list[list[int]], keep: list[bool] | None = None):
    """(output tokens, count, scores) of one sample, in Python integers; `keep`: given decisions
    instead of the threshold's (the class token kept regardless)."""
    n, dim = len(x), len(x[0])
    hh, d, nl, nj = sel.heads, dim // sel.heads, sel.local_features, sel.hidden
    w_l, b_l, w_h, b_h, w_s, b_s = (getattr(sel, f).tolist() for f in
                                    ("w_local", "b_local", "w_hidden", "b_hidden", "w_score", "b_score"))
    local = [[[rq(sum(x[i][h * d + k] * w_l[h][l][k] for k in range(d)) + b_l[h][l], sel.rq_local, h)
               for l in range(nl)] for h in range(hh)] for i in range(1, n)]
    glob = [[floor(Fraction(sum(local[c][h][l] for c in range(n - 1)), n - 1) + HALF) for l in range(nl)]
            for h in range(hh)]
    scores = [SCORE_ONE]
    for c in range(n - 1):
        fused = 0
        for h in range(hh):
            feat = local[c][h] + glob[h]
            hid = [rq(sum(f * w for f, w in zip(feat, w_h[h][j])) + b_h[h][j], sel.rq_hidden, h) for j in range(nj)]
            z = rq(sum(v * w for v, w in zip(hid, w_s[h])) + b_s[h], sel.rq_score, h)
            fused += int(sel.head_weights[h]) * sigmoid256(z, sel.logit_frac)
        scores.append(floor(Fraction(fused, 256) + HALF))
    kept = [i for i in range(n) if i == 0 or (scores[i] >= sel.threshold if keep is None else keep[i])]
    pruned = [i for i in range(1, n) if i not in kept]
    out = [x[i] for i in kept]
    if pruned:
        weights = [scores[i] for i in pruned]
        if sum(weights) == 0:
            weights = [1] * len(pruned)
        out.append([floor(Fraction(sum(w * x[i][f] for w, i in zip(weights, pruned)), sum(weights)) + HALF)
                    for f in range(dim)])
    return out, len(kept), scores


CASES = [  # (N, D, heads, L, J)
    (17, 32, 2, 8, 8),
    (5, 6, 3, 1, 3),
    (2, 4, 1, 2, 2),
    (11, 12, 4, 3, 5),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_plain_math(case, seed):
    n, dim, heads, nl, nj = case
    rng = np.random.default_rng(seed)
    x = random_tokens(rng, 6, n, dim)
    x[0] = 127  # extremes
    x[1] = -128
    sel = random_selector(rng, x, heads=heads, local=nl, hidden=nj, threshold=int(rng.integers(60, 200)))
    sel.check(n, dim, QType(8, True, 0.1))
    got = sel.select(x)
    for b in range(x.shape[0]):
        want_tokens, want_count, want_scores = plain_select(sel, x[b].tolist())
        assert got[b].scores.tolist() == want_scores, f"seed={seed} sample {b}"
        assert got[b].tokens.tolist() == want_tokens, f"seed={seed} sample {b}"
        assert got[b].count == want_count
        assert got[b].length == want_count + (want_count < n)


def _selector(threshold: int, seed: int = 0, n: int = 9, dim: int = 8) -> tuple[TokenSelector, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = random_tokens(rng, 4, n, dim)
    return random_selector(rng, x, heads=2, local=3, hidden=4, threshold=threshold), x


def test_threshold_zero_keeps_everything_and_has_no_package_token():
    sel, x = _selector(0)
    for b, s in enumerate(sel.select(x)):
        assert s.count == x.shape[1] and s.package is None and torch.equal(s.tokens, x[b])


def test_unreachable_threshold_keeps_only_the_class_token():
    sel, x = _selector(MAX_THRESHOLD)
    for b, s in enumerate(sel.select(x)):
        assert s.count == 1 and s.length == 2 and torch.equal(s.tokens[0], x[b, 0])
        w = s.scores[1:]
        if int(w.sum()) > 0:  # the package token is the score-weighted mean of every candidate
            want = [floor(Fraction(int((w * x[b, 1:, f]).sum()), int(w.sum())) + HALF) for f in range(x.shape[2])]
            assert s.package.tolist() == want


def test_ties_at_the_threshold_are_kept():
    sel, x = _selector(128)
    scores = sel.scores(x)
    t = int(scores[0, 3])
    tied = dataclasses.replace(sel, threshold=t)
    s = tied.select(x[:1])[0]
    assert bool(s.keep[3]) and all(bool(k) == (int(v) >= t) for k, v in zip(s.keep[1:], scores[0, 1:]))
    above = dataclasses.replace(sel, threshold=t + 1).select(x[:1])[0]
    assert not bool(above.keep[3])


def test_zero_scores_fall_back_to_the_plain_mean():
    """Scores of 0 (logits saturated far negative): the package token is the unweighted mean."""
    sel, x = _selector(1)
    very_negative = dataclasses.replace(sel, b_score=np.full_like(sel.b_score, -(2 ** 31)),
                                        rq_score=dataclasses.replace(sel.rq_score, multiplier=np.array([1 << 20]),
                                                                     shift=np.array([0])))
    for b, s in enumerate(very_negative.select(x)):
        assert int(s.scores[1:].max()) == 0 and s.count == 1
        want = [floor(Fraction(int(x[b, 1:, f].sum()), x.shape[1] - 1) + HALF) for f in range(x.shape[2])]
        assert s.package.tolist() == want


def test_padded_form_and_codec_round_trip():
    from cdsl.contract import codec

    sel, x = _selector(128)
    out, lengths, counts = sel.select_padded(x)
    for b, s in enumerate(sel.select(x)):
        assert torch.equal(out[b, : s.length], s.tokens) and not out[b, s.length:].any()
        assert int(lengths[b]) == s.length and int(counts[b]) == s.count
    arrays: dict = {}
    back = codec.decode(codec.encode(sel, arrays, "sel"), arrays)
    assert back == sel and back.select(x)[0].tokens.tolist() == sel.select(x)[0].tokens.tolist()


@pytest.mark.parametrize("field, value, message", [
    ("threshold", MAX_THRESHOLD + 1, "threshold"),
    ("head_weights", np.array([100, 100]), "sum of 256"),
    ("heads", 3, "heads"),
    ("logit_frac", 17, "logit_frac"),
])
def test_check_names_the_field(field, value, message):
    sel, _ = _selector(128)
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(sel, **{field: value}).check(9, 8, QType(8, True, 0.1))


def test_check_refuses_a_local_requant_without_relu():
    sel, _ = _selector(128)
    bad = dataclasses.replace(sel, rq_local=dataclasses.replace(sel.rq_local, qmin=-128, qmax=127))
    with pytest.raises(ValueError, match="rq_local"):
        bad.check(9, 8, QType(8, True, 0.1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_given_keep_decisions_replace_the_threshold(seed):
    """Training passes its sampled decisions: those tokens are kept (the class token always), the rest
    folded into the package token with their scores, exactly as the plain statement does."""
    rng = np.random.default_rng(seed)
    n, dim = 9, 8
    x = random_tokens(rng, 4, n, dim)
    sel = random_selector(rng, x, heads=2, local=2, hidden=3, threshold=int(rng.integers(60, 200)))
    keep = rng.random((4, n)) < 0.5
    keep[:, 0] = False  # overridden: the class token is kept whatever the decision says
    keep[1, 1:] = True  # nothing pruned: no package token
    got = sel.select(torch.as_tensor(x), keep=torch.as_tensor(keep))
    for b in range(4):
        want_tokens, want_count, _ = plain_select(sel, x[b].tolist(), keep[b].tolist())
        assert got[b].tokens.tolist() == want_tokens, f"seed {seed} sample {b}"
        assert got[b].count == want_count == 1 + int(keep[b, 1:].sum()), f"seed {seed} sample {b}"
    assert got[1].package is None
