"""CIM test cases, shared by the amaranth.sim and Verilator tests.

Tile blocks: random crossbars with extreme columns and a plain-math statement of what each column
must output (Python integers and `fractions.Fraction`, written from the semantics, not from the
helpers that configure the device). Engines: one-layer IntModels whose layer has a `CimCore`, planned
as `cdsl gen` plans them; their expected outputs are the contract's golden step (itself checked
against plain math in tests/contract/test_cim_ref.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from tb import random_models as M
from tb.engine_cases import one_layer_plan

from cdsl.contract.intmodel import QType
from cdsl.contract.ref.cim_tile import CimCore
from cdsl.dsl import ir
from cdsl.dsl.analysis import cim_layout

FRAC = 4


@dataclass(frozen=True)
class TileCase:
    cells: np.ndarray  # [R, C]
    col_signed: tuple[bool, ...]
    steps: tuple[int, ...]
    adc: int
    dac: int
    x_signed: bool
    samples: tuple[tuple[tuple[int, ...], ...], ...]  # per sample, per input step (top first), one level per row


def tile_case(rng, *, rows: int, cols: int, cell: int, dac: int, adc: int, x_signed: bool, in_steps: int,
              samples: int = 4) -> TileCase:
    """Cells: column 0 all at the top unsigned level, the last column a signed top slice all at its
    most negative level, the rest random (every other column signed). Steps: column 0 and the last one
    the smallest (1/16: they saturate), the others random. Inputs: all at the highest level, all at the
    lowest (the top step of a signed input negative), then random."""
    col_signed = tuple(c % 2 == 1 or c == cols - 1 for c in range(cols))
    cells = np.zeros((rows, cols), dtype=np.int64)
    for c in range(cols):
        lo, hi = (-(1 << (cell - 1)), (1 << (cell - 1)) - 1) if col_signed[c] else (0, (1 << cell) - 1)
        cells[:, c] = rng.integers(lo, hi + 1, size=rows)
    cells[:, 0] = (1 << cell) - 1
    cells[:, cols - 1] = -(1 << (cell - 1))
    steps = [int(v) for v in rng.integers(2, 40 * (1 << FRAC), size=cols)]
    steps[0] = steps[-1] = 1

    def levels(kind):
        out = []
        for b in range(in_steps):
            top = b == 0 and x_signed
            lo, hi = (-(1 << (dac - 1)), (1 << (dac - 1)) - 1) if top else (0, (1 << dac) - 1)
            out.append(tuple([hi] * rows if kind == "max" else [lo] * rows if kind == "min"
                             else rng.integers(lo, hi + 1, size=rows).tolist()))
        return tuple(out)

    inputs = [levels("max"), levels("min")] + [levels("random") for _ in range(samples - 2)]
    return TileCase(cells, col_signed, tuple(steps), adc, dac, x_signed, tuple(inputs))


def tile_expected(case: TileCase, sample) -> tuple[list[int], int, int]:
    """(column sums, conversions saturated low, saturated high) of one sample, from plain math:
    psum = sum of level * cell; code = the nearest integer to psum / (n / 16), halves up, held to the
    2**adc codes (signed ones when the column or the step is signed); sum = sum * 2**dac + code * n."""
    rows, cols = case.cells.shape
    sums, low, high = [], 0, 0
    for c in range(cols):
        total = 0
        for b, levels in enumerate(sample):
            psum = sum(int(levels[r]) * int(case.cells[r, c]) for r in range(rows))
            signed = case.col_signed[c] or (case.x_signed and b == 0)
            count = 2 ** case.adc
            lo, hi = (-count // 2, count // 2 - 1) if signed else (0, count - 1)
            nearest = (Fraction(psum) / Fraction(case.steps[c], 2 ** FRAC) + Fraction(1, 2)).__floor__()
            low += nearest < lo
            high += nearest > hi
            total = total * 2 ** case.dac + min(max(nearest, lo), hi) * case.steps[c]
        sums.append(total)
    return sums, low, high


def tile_acc_width(case: TileCase) -> int:
    bound = max(case.steps) * 2 ** case.adc * 2 ** (case.dac * len(case.samples[0]))
    return bound.bit_length() + 2


def tile_component(case: TileCase):
    from cdsl.hw.cim_tile import CimTile

    return CimTile(cells=case.cells, col_signed=case.col_signed, steps=case.steps, step_frac=FRAC, adc=case.adc,
                   dac=case.dac, x_signed=case.x_signed, acc_width=tile_acc_width(case))


# ---------------------------------------------------------------- one-layer engines

U8 = QType(8, False, 1 / 16)
S8 = QType(8, True, 1 / 16)
OUT8 = QType(8, True, 0.1)


def cim_layer(rng, *, in_shape, co, kernel=1, stride=1, padding=0, rows=16, cols=16, cell=2, dac=1, adc=4, w_bits=4,
              in_type=U8, dense=False, weight=None, step_range=(8, 400), per_channel=False):
    """A dense (`dense=True`, in_shape (K, 1, 1)) or conv layer with a CimCore laid out by `cim_layout`;
    random weights and ADC steps (in 1/16 units), a requantization that keeps typical outputs in range."""
    ci = in_shape[0]
    lo, hi = ir.int_range(w_bits, True)
    w = rng.integers(lo, hi + 1, size=(co, ci, kernel, kernel)) if weight is None else np.asarray(weight)
    out_width = 1 if dense else (in_shape[2] + 2 * padding - kernel) // stride + 1
    layout = cim_layout(ir.Cim(rows=rows, cols=cols, cell=cell, dac=dac, adc=adc), w_bits=w_bits, out_channels=co,
                        in_channels=ci, kernel=kernel, stride=stride, out_width=out_width)
    steps = rng.integers(step_range[0], step_range[1] + 1, size=(layout.row_tiles, co, layout.slices))
    core = CimCore(rows=rows, cols=cols, cell=cell, dac=dac, adc=adc, in_bits=in_type.bits, in_signed=in_type.signed,
                   tile_rows=layout.tile_rows, steps=steps, step_frac=FRAC)
    k = ci * kernel * kernel
    reals = rng.uniform(0.5, 2, size=co if per_channel else 1) * OUT8.qmax / (np.sqrt(k) * 128 * (hi + 1) / 2)
    rq = M.requant(reals, OUT8)
    bias = rng.integers(-300, 300, size=co)
    if dense:
        return M.dense("e", "x", w.reshape(co, -1), in_type=in_type, out_type=OUT8, rq=rq, w_bits=w_bits, bias=bias,
                       core_=core)
    return M.conv2d("e", "x", w, in_shape=in_shape, in_type=in_type, out_type=OUT8, rq=rq, stride=stride,
                    padding=padding, w_bits=w_bits, bias=bias, core_=core)


def cim_node(layer, *, lanes=2, duplicate=None):
    """The layer's CimEngineNode as `cdsl gen` plans it, or with `duplicate` kernel copies."""
    node = one_layer_plan(layer, layer.in_types[0], lanes=lanes).nodes[0]
    if duplicate is not None:
        from cdsl.hw.cores.cim import plan_cim_layer
        from cdsl.hw.plan import PlanContext, StreamType

        in_type = layer.in_types[0]
        ctx = PlanContext(in_streams=layer.inputs, in_types=(StreamType(in_type.bits, in_type.signed, layer.in_shapes[0]),),
                          lanes={layer.name: lanes})
        node = plan_cim_layer(layer, ctx, duplicate=duplicate)
    return node


def layer_inputs(rng, layer, count: int = 2) -> np.ndarray:
    """All-max, all-min, then random input codes of the layer's input type."""
    qt, shape = layer.in_types[0], layer.in_shapes[0]
    xs = [np.full(shape, qt.qmax), np.full(shape, qt.qmin)]
    xs += [rng.integers(qt.qmin, qt.qmax + 1, size=shape) for _ in range(count)]
    return np.stack(xs)


def golden_outputs(layer, x) -> list[int]:
    """The layer's golden step on one input, flattened in stream order."""
    return layer.payload.run(layer, [torch.tensor(x[None])], {}).reshape(-1).tolist()


def cim_net(*, seed: int):
    """x [1, 6, 6] -> c1 (conv 3x3 pad 1, CIM: 1-bit cells, 2-bit DAC, 5-bit ADC, kernel copies)
    -> relu (fused) -> maxpool 2 -> flatten -> fc (dense, CIM: 4-bit cells, 4-bit DAC, row and column
    tiles) -> y, signed."""
    from cdsl.contract.intmodel import IntInput, IntModel

    rng = np.random.default_rng(seed)
    c1 = cim_layer(rng, in_shape=(1, 6, 6), co=3, kernel=3, padding=1, rows=12, cols=24, cell=1, dac=2, adc=5,
                   w_bits=4, step_range=(16, 200))
    c1 = _renamed(c1, "c1", "x", QType(8, False, 0.05))
    r1 = M.relu("r1", "c1", c1.out_shape, c1.out_type)
    p1 = M.maxpool("p1", "r1", c1.out_shape, c1.out_type, kernel=2)
    f = M.flatten("f", "p1", p1.out_shape, c1.out_type)
    fc = cim_layer(rng, in_shape=(f.out_shape[0], 1, 1), co=5, rows=10, cols=8, cell=4, dac=4, adc=6, w_bits=8,
                   dense=True, step_range=(16, 4000))
    fc = _renamed(fc, "fc", "f", OUT8)
    return IntModel("cim_net", (IntInput("x", (1, 6, 6), U8),), (c1, r1, p1, f, fc), ("fc",))


def _renamed(layer, name, src, out_type):
    """`layer` as layer `name` reading `src`, with output type `out_type` (its requantization's range)."""
    import dataclasses

    rq = dataclasses.replace(layer.payload.requant, qmin=out_type.qmin, qmax=out_type.qmax)
    return dataclasses.replace(layer, name=name, inputs=(src,), out_type=out_type,
                               payload=dataclasses.replace(layer.payload, requant=rq))
