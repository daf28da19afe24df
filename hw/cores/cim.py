"""The CIM core: a dense or conv2d layer on crossbar tiles with ADCs (`cdsl.hw.cim_engine.CimEngine`,
`cdsl.hw.cim_tile.CimTile`), planned from the layer's `cdsl.contract.ref.cim_tile.CimCore`.

Mapping. The contract fixes the row tiles (`tile_rows` fan-in inputs each) and the ADC steps; the
plan places them on `row_tiles x col_tiles` physical tiles (`cdsl.dsl.analysis.CimLayout`): output o
takes `slices` adjacent columns of column tile o // outs_per_tile. Where a conv's outputs fill only
part of one tile's columns and its row tiles hold whole input channels, the kernels can be
duplicated (`duplicate` = n > 1, shift-and-duplicate): copy j of output o sits in its own columns
with the kernel shifted j strides to the right, the tile's rows hold a (k, k + (n - 1) * stride)
window of its channels, and one array activation computes n adjacent outputs of a row. A copy's
cells and ADC steps are those of the original, so the arithmetic is unchanged: only cycles and
utilization differ. `plan_cim_layer` duplicates as far as the columns, the rows and the output width
allow (`max_duplicate`); `duplicate=1` gives the plain mapping.

Cycle model (`CimEngineNode.delay`, from the engine's last input transfer to its last output
transfer). One activation (a window of a conv, the whole input of a dense layer) is gathered from the
frame buffer in G = ceil(C / lanes) * k * (k + (n - 1) * stride) steps while the tiles convert the previous
one in B = ceil(in_bits / dac) input steps (all tiles and columns at once), so activations follow
each other every max(G, B) cycles. Every output is then streamed out of the output buffer, one per
cycle, through the bias add and the requantization:

    delay = START + FETCH + G + (P - 1) * max(G, B) + B + TILE_LATENCY + STORE + READ
            + REQUANT_LATENCY + outputs - 1

with P = Ho * ceil(Wo / n) activations and outputs = Co * Ho * Wo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import IntLayer
from cdsl.contract.ref.cim_tile import CimCore, adc_range, operand_slices
from cdsl.hw._engine import FETCH, START
from cdsl.hw.kinds._mac import WeightedNode, weighted_fields
from cdsl.hw.plan import PlanContext
from cdsl.hw.registry import register_core
from cdsl.hw.requant_unit import LATENCY as REQUANT_LATENCY
from cdsl.hw.widths import signed_width

TILE_LATENCY = 1  # a tile's column sums are valid the cycle after its last input step was accepted
STORE = 1  # the cycle the combined accumulators are written into the output buffer
READ = 1  # the output buffer's read latency


def _round_shift(v: int, f: int) -> int:
    return (v + (1 << (f - 1))) >> f if f else v


@codec.serializable("cim_engine")
@dataclass(frozen=True, eq=False)
class CimEngineNode(WeightedNode):
    """A dense or conv2d layer on CIM tiles with `duplicate` kernel copies; `lanes` input channels are
    gathered per cycle."""

    core: CimCore
    duplicate: int

    def __post_init__(self):
        self.core.check_shapes(out_channels=self.out_shape[0], fan_in=self.fan_in, w_bits=self.w_bits)
        if self.duplicate > 1 and not self.aligned:
            raise ValueError(f"{self.name}: kernel duplication needs row tiles of whole input channels "
                             f"(tile_rows {self.core.tile_rows} is not a multiple of {self.kernel ** 2})")
        if self.duplicate > 1 and self.col_tiles != 1:
            raise ValueError(f"{self.name}: {self.duplicate} kernel copies of {self.out_shape[0]} outputs do not fit "
                             f"{self.core.cols} columns")
        if max(self.tile_rows(t) for t in range(self.row_tiles)) > self.core.rows:
            raise ValueError(f"{self.name}: a ({self.kernel}, {self.window[1]}) window of "
                             f"{self.channels_per_tile} channels does not fit {self.core.rows} rows")

    # ---- geometry
    @property
    def fan_in(self) -> int:
        return self.in_shape[0] * self.kernel * self.kernel

    @property
    def slices(self) -> int:
        return self.core.slices(self.w_bits)

    @property
    def in_steps(self) -> int:
        return self.core.in_steps()

    @property
    def row_tiles(self) -> int:
        return self.core.row_tiles(self.fan_in)

    @property
    def outs_per_tile(self) -> int:
        return self.core.cols // (self.slices * self.duplicate)

    @property
    def col_tiles(self) -> int:
        return -(-self.out_shape[0] // self.outs_per_tile)

    @property
    def tiles(self) -> int:
        return self.row_tiles * self.col_tiles

    @property
    def aligned(self) -> bool:
        """Row tiles hold whole input channels."""
        return self.core.tile_rows % (self.kernel * self.kernel) == 0

    @property
    def channels_per_tile(self) -> int:
        return self.core.tile_rows // (self.kernel * self.kernel)

    @property
    def window(self) -> tuple[int, int]:
        """(kh, kw) of the window an activation reads: k x (k + (duplicate - 1) * stride)."""
        return self.kernel, self.kernel + (self.duplicate - 1) * self.stride

    @property
    def window_rows(self) -> int:
        """Window entries per input channel."""
        return self.window[0] * self.window[1]

    @property
    def x_groups(self) -> int:
        """Activations per output row: ceil(Wo / duplicate)."""
        return -(-self.out_shape[2] // self.duplicate)

    @property
    def activations(self) -> int:
        return self.out_shape[1] * self.x_groups

    @property
    def gather_steps(self) -> int:
        return self.groups * self.window_rows

    def tile_rows(self, t: int) -> int:
        """Rows used in row tile t (the last one may be partial)."""
        if self.aligned:
            channels = min(self.channels_per_tile, self.in_shape[0] - t * self.channels_per_tile)
            return channels * self.window_rows
        return min(self.core.tile_rows, self.fan_in - t * self.core.tile_rows)

    def row_offset(self, t: int) -> int:
        """Index of row tile t's first row in the gathered window ((c, ky, kx) order)."""
        return t * (self.channels_per_tile * self.window_rows if self.aligned else self.core.tile_rows)

    def tile_outputs(self, u: int) -> range:
        return range(u * self.outs_per_tile, min((u + 1) * self.outs_per_tile, self.out_shape[0]))

    def column(self, u: int, o: int, s: int, j: int) -> int:
        """Column of output o's slice s, copy j, in column tile u."""
        return (j * len(self.tile_outputs(u)) + (o - u * self.outs_per_tile)) * self.slices + s

    def tile_cells(self, t: int, u: int) -> np.ndarray:
        """Cell levels [rows used, columns used] of tile (t, u): weight slices (two's complement, the
        top slice signed), each copy j's kernel shifted j strides right in the window, zero elsewhere."""
        k, (kh, kw) = self.kernel, self.window
        outs = self.tile_outputs(u)
        cells = np.zeros((self.tile_rows(t), len(outs) * self.slices * self.duplicate), dtype=np.int64)
        w = self.weight.reshape(self.out_shape[0], -1)
        sl = [s.numpy() for s in operand_slices(torch.from_numpy(w), bits=self.w_bits, width=self.core.cell)]
        for r in range(self.tile_rows(t)):
            e = self.row_offset(t) + r
            for j in range(self.duplicate):
                if self.aligned:
                    c, a = divmod(e, kh * kw)
                    ky, kx = divmod(a, kw)
                    kx -= j * self.stride
                    if not 0 <= kx < k:
                        continue
                    idx = (c * k + ky) * k + kx
                else:
                    idx = e
                for o in outs:
                    for s in range(self.slices):
                        cells[r, self.column(u, o, s, j)] = sl[s][o, idx]
        return cells

    def tile_steps(self, t: int, u: int) -> tuple[int, ...]:
        """ADC step of every column of tile (t, u) (a copy shares its original's)."""
        steps = np.asarray(self.core.steps)
        out = [0] * (len(self.tile_outputs(u)) * self.slices * self.duplicate)
        for j in range(self.duplicate):
            for o in self.tile_outputs(u):
                for s in range(self.slices):
                    out[self.column(u, o, s, j)] = int(steps[t, o, s])
        return tuple(out)

    # ---- widths
    def column_range(self, t: int, o: int, s: int) -> tuple[int, int]:
        """Range of a column's shift-added codes sum_b 2**(dac*b) * code * n (units of 2**-step_frac)."""
        n, core, nb = int(np.asarray(self.core.steps)[t, o, s]), self.core, self.in_steps
        lo = hi = 0
        for b in range(nb):
            clo, chi = adc_range(core.adc, s == self.slices - 1 or (core.in_signed and b == nb - 1))
            lo += (clo * n) << (core.dac * b)
            hi += (chi * n) << (core.dac * b)
        return lo, hi

    @property
    def tile_acc_width(self) -> int:
        return max(signed_width(*self.column_range(t, o, s)) for t in range(self.row_tiles)
                   for o in range(self.out_shape[0]) for s in range(self.slices))

    @property
    def acc_range(self) -> tuple[int, int]:
        """Range of the rounded accumulators, with and without their bias (the output buffer holds them
        without), over every output."""
        f = self.core.step_frac
        lo = hi = 0
        for o in range(self.out_shape[0]):
            ranges = [self.column_range(t, o, s) for t in range(self.row_tiles) for s in range(self.slices)]
            shifts = [self.core.cell * s for t in range(self.row_tiles) for s in range(self.slices)]
            b = 0 if self.bias is None else int(self.bias[o])
            acc_lo = _round_shift(sum(r[0] << sh for r, sh in zip(ranges, shifts)), f)
            acc_hi = _round_shift(sum(r[1] << sh for r, sh in zip(ranges, shifts)), f)
            lo, hi = min(lo, acc_lo, acc_lo + b), max(hi, acc_hi, acc_hi + b)
        return lo, hi

    @property
    def acc_width(self) -> int:
        return signed_width(*self.acc_range)

    # ---- Node
    def component(self):
        from cdsl.hw.cim_engine import CimEngine

        return CimEngine(node=self)

    def busy_cycles(self, settings: Mapping[str, int]) -> int:
        return self.activations * max(self.gather_steps, self.in_steps) + self.out_type.words

    def delay(self, settings):
        g, b = self.gather_steps, self.in_steps
        return (START + FETCH + g + (self.activations - 1) * max(g, b) + b + TILE_LATENCY + STORE + READ
                + REQUANT_LATENCY + self.out_type.words - 1)

    def pe_problem(self, pe, lanes=None):
        return None if pe == 1 else "a CIM engine maps its output channels onto tile columns already (PE 1 only)"

    def interval(self, settings):
        """Back to back: a frame starts once the previous one's read-out has issued its last read
        (the output buffer is single), i.e. the cycle after it; the next input frame loads meanwhile."""
        g, b = self.gather_steps, self.in_steps
        to_last_read = FETCH + g + (self.activations - 1) * max(g, b) + b + TILE_LATENCY + STORE + self.out_type.words
        return max(to_last_read, self.in_types[0].words)

    def memory_bits(self) -> int:
        """The double-buffered input frame and the output buffer (one accumulator word per output)."""
        frame = 2 * self.groups * self.in_shape[1] * self.in_shape[2] * self.lanes * self.in_types[0].bits
        return frame + self.activations * self.out_shape[0] * self.duplicate * self.acc_width

    def used_cells(self) -> int:
        """Cells holding a weight slice (kernel copies included; a copy's shifted-out positions are empty)."""
        return self.fan_in * self.out_shape[0] * self.slices * self.duplicate

    def adc_conversions(self) -> int:
        """Conversions per inference: every activation converts every used column of every tile once
        per input step (a last partial copy's columns too: they hold weights even where the output
        falls past the edge)."""
        columns = self.out_shape[0] * self.slices * self.duplicate * self.row_tiles
        return self.activations * self.in_steps * columns

    def describe(self) -> str:
        core = self.core
        dup = f", kernels duplicated x{self.duplicate}" if self.duplicate > 1 else ""
        return (f"CIM {core.rows}x{core.cols} x {self.tiles} tile{'s' if self.tiles != 1 else ''} "
                f"({self.row_tiles} row x {self.col_tiles} column{dup}), cell {core.cell}, dac {core.dac}, "
                f"adc {core.adc}, {list(self.in_shape)} -> {list(self.out_shape)}, {self.lanes} lanes"
                f"{' (fixed)' if self.lanes_fixed else ''}")

    def figures(self, settings):
        core = self.core
        return {"delay": self.delay(settings), "interval": self.interval(settings), "frame_bits": self.memory_bits(),
                "tiles": self.tiles, "row_tiles": self.row_tiles,
                "col_tiles": self.col_tiles, "duplicate": self.duplicate,
                "utilization": self.used_cells() / (self.tiles * core.rows * core.cols),
                "adc_conversions": self.adc_conversions(), "activations": self.activations,
                "gather_steps": self.gather_steps, "input_steps": self.in_steps, "lanes": self.lanes,
                "acc_width": self.acc_width, "tile_acc_width": self.tile_acc_width}


def max_duplicate(node_fields: dict, core: CimCore) -> int:
    """The most kernel copies the columns, the rows (with the contract's row tiles: a copy widens each
    channel's window by one stride) and the output width allow; 1 unless the row tiles hold whole
    channels and every output fits one column tile. For row tiles that `cim_layout` made, this is the
    duplication it planned them for."""
    co, k, out_width = node_fields["out_shape"][0], node_fields["kernel"], node_fields["out_shape"][2]
    stride = node_fields["stride"]
    slices = core.slices(node_fields["w_bits"])
    if core.tile_rows % (k * k) or co * slices > core.cols:
        return 1
    channels = core.tile_rows // (k * k)
    return max(1, min(core.cols // (co * slices), out_width, (core.rows // (channels * k) - k) // stride + 1))


def plan_cim_layer(layer: IntLayer, ctx: PlanContext, *, duplicate: int | None = None) -> CimEngineNode:
    """The CimEngineNode of a dense or conv2d layer whose core is a CimCore, with `duplicate` kernel
    copies (None: as many as fit, `max_duplicate`)."""
    core: CimCore = layer.payload.core
    fields = weighted_fields(layer, ctx, spec_lanes=None)
    in_type = ctx.in_types[0]
    if (in_type.bits, in_type.signed) != (core.in_bits, core.in_signed):
        raise ValueError(f"layer {layer.name!r}: its CIM core takes {core.in_bits}-bit "
                         f"{'signed' if core.in_signed else 'unsigned'} inputs, the stream carries {in_type.bits}-bit "
                         f"{'signed' if in_type.signed else 'unsigned'} ones")
    return CimEngineNode(**fields, core=core,
                         duplicate=max_duplicate(fields, core) if duplicate is None else duplicate)


register_core(CimCore)(plan_cim_layer)
