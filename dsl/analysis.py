"""Per-layer figures of a checked spec: parameters, MACs, bit widths, sparsity, hardware mapping.

`layer_stats(spec)` is what `cdsl check` prints; other passes may reuse it (e.g. cost reports).

Counting conventions
- `weights` are the entries of the layer's weight matrices (the compressible part; a conv kernel
  is a channels x (C*k*k) matrix); `other` holds biases, layer-norm scales and shifts, the class
  token and the position embeddings. `params = weights + other`.
- `weights`, `other` and MACs per inference come from each op's rules in `dsl.ir` (its
  `weight_matrices`, `other_params` and `macs`, whose docstrings give the formulas): e.g. dense
  K*N MACs, conv2d C*k*k*N*Ho*Wo; relu, sign, pools, flatten and add count 0 MACs.
- Activation widths flow through the graph by each op's `out_bits`: `@quant(a=...)` where
  given, 1 after sign, float after a weighted layer without `a`, else the widest input's.
- The compression ratio is float32 bits of all weights / compressed bits, where compressed bits
  are the weight width (32 if unquantized, 1 for @binary) times the nonzero weights
  (after @prune). Biases and other parameters are not part of either side.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ir

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
    for lay in m.topo_order():
        q = lay.annotations.quant
        a_bits[lay.name] = lay.op.out_bits(tuple(a_bits[i] for i in lay.inputs), q.a if q is not None else None)
    shapes = {i.name: i.shape for i in m.inputs} | {lay.name: lay.shape for lay in m.layers}
    for lay in m.layers:
        ins = tuple(shapes[i] for i in lay.inputs)
        a = lay.annotations
        mats = lay.op.weight_matrices(ins)
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
                lay.name, lay.op.source_name, lay.shape, weights, lay.op.other_params(ins, lay.shape),
                lay.op.macs(ins, lay.shape, a), w_bits, a_bits[lay.name], nonzero, sparsity, mapping, tiles,
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
