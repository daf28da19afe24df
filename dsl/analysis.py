"""Per-layer figures of a checked spec: parameters, MACs, bit widths, sparsity, hardware mapping.

`layer_stats(spec)` is what `cdsl check` prints; other passes may reuse it (e.g. cost reports).

Counting conventions
- `weights` are the entries of the layer's weight matrices (the compressible part; a conv kernel
  is a channels x (C*k*k) matrix); `other` holds biases, layer-norm scales and shifts, the class
  token and the position embeddings. `params = weights + other`.
- MACs per inference: dense K*N; conv2d C*k*k*N*Ho*Wo; patch_embed (patches)*C*P*P*D;
  encoder N*(3D*D + D*D + 2*D*M) + 2*N*N*D (attention scores and weighted sum), where N is the
  token count after a `@tokens` selector: 1 + ceil(keep*(N-1)) + 1 package token, at most N
  (the selector's own small scoring MLP is not counted); cls_head D*C. relu, sign, pools and
  flatten count 0 MACs.
- The compression ratio is float32 bits of all weights / compressed bits, where compressed bits
  are the weight width (32 if unquantized, 1 for @binary) times the nonzero weights
  (after @prune). Biases and other parameters are not part of either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import ir
from .checker import op_name, topo_order, weight_matrices

FLOAT_BITS = 32


@dataclass(frozen=True)
class LayerStats:
    name: str
    op: str  # source name: dense, conv2d, maxpool, ... ('input' for a model input)
    shape: tuple[int, ...]  # output shape
    weights: int  # weight-matrix entries
    other: int  # biases, norms, embeddings
    macs: int  # multiply-accumulates per inference
    w_bits: int | None  # weight width; None: float32 (or no weights)
    a_bits: int | None  # output activation width; None: float
    nonzero: int  # weights left after pruning
    sparsity: str  # '-', '50%', '2:4', 'block 4x4 50%'
    mapping: str  # 'parallel', 'bitserial(8 lanes)', 'cim 64x32 x 4 tiles', 'aqfp(group 16, T=16)', '-'
    tiles: int = 0  # CIM tiles (0 when not CIM-mapped)

    @property
    def params(self) -> int:
        return self.weights + self.other

    @property
    def float_bits(self) -> int:
        return FLOAT_BITS * self.weights

    @property
    def compressed_bits(self) -> int:
        return (self.w_bits if self.w_bits is not None else FLOAT_BITS) * self.nonzero


@dataclass(frozen=True)
class Totals:
    params: int
    weights: int
    nonzero: int
    macs: int
    float_bits: int
    compressed_bits: int

    @property
    def ratio(self) -> float:
        return self.float_bits / self.compressed_bits if self.compressed_bits else 1.0


def _tokens_after(n: int, tokens: ir.Tokens | None) -> int:
    if tokens is None:
        return n
    kept = math.ceil(tokens.keep * (n - 1))
    return min(n, 1 + kept + (1 if kept < n - 1 else 0))


def _other_params(op: ir.Op, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    if isinstance(op, ir.Dense):
        return op.units if op.bias else 0
    if isinstance(op, ir.Conv2d):
        return op.channels if op.bias else 0
    if isinstance(op, ir.PatchEmbed):
        n_tokens = out_shape[0]
        return op.dim + op.dim + n_tokens * op.dim  # bias, class token, position embeddings
    if isinstance(op, ir.Encoder):
        d = in_shape[1]
        return 2 * d + 3 * d + d + 2 * d + op.mlp + d  # ln1, qkv bias, proj bias, ln2, fc1 bias, fc2 bias
    if isinstance(op, ir.ClsHead):
        return 2 * in_shape[1] + op.classes  # norm, bias
    return 0


def _macs(lay: ir.Layer, in_shape: tuple[int, ...]) -> int:
    op = lay.op
    if isinstance(op, ir.Dense):
        return in_shape[0] * op.units
    if isinstance(op, ir.Conv2d):
        _, ho, wo = lay.shape
        return in_shape[0] * op.kernel * op.kernel * op.channels * ho * wo
    if isinstance(op, ir.PatchEmbed):
        patches = lay.shape[0] - 1
        return patches * in_shape[0] * op.patch * op.patch * op.dim
    if isinstance(op, ir.Encoder):
        n, d = in_shape
        n = _tokens_after(n, lay.annotations.tokens)
        return n * (3 * d * d + d * d + 2 * d * op.mlp) + 2 * n * n * d
    if isinstance(op, ir.ClsHead):
        return in_shape[1] * op.classes
    return 0


def _sparsity(p: ir.Prune | None, weights: int) -> tuple[int, str]:
    if p is None or weights == 0:
        return weights, "-"
    if p.pattern is ir.PrunePattern.NM:
        return weights * p.n // p.m, f"{p.n}:{p.m}"
    kept = weights - round(weights * p.sparsity)
    pct = f"{p.sparsity * 100:g}%"
    if p.pattern is ir.PrunePattern.BLOCK:
        return kept, f"block {p.block[0]}x{p.block[1]} {pct}"
    return kept, pct


def cim_tiles(cim: ir.Cim, w_bits: int, mats: list[tuple[int, int]]) -> int:
    """Tiles needed: each output's weight takes ceil(w/cell) adjacent columns of one tile,
    the inputs tile over rows."""
    slices = -(-w_bits // cim.cell)
    outs_per_tile = cim.cols // slices
    return sum(-(-fan_in // cim.rows) * -(-outs // outs_per_tile) for outs, fan_in in mats)


def layer_stats(spec: ir.Spec) -> list[LayerStats]:
    """One entry per model input and per layer, in source order."""
    m = spec.model
    out: list[LayerStats] = []
    a_bits: dict[str, int | None] = {}
    for inp in m.inputs:
        a_bits[inp.name] = inp.dtype.bits
        out.append(LayerStats(inp.name, "input", inp.shape, 0, 0, 0, None, inp.dtype.bits, 0, "-", "-"))
    # Activation widths flow through the graph: compute them in dependency order.
    for lay in topo_order(m):
        q = lay.annotations.quant
        if isinstance(lay.op, ir.Sign):
            a_bits[lay.name] = 1
        elif isinstance(lay.op, (ir.ReLU, ir.Pool, ir.Flatten)):
            a_bits[lay.name] = q.a if q is not None and q.a is not None else a_bits[lay.inputs[0]]
        else:
            a_bits[lay.name] = q.a if q is not None else None
    shapes = {i.name: i.shape for i in m.inputs} | {lay.name: lay.shape for lay in m.layers}
    for lay in m.layers:
        in_shape = shapes[lay.inputs[0]]
        a = lay.annotations
        mats = weight_matrices(lay.op, in_shape)
        weights = sum(r * c for r, c in mats)
        w_bits = None
        if mats:
            w_bits = 1 if a.binary is not None else (a.quant.w if a.quant is not None else None)
        nonzero, sparsity = _sparsity(a.prune, weights)
        tiles = 0
        if not mats:
            mapping = "-"
        elif a.bitserial is not None:
            mapping = f"bitserial({a.bitserial.lanes} lanes)"
        elif a.cim is not None:
            tiles = cim_tiles(a.cim, w_bits or FLOAT_BITS, mats)
            mapping = f"cim {a.cim.rows}x{a.cim.cols} x {tiles} tile{'s' if tiles != 1 else ''}"
        elif a.aqfp is not None:
            mapping = f"aqfp(group {a.aqfp.group}, T={a.aqfp.T})"
        elif a.binary is not None:
            mapping = "xnor-popcount"
        else:
            mapping = "parallel"
        if a.tokens is not None:
            mapping += f" + tokens(keep {a.tokens.keep:g})"
        out.append(
            LayerStats(
                lay.name, op_name(lay.op), lay.shape, weights, _other_params(lay.op, in_shape, lay.shape),
                _macs(lay, in_shape), w_bits, a_bits[lay.name], nonzero, sparsity, mapping, tiles,
            )
        )
    return out


def totals(stats: list[LayerStats]) -> Totals:
    return Totals(
        params=sum(s.params for s in stats),
        weights=sum(s.weights for s in stats),
        nonzero=sum(s.nonzero for s in stats),
        macs=sum(s.macs for s in stats),
        float_bits=sum(s.float_bits for s in stats),
        compressed_bits=sum(s.compressed_bits for s in stats),
    )
