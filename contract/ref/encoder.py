"""Integer reference of `encoder(x, heads=H, mlp=M)`: a pre-norm transformer block on 8-bit tokens.

For tokens x [N, D] (8-bit codes; N may differ from one inference to the next), with every
intermediate requantized onto its own 8-bit grid (scales fixed at export):

    h  = norm1(x)                                     I-LayerNorm  (cdsl.contract.ref.int_layernorm)
    q, k, v = split(qkv(h))                           integer linear, one grid each for q, k and v
    p  = shiftmax(q_h @ k_h.T, x0)    per head        Shiftmax     (cdsl.contract.ref.int_softmax),
                                                      x0 = floor(-sqrt(D/H) / (s_q * s_k)): 1/sqrt(d) folded in
    o  = requantize(p @ v_h, attn)    heads concatenated
    x1 = add(x, proj(o))                              the residual join (cdsl.contract.ref.add)
    f  = fc1(norm2(x1))
    g  = requantize(int_gelu(f, cut, c), gelu)        i-GELU       (cdsl.contract.ref.int_gelu)
    y  = add(x1, fc2(g))

With an `@tokens` selector (`selector`, the vit-hw reference `cdsl.contract.ref.token_selector`),
the block first selects each sample's tokens: the class token, the kept candidates in their order
and the package token (when something was pruned), `length` tokens in all, and runs on those only,
so the number of tokens varies per sample. The output is [N, D] with the block's `length` output
tokens first and zero rows after them (the class token stays at row 0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Payload, Requant, Setting
from cdsl.contract.ref import _checks as c
from cdsl.contract.ref._tensor import as_int64
from cdsl.contract.ref._vit import IntLinear, IntNorm, requant_ok
from cdsl.contract.ref.add import AddPayload, add
from cdsl.contract.ref.int_gelu import int_gelu
from cdsl.contract.ref.int_softmax import shiftmax
from cdsl.contract.ref.token_selector import MAX_THRESHOLD, TokenSelector


def _add(p: AddPayload, a, b):
    return add(a, b, mult_a=p.mult_a, mult_b=p.mult_b, shift=p.shift, qmin=p.qmin, qmax=p.qmax)


@codec.serializable("encoder")
@dataclass(frozen=True, eq=False)
class EncoderPayload(Payload):
    """One pre-norm encoder block in integers (see the module docstring)."""

    heads: int
    norm1: IntNorm
    qkv: IntLinear
    softmax_x0: int
    attn: Requant  # p @ v (scale 2**-7 * s_v) onto the grid of o
    proj: IntLinear
    add1: AddPayload
    norm2: IntNorm
    fc1: IntLinear
    gelu_cut: int
    gelu_c: int
    gelu: Requant  # i-GELU's output onto the grid of g
    fc2: IntLinear
    add2: AddPayload
    selector: TokenSelector | None = None

    def check(self, layer):
        (shape,) = layer.in_shapes
        _, d = shape
        c.same_shape(layer, tuple(shape))
        if self.heads < 1 or d % self.heads:
            raise ValueError(f"payload.heads: expected a divisor of {d}, found {self.heads}")
        m = self.fc1.weight.shape[0]
        self.norm1.check("payload.norm1", d)
        self.qkv.check("payload.qkv", d, 3 * d)
        c.at_least(self.softmax_x0, "payload.softmax_x0", -(1 << 30), -1)
        requant_ok(self.attn, "payload.attn", 1)
        self.proj.check("payload.proj", d, d)
        self.norm2.check("payload.norm2", d)
        self.fc1.check("payload.fc1", d, m)
        c.at_least(self.gelu_cut, "payload.gelu_cut", 1)
        c.at_least(self.gelu_c, "payload.gelu_c", 1)
        requant_ok(self.gelu, "payload.gelu", 1)
        self.fc2.check("payload.fc2", m, d)
        if self.selector is not None:
            self.selector.check(shape[0], d, layer.in_types[0])

    def settings(self, layer):
        """With a selector: its keep `threshold`, a runtime value (the hardware's register)."""
        if self.selector is None:
            return ()
        return (Setting("threshold", 0, MAX_THRESHOLD, self.selector.threshold,
                        "keep threshold of the token scores, in 1/256 (257: only the class token)"),)

    def at(self, settings) -> "EncoderPayload":
        """The payload with its runtime settings applied (the selector's threshold)."""
        t = (settings or {}).get("threshold")
        if self.selector is None or t is None or t == self.selector.threshold:
            return self
        return dataclasses.replace(self, selector=dataclasses.replace(self.selector, threshold=int(t)))

    def run(self, layer, inputs, settings):
        (x,) = inputs
        return encoder(self.at(settings), x)


def encoder(p: EncoderPayload, x, keep=None) -> torch.Tensor:
    """The layer on int64 tokens [B, N, D] -> [B, N, D]: the selector (if any), then the block.
    `keep`: the selector's keep decisions given instead of its threshold's (training only)."""
    x = as_int64(x, what="encoder input")
    if p.selector is None:
        return block(p, x)
    selections = p.selector.select(x, keep)
    out = torch.zeros_like(x)
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(selections):
        by_length.setdefault(s.length, []).append(i)
    for length, rows in by_length.items():  # samples with as many tokens run together
        out[rows, :length] = block(p, torch.stack([selections[i].tokens for i in rows]))
    return out


def block(p: EncoderPayload, x: torch.Tensor) -> torch.Tensor:
    """The block proper on int64 tokens [B, n, D] -> [B, n, D] (any n >= 1)."""
    b, n, d = x.shape
    hd = d // p.heads
    qkv = p.qkv(p.norm1(x)).reshape(b, n, 3, p.heads, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    att = shiftmax(q @ k.transpose(-2, -1), p.softmax_x0)
    o = p.attn.apply((att @ v).transpose(1, 2).reshape(b, n, d), channel_dim=-1)
    x1 = _add(p.add1, x, p.proj(o))
    g = p.gelu.apply(int_gelu(p.fc1(p.norm2(x1)), p.gelu_cut, p.gelu_c), channel_dim=-1)
    return _add(p.add2, x1, p.fc2(g))


def kept_counts(intmodel, trace, settings=None) -> dict[str, np.ndarray]:
    """Each sample's output token count (class + kept + package token) of every encoder layer with a
    selector, from the golden trace (`cdsl.contract.golden.golden(..., trace=True)`'s dict, which may
    also hold the model inputs): int64 [B] per layer name. The selector is replayed on the layer's
    traced input (the first `count` rows of it when an earlier selector shortened it), at the runtime
    `settings` the trace was made with (per layer; the thresholds)."""
    from cdsl.contract.intmodel import with_settings

    checked = intmodel.check_settings(settings)
    intmodel = dataclasses.replace(intmodel, layers=tuple(
        dataclasses.replace(lay, payload=lay.payload.at(with_settings(lay, checked)))
        if isinstance(lay.payload, EncoderPayload) else lay for lay in intmodel.layers))
    counts = _token_counts(intmodel, trace)
    return {lay.name: counts[lay.name] for lay in intmodel.layers
            if isinstance(lay.payload, EncoderPayload) and lay.payload.selector is not None}


def _token_counts(intmodel, trace) -> dict[str, np.ndarray]:
    """int64 [B] token counts of every encoder's output whose count an earlier (or its own) selector decided."""
    counts: dict[str, np.ndarray] = {}
    for lay in intmodel.layers:
        if not isinstance(lay.payload, EncoderPayload):
            continue
        src = lay.inputs[0]
        n_in = counts.get(src)
        if lay.payload.selector is None:
            if n_in is not None:
                counts[lay.name] = n_in
            continue
        if src not in trace:
            raise ValueError(f"kept_counts: the trace has no tensor {src!r} (the input of layer {lay.name!r})")
        x = as_int64(trace[src], what=f"trace[{src!r}]")
        n_in = np.full(x.shape[0], x.shape[1], dtype=np.int64) if n_in is None else n_in
        counts[lay.name] = np.array([lay.payload.selector.select(x[b, : int(n_in[b])])[0].length
                                     for b in range(x.shape[0])], dtype=np.int64)
    return counts
