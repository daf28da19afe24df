"""The CIM core's training twin: `@cim(...)` runs a layer's products through crossbar tiles with ADCs
in the forward pass (ColumnQuant, PIM-QAT), and exports a `cdsl.contract.ref.cim_tile.CimCore`.

Forward (with quant and cim active). The input codes and weight codes are sliced exactly as the
contract slices them (`cim_tile.operand_slices`: inputs `dac` bits per step, weights `cell` bits
per column, two's complement); the fan-in is cut into the row tiles of `cim_layout`; every
(input step, row tile, weight slice, output) partial sum is computed with the layer's own product
(dense or conv, one call for all of them), quantized by the column's ADC step, and recombined by
shift-and-add, then rounded to the accumulator's units: the integer reference, in float. The layer's
output is that accumulator times in_scale * w_scale plus the bias, which is what the integer model
computes before its requantization (the golden/fake-quant agreement measures it).

ADC steps (ColumnQuant). One learned step per (row tile, column) with `scale=channel`, one per
tile with `scale=tensor`, learned in the same stage as the weight scales (no two-stage training).
Steps live in the log domain and are used as n / 2**STEP_FRAC with n = round(step * 2**STEP_FRAC)
>= 1 (straight through), exactly the integer steps the export writes. They start, on the first
training-mode forward pass with cim active, at the largest |partial sum| of that batch over the
column's largest code (no clipping at first); training then learns where to clip. Until then (an
evaluation before any such pass) the layer computes exact products, and it cannot be exported.

Gradients, and our version of PIM-QAT's rescaling (the paper's exact factors could not be read).
Forward: every code is dequantized by its own step before the shift-and-add, so the ADC output keeps
the scale of the exact partial sum and the layer output keeps the scale the activation quantizer and
the next layer were calibrated on (a plain sum of codes would rescale each column by 1/step).
Backward: inputs, weights, weight scales and bias get the gradient of the exact product (the ADC and
the slicing are straight-through), and each step gets LSQ's gradient of code * step (code - psum/step
inside the range, the clamped code outside), scaled by 1 / sqrt(conversions per step * largest code),
the number of partial sums that share it, so that no step moves faster than the weights.

Noise-aware training (PIM-QAT, aihwkit's multiplicative weight noise): with `noise = sigma`, every
cell's level is multiplied by (1 + sigma * N(0, 1)), a fresh draw per training batch, before the
partial sums (which then are not integers, and the ADC rounds them). Evaluation draws the same way
with a fixed seed per draw (`noise_draw`); the integer model and the RTL are noise-free.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from cdsl.contract.ref.cim_tile import CimCore, adc_range, slice_count
from cdsl.contract.intmodel import IntModel, replace_payload
from cdsl.contract.ref.mac import MacCore, ParallelCore
from cdsl.dsl import ir
from cdsl.dsl.analysis import CimLayout, cim_matrix_layout
from cdsl.errors import CdslError
from cdsl.sw.cores import CoreTwin, register_core
from cdsl.sw.layers import Products, grad_scale, round_half_up, round_half_up_ste

STEP_FRAC = 4  # ADC steps are multiples of 2**-STEP_FRAC partial-sum units


def float_slices(v: torch.Tensor, *, bits: int, width: int) -> list[torch.Tensor]:
    """`cim_tile.operand_slices` of integer-valued float tensors (exact below 2**24)."""
    n = slice_count(bits, width)
    base = float(1 << width)
    out = [torch.remainder(torch.floor(v / float(1 << (width * i))), base) for i in range(n - 1)]
    return out + [torch.floor(v / float(1 << (width * (n - 1))))]


class CimTwin(CoreTwin):
    """A layer on crossbar tiles (see the module docstring); `configure` sizes the ADC steps."""

    def __init__(self, annotation: ir.Cim):
        super().__init__()
        self.cim = annotation
        self.layout: CimLayout | None = None
        self.in_format: tuple[int, bool] | None = None  # the input codes' (bits, signed), seen in forward
        self._eval_noise: tuple[float, int] | None = None

    def configure(self, model, layer):
        q = layer.annotations.quant
        if q is None or q.w is None:  # the checker refuses @cim without @quant(w=...)
            raise ValueError(f"layer {layer.name!r}: @cim needs @quant(w=...)")
        ((out_channels, fan_in),) = layer.op.weight_matrices((model.shape_of(layer.inputs[0]),))
        self.w_bits, self.out_channels, self.fan_in = q.w, out_channels, fan_in
        self.layout = cim_matrix_layout(self.cim, w_bits=q.w, in_shape=tuple(model.shape_of(layer.inputs[0])),
                                        out_shape=tuple(layer.shape), out_channels=out_channels, fan_in=fan_in,
                                        stride=getattr(layer.op, "stride", 1))
        lay = self.layout
        per_column = self.cim.scale is ir.Granularity.CHANNEL
        shape = (lay.row_tiles, out_channels, lay.slices) if per_column else (lay.row_tiles, lay.col_tiles)
        self.adc_log_scale = torch.nn.Parameter(torch.zeros(shape))
        self.register_buffer("adc_calibrated", torch.tensor(False))
        # tile t's rows of the fan-in, as a 0/1 mask [row tiles, fan_in]
        index = torch.arange(fan_in)
        self.register_buffer("row_masks", (index[None, :] // lay.tile_rows == torch.arange(lay.row_tiles)[:, None]).float(),
                             persistent=False)
        top = torch.arange(lay.slices) == lay.slices - 1
        # the largest code magnitude of each slice's columns (signed top slice: 2**(adc-1))
        self.register_buffer("q_max", torch.where(top, 2.0 ** (self.cim.adc - 1), 2.0 ** self.cim.adc - 1),
                             persistent=False)

    # ---- ADC steps
    def column_steps(self) -> torch.Tensor:
        """The learned steps per (row tile, output, slice), before rounding to n / 2**STEP_FRAC."""
        steps = torch.exp(self.adc_log_scale)
        if steps.dim() == 2:  # one per tile: output o sits in column tile o // outs_per_tile
            tile_of = torch.arange(self.out_channels) // self.layout.outs_per_tile
            steps = steps[:, tile_of, None].expand(-1, -1, self.layout.slices)
        return steps

    def integer_steps(self) -> torch.Tensor:
        """n = round(step * 2**STEP_FRAC) >= 1 (float, straight through)."""
        return round_half_up_ste(self.column_steps() * (1 << STEP_FRAC)).clamp(min=1.0)

    @torch.no_grad()
    def _calibrate(self, psum: torch.Tensor) -> None:
        # psum [nb, B, T, S, O, ...]: the largest magnitude per column over the batch, the steps and pixels
        peak = psum.abs().amax(dim=(0, 1, *range(5, psum.dim()))).permute(0, 2, 1)  # [T, O, S]
        steps = peak / self.q_max
        if self.adc_log_scale.dim() == 2:  # one step per tile: the largest of its columns'
            tile_of = torch.arange(self.out_channels) // self.layout.outs_per_tile
            steps = torch.stack([steps[:, tile_of == u].amax(dim=(1, 2)) for u in range(self.layout.col_tiles)], dim=1)
        self.adc_log_scale.copy_(torch.log(steps.clamp(min=1.0 / (1 << STEP_FRAC))))
        self.adc_calibrated.fill_(True)

    # ---- noise
    def noise_draw(self, sigma: float | None, seed: int = 0) -> None:
        """Evaluate (eval mode) with one fixed draw of multiplicative cell variation `sigma` (None: off)."""
        self._eval_noise = None if sigma is None else (float(sigma), int(seed))

    def _cell_noise(self, cells: torch.Tensor) -> torch.Tensor | None:
        if self.training and self.cim.noise > 0:
            return 1 + self.cim.noise * torch.randn_like(cells)
        if not self.training and self._eval_noise is not None:
            sigma, seed = self._eval_noise
            gen = torch.Generator().manual_seed(seed)
            return 1 + sigma * torch.randn(cells.shape, generator=gen, dtype=cells.dtype)
        return None

    # ---- forward
    def products(self, p: Products) -> torch.Tensor:
        m = p.module
        if "cim" not in m.active or p.w_codes is None or p.in_grid is None:
            return p.exact()
        if not (self.training or bool(self.adc_calibrated)):  # never calibrated on an evaluation batch
            return p.exact()
        grid, lay, cim = p.in_grid, self.layout, self.cim
        self.in_format = (grid.bits, grid.signed)
        qx = round_half_up(p.x.detach() / grid.scale.detach())  # the input codes (x lies on its grid)
        xs = float_slices(qx, bits=grid.bits, width=cim.dac)
        ws = float_slices(p.w_codes.detach(), bits=self.w_bits, width=cim.cell)
        nb, ns, nt, o = len(xs), len(ws), lay.row_tiles, self.out_channels
        w_shape = p.w_codes.shape
        masks = self.row_masks.reshape(nt, 1, 1, *w_shape[1:])
        cells = masks * torch.stack(ws).unsqueeze(0)  # [T, S, O, ...]: the cells of each row tile
        noise = self._cell_noise(cells)
        if noise is not None:
            cells = cells * noise
        batch = qx.shape[0]
        # in float64: partial sums and the codes' shift-and-add (in 1/16 units) are exact below 2**49
        psum = m.product(torch.cat(xs).double(), cells.reshape(nt * ns * o, *w_shape[1:]).double(), None)
        psum = psum.reshape(nb, batch, nt, ns, o, *psum.shape[2:])
        if not bool(self.adc_calibrated):
            self._calibrate(psum)
        extra = psum.dim() - 5  # spatial dims of a conv
        n = self.integer_steps()
        # LSQ gradient scale: the conversions that share a step, per sample
        sharing = nb * math.prod(psum.shape[5:]) * (1 if self.adc_log_scale.dim() == 3 else lay.outs_per_tile * ns)
        step = grad_scale(n.double() / (1 << STEP_FRAC), 1.0 / math.sqrt(sharing * float(self.q_max.max())))
        step = step.permute(0, 2, 1).reshape(1, 1, nt, ns, o, *([1] * extra))
        lo, hi = self._code_ranges(nb, ns, grid.signed, extra)
        codes = round_half_up_ste(torch.maximum(torch.minimum(psum / step, hi), lo))
        weights = torch.tensor([[2.0 ** (cim.dac * b + cim.cell * s) for s in range(ns)] for b in range(nb)],
                               dtype=torch.float64)
        weights = weights.reshape(nb, 1, 1, ns, 1, *([1] * extra))
        acc2 = (codes * step * weights).sum(dim=(0, 2, 3))  # [B, O, ...] in partial-sum units
        acc = round_half_up(acc2.detach())
        exact = p.exact()
        unit = (grid.scale * p.w_scale).detach().reshape(1, -1, *([1] * extra))
        bias = 0 if p.b is None else p.b.detach().reshape(1, o, *([1] * extra))
        return exact + (acc.to(exact.dtype) * unit + bias - exact).detach() + (acc2 - acc2.detach()).to(exact.dtype) * unit

    def _code_ranges(self, nb: int, ns: int, in_signed: bool, extra: int) -> tuple[torch.Tensor, torch.Tensor]:
        """lo, hi [nb, 1, 1, S, 1, ...]: signed codes where the weight slice (top) or the input step
        (the top step of a signed input) can be negative."""
        lo = torch.empty(nb, ns, dtype=torch.float64)
        hi = torch.empty(nb, ns, dtype=torch.float64)
        for b in range(nb):
            for s in range(ns):
                lo[b, s], hi[b, s] = adc_range(self.cim.adc, s == ns - 1 or (in_signed and b == nb - 1))
        shape = (nb, 1, 1, ns, 1, *([1] * extra))
        return lo.reshape(shape), hi.reshape(shape)

    # ---- export
    def settings(self, *, w_bits: int) -> tuple:
        return ()  # CimCore has no runtime settings; its core() needs trained ADC steps

    def core(self) -> MacCore:
        if self.in_format is None or not bool(self.adc_calibrated):
            raise CdslError("a @cim layer has no ADC steps until it has run with quant and cim active",
                            span=self.cim.span, expected="a training stage with compress including quant and cim")
        bits, signed = self.in_format
        steps = self.integer_steps().detach().to(torch.int64).numpy().astype(np.int64)
        return CimCore(rows=self.cim.rows, cols=self.cim.cols, cell=self.cim.cell, dac=self.cim.dac, adc=self.cim.adc,
                       in_bits=bits, in_signed=signed, tile_rows=self.layout.tile_rows, steps=steps,
                       step_frac=STEP_FRAC)


def without_adc(intmodel: IntModel) -> IntModel:
    """`intmodel` with the core of every CIM layer replaced by exact products (`ParallelCore`): the same
    integer weights, biases and requantization, no partial-sum quantization."""
    return dataclasses.replace(intmodel, layers=tuple(
        replace_payload(lay, core=ParallelCore()) if isinstance(getattr(lay.payload, "core", None), CimCore) else lay
        for lay in intmodel.layers))


register_core("cim", CimTwin)
