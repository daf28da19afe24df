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

Progressive pruning: an encoder may read a pruned encoder's output. Its input then holds n_b <= N
tokens in sample b (the first n_b rows, zero rows after them); the token counts travel beside the
tensors in the golden model (`Payload.run_tokens`, `cdsl.contract.golden`), and the block (and its
own selector, which scores only those n_b tokens) runs on the first n_b rows only. `kept_counts`
replays them from a golden trace.
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
from cdsl.contract.ref._vit import BitserialMapping, IntLinear, IntNorm, requant_ok
from cdsl.contract.ref.add import AddPayload, add
from cdsl.contract.ref.int_gelu import int_gelu
from cdsl.contract.ref.int_softmax import shiftmax
from cdsl.contract.ref.token_selector import MAX_THRESHOLD, TokenSelector


def _add(p: AddPayload, a, b):
    return add(a, b, mult_a=p.mult_a, mult_b=p.mult_b, shift=p.shift, qmin=p.qmin, qmax=p.qmax)


@codec.serializable("encoder")
@dataclass(frozen=True, eq=False)
class EncoderPayload(Payload, BitserialMapping):
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
        self.check_lanes(min(d, m))
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

    def run_tokens(self, layer, inputs, counts, settings):
        (x,), (n_in,) = inputs, counts
        run = encode(self.at(settings), x, lengths=n_in)
        return run.out, run.lengths


@dataclass(frozen=True)
class EncoderRun:
    """What one encoder layer did to a batch."""

    out: torch.Tensor  # int64 [B, N, D]: each sample's output tokens first, zero rows after them
    lengths: torch.Tensor | None  # int64 [B]: output tokens per sample; None when every sample has all N
    selections: list | None  # the selector's `Selection` per sample (None without a selector)


def encoder(p: EncoderPayload, x, keep=None, lengths=None) -> torch.Tensor:
    """The layer on int64 tokens [B, N, D] -> [B, N, D]: the selector (if any), then the block.
    `keep`: the selector's keep decisions given instead of its threshold's (training only);
    `lengths` (int [B]): the tokens each sample holds (its first rows; default all N)."""
    return encode(p, x, keep, lengths).out


def encode(p: EncoderPayload, x, keep=None, lengths=None) -> EncoderRun:
    """`encoder`, with the output token counts and the selections."""
    x = as_int64(x, what="encoder input")
    b, n, _ = x.shape
    n_in = _lengths(lengths, b, n)
    if p.selector is None and n_in is None:
        return EncoderRun(block(p, x), None, None)
    n_in = torch.full((b,), n, dtype=torch.int64) if n_in is None else n_in
    keep = None if keep is None else torch.as_tensor(keep, dtype=torch.bool).reshape(b, n)
    tokens: list[torch.Tensor | None] = [None] * b
    selections: list | None = [None] * b if p.selector is not None else None
    for m in sorted(set(n_in.tolist())):  # samples with as many input tokens select together
        rows = torch.nonzero(n_in == m).flatten().tolist()
        if p.selector is None:
            for i in rows:
                tokens[i] = x[i, :m]
            continue
        chosen = p.selector.select(x[rows, :m], None if keep is None else keep[rows, :m])
        for i, s in zip(rows, chosen):
            tokens[i], selections[i] = s.tokens, s
    out = torch.zeros_like(x)
    out_len = torch.tensor([t.shape[0] for t in tokens], dtype=torch.int64)
    for length in sorted(set(out_len.tolist())):  # samples with as many tokens run together
        rows = torch.nonzero(out_len == length).flatten().tolist()
        out[rows, :length] = block(p, torch.stack([tokens[i] for i in rows]))
    return EncoderRun(out, out_len, selections)


def _lengths(lengths, b: int, n: int) -> torch.Tensor | None:
    if lengths is None:
        return None
    t = torch.as_tensor(lengths).to(torch.int64).reshape(-1)
    if t.shape != (b,) or int(t.min()) < 1 or int(t.max()) > n:
        raise ValueError(f"encoder: expected {b} token counts in 1..{n}, got {t.tolist()!r}")
    return t


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
    """Each sample's token count of every token stream that a selector shortened: for every encoder
    layer with a selector (class + kept + package token) and every encoder after one (the count it
    read), int64 [B] per layer name, in layer order. From the golden trace
    (`cdsl.contract.golden.golden(..., trace=True)`'s dict, which may also hold the model inputs):
    each selector is replayed on its layer's traced input, the first n_b rows of it when an earlier
    selector shortened it to n_b (the golden model's own rule, `encode`), at the runtime `settings`
    the trace was made with (per layer: the thresholds)."""
    counts, _ = _replay(_at_settings(intmodel, settings), trace)
    return counts


def _at_settings(intmodel, settings):
    """`intmodel` with every encoder's runtime settings applied (its selector's threshold)."""
    from cdsl.contract.intmodel import with_settings

    if not settings:
        return intmodel
    checked = intmodel.check_settings(settings)
    return dataclasses.replace(intmodel, layers=tuple(
        dataclasses.replace(lay, payload=lay.payload.at(with_settings(lay, checked)))
        if isinstance(lay.payload, EncoderPayload) else lay for lay in intmodel.layers))


def selections(intmodel, trace) -> dict[str, list]:
    """Each selector layer's `Selection` per sample (the same replay as `kept_counts`), and through
    them each sample's input token count (`len(s.keep)`) and kept count (`s.count`)."""
    return _replay(intmodel, trace)[1]


def _replay(intmodel, trace) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    counts: dict[str, np.ndarray] = {}
    chosen: dict[str, list] = {}
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
        sel: list = [None] * x.shape[0]
        for m in sorted(set(n_in.tolist())):
            rows = np.nonzero(n_in == m)[0].tolist()
            for i, s in zip(rows, lay.payload.selector.select(x[rows, :m])):
                sel[i] = s
        chosen[lay.name] = sel
        counts[lay.name] = np.array([s.length for s in sel], dtype=np.int64)
    return counts, chosen
