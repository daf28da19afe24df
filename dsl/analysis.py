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

import math
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


@dataclass(frozen=True)
class CimLayout:
    """How a weighted layer maps onto R x C crossbar tiles (`cim_layout`): the one policy that
    `cdsl check`, training (`cdsl.sw.cores.cim`) and the hardware planner share.

    Each output takes `slices` = ceil(w / cell) adjacent columns of one tile (a weight is never split
    across tiles); `outs_per_tile` = cols // slices outputs share a column tile. The fan-in (the
    im2col row of a conv) is cut into consecutive chunks of `tile_rows` inputs, one row tile each;
    the partial sum of a column over its chunk is what the ADC converts, so `tile_rows` is part of
    the integer contract. A conv keeps whole input channels in a tile (ColumnQuant's mapping:
    floor(rows / window) channels per array) unless one channel's window alone exceeds the rows.
    `duplicate` > 1 when a conv's outputs fill only part of one column tile: the kernels are
    copied `duplicate` times, copy j shifted right by j strides (shift-and-duplicate), so one array
    activation computes `duplicate` adjacent outputs of a row from a window (duplicate - 1) * stride
    columns wider; `tile_rows` is chosen so that this wider window still fits the rows.
    """

    slices: int
    tile_rows: int
    row_tiles: int
    outs_per_tile: int
    col_tiles: int
    duplicate: int

    @property
    def tiles(self) -> int:
        return self.row_tiles * self.col_tiles


def cim_layout(cim: ir.Cim, *, w_bits: int, out_channels: int, in_channels: int, kernel: int = 1, stride: int = 1,
               out_width: int = 1) -> CimLayout:
    """The tile layout of a layer with `out_channels` outputs over `in_channels` x kernel x kernel
    inputs (a dense layer: kernel 1), and output rows `out_width` wide (a dense layer: 1)."""
    slices = -(-w_bits // cim.cell)
    outs_per_tile = cim.cols // slices
    if outs_per_tile < 1:
        raise ValueError(f"a {cim.rows}x{cim.cols} tile cannot hold the {slices} columns of one weight")
    col_tiles = -(-out_channels // outs_per_tile)
    fan_in = in_channels * kernel * kernel
    duplicate = 1
    if col_tiles == 1 and out_width > 1:
        by_rows = (cim.rows // kernel - kernel) // stride + 1  # one channel's widened window fits
        duplicate = max(1, min(cim.cols // (out_channels * slices), out_width, by_rows))
    channels = min(in_channels, cim.rows // (kernel * (kernel + (duplicate - 1) * stride)))
    if channels >= 1:
        tile_rows = channels * kernel * kernel
    else:  # one channel's window exceeds the rows: fill the rows, no duplication
        tile_rows, duplicate = cim.rows, 1
    return CimLayout(slices=slices, tile_rows=tile_rows, row_tiles=-(-fan_in // tile_rows),
                     outs_per_tile=outs_per_tile, col_tiles=col_tiles, duplicate=duplicate)


def cim_matrix_layout(cim: ir.Cim, *, w_bits: int, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                      out_channels: int, fan_in: int, stride: int = 1) -> CimLayout:
    """`cim_layout` of one weight matrix (out_channels x fan_in) of a layer reading `in_shape` and
    writing `out_shape`: a [C, H, W] -> [Co, Ho, Wo] layer is a conv (kernel^2 = fan_in / C) with
    `stride`, any other a dense layer."""
    if len(in_shape) == 3 and len(out_shape) == 3:
        return cim_layout(cim, w_bits=w_bits, out_channels=out_channels, in_channels=in_shape[0],
                          kernel=math.isqrt(fan_in // in_shape[0]), stride=stride, out_width=out_shape[2])
    return cim_layout(cim, w_bits=w_bits, out_channels=out_channels, in_channels=fan_in)


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
    counted = dict(shapes)  # the shapes MACs are charged on: token streams a selector shortened
    for lay in m.topo_order():
        ins = tuple(counted[i] for i in lay.inputs)
        counted[lay.name] = lay.op.counted_out(ins, lay.shape, lay.annotations)
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
            tiles = sum(cim_matrix_layout(a.cim, w_bits=w_bits or FLOAT_BITS, in_shape=ins[0], out_shape=lay.shape,
                                          out_channels=outs, fan_in=fan_in, stride=getattr(lay.op, "stride", 1)).tiles
                        for outs, fan_in in mats)
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
                lay.op.macs(tuple(counted[i] for i in lay.inputs), lay.shape, a), w_bits, a_bits[lay.name], nonzero, sparsity, mapping, tiles,
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
