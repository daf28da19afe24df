"""IR -> torch.nn.Module with the compression annotations in the forward pass.

`build(spec)` returns a `Net`: it runs the layers in topological order, carrying for every
tensor its value and, when it lies on an integer grid, that grid (scale, bits, signedness).
The model inputs are always quantized with their declared fixed-point type (round half up,
clamp), the same rule as `cdsl.sw.golden.quantize_input`.

Which annotations act is chosen per training stage with `Net.set_compress(names)`
(None = all of them, () = float). `quant` and `prune` act; `bitserial` is a hardware mapping
only (accepted, no training effect); `bitsparse`, `trunc`, `cim`, `binary`, `aqfp`, `tokens`
are refused with a CdslError at the annotation until the software path supports them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.contract.ref.pool import avg_multiplier
from cdsl.contract.ref.requant import requantize
from cdsl.sw.layers import (
    ActQuant, ClsHead, EncoderBlock, Grid, PatchEmbed, QWeighted, Scales, SignSTE, WeightQuant, fake_quant,
    round_half_up,
)
import torch.nn.functional as F

UNSUPPORTED = ("bitsparse", "trunc", "cim", "binary", "aqfp", "tokens")
ACTIVE_KINDS = ("quant", "prune")


def build(spec: ir.Spec | ir.Model, *, scales: Scales = Scales()) -> "Net":
    """A trainable module for `spec` (see `cdsl.sw.layers.Scales` for how scales are found)."""
    if not isinstance(scales, Scales):
        raise TypeError(f"scales must be a Scales, got {scales!r}")
    model = spec.model if isinstance(spec, ir.Spec) else spec
    check_supported(model)
    return Net(model, scales=scales)


def check_supported(model: ir.Model) -> None:
    for lay in model.layers:
        for name in UNSUPPORTED:
            ann = getattr(lay.annotations, name)
            if ann is not None:
                raise CdslError(
                    f"@{name} is not yet supported by the software path (layer {lay.name!r})",
                    span=ann.span,
                    expected="@quant, @prune and @bitserial: the annotations implemented so far (README: What works today)",
                )
        present = lay.annotations.present()
        if not isinstance(lay.op, ir.WEIGHTED_OPS) and ("quant" in present or "prune" in present):
            ann = lay.annotations.quant or lay.annotations.prune
            raise CdslError(f"{type(lay.op).__name__.lower()} layer {lay.name!r} has no weights to compress", span=ann.span)


def output_signed(model: ir.Model, lay: ir.Layer) -> bool:
    """Signedness of a layer's quantized output: Quant.signed, or unsigned when only ReLUs consume it."""
    q = lay.annotations.quant
    if q is not None and q.signed is not None:
        return q.signed
    consumers = model.consumers(lay.name)
    relu_only = bool(consumers) and all(isinstance(c.op, ir.ReLU) for c in consumers)
    return not (relu_only and lay.name not in model.outputs)


class Net(nn.Module):
    """The trainable network of one ir.Model. forward(x) -> output tensor (or dict of outputs)."""

    def __init__(self, model: ir.Model, *, scales: Scales):
        super().__init__()
        self.model = model
        self.blocks = nn.ModuleDict()
        for lay in model.topo_order():
            mod = _make(model, lay, scales)
            if mod is not None:
                self.blocks[lay.name] = mod
        self.active: tuple[str, ...] = ()
        self.set_compress(())

    # ------------------------------------------------------------ compression control

    def set_compress(self, names) -> None:
        """Activate the given annotation kinds (None: all)."""
        names = ACTIVE_KINDS if names is None else tuple(names)
        self.active = tuple(n for n in ACTIVE_KINDS if n in names)
        for mod in self.modules():
            if hasattr(mod, "quant_on"):
                mod.quant_on = "quant" in self.active
            if hasattr(mod, "prune_on"):
                mod.prune_on = "prune" in self.active

    def needs_calibration(self) -> bool:
        return "quant" in self.active and any(
            not bool(m.calibrated) for m in self.modules() if isinstance(m, (ActQuant, WeightQuant))
        )

    @torch.no_grad()
    def calibrate(self, x) -> None:
        """Initialize weight scales (max-abs) and activation scales (max over the batch `x`)."""
        for mod in self.modules():
            if isinstance(mod, QWeighted) and mod.wq is not None:
                mod.wq.calibrate(mod.masked_weight())
        acts = [m for m in self.modules() if isinstance(m, ActQuant)]
        for m in acts:
            m.observing = True
        try:
            self(x)
        finally:
            for m in acts:
                m.observing = False

    @torch.no_grad()
    def update_masks(self, epoch: int, total_epochs: int) -> None:
        for mod in self.modules():
            if isinstance(mod, QWeighted):
                mod.update_mask(epoch, total_epochs)

    @torch.no_grad()
    def apply_masks(self) -> None:
        for mod in self.modules():
            if isinstance(mod, QWeighted):
                mod.apply_mask()

    # ------------------------------------------------------------ forward

    def input_grid(self, inp: ir.Input) -> Grid:
        return Grid(torch.tensor(2.0 ** -inp.dtype.frac), inp.dtype.bits, inp.dtype.signed)

    def run(self, x) -> tuple[dict[str, torch.Tensor], dict[str, Grid | None]]:
        feeds = x if isinstance(x, dict) else {self.model.inputs[0].name: x}
        env: dict[str, torch.Tensor] = {}
        grids: dict[str, Grid | None] = {}
        for inp in self.model.inputs:
            g = self.input_grid(inp)
            env[inp.name] = fake_quant(feeds[inp.name].to(torch.float32), g.scale, g.qmin, g.qmax)
            grids[inp.name] = g
        for lay in self.model.topo_order():
            src = lay.inputs[0]
            xin, gin = env[src], grids[src]
            op = lay.op
            if lay.name in self.blocks:
                y, g = self.blocks[lay.name](xin, gin)
            elif isinstance(op, ir.ReLU):
                y, g = torch.relu(xin), gin
            elif isinstance(op, ir.Sign):
                y, g = SignSTE.apply(xin), Grid(torch.tensor(1.0), 2, True)
            elif isinstance(op, ir.Flatten):
                y, g = xin.flatten(1), gin
            elif isinstance(op, ir.Pool) and op.kind is ir.PoolKind.MAX:
                y, g = F.max_pool2d(xin, op.kernel, op.stride), gin
            elif isinstance(op, ir.Pool):
                y, g = F.avg_pool2d(xin, op.kernel, op.stride), gin
                if gin is not None:
                    y = _avg_on_grid(xin, y, gin, op)
            else:
                raise AssertionError(f"no module for {lay.name!r}")
            env[lay.name], grids[lay.name] = y, g
        return env, grids

    @torch.no_grad()
    def trace_codes(self, x) -> dict[str, torch.Tensor]:
        """The integer codes (int64) of every layer output that lies on a grid, from the fake-quant
        forward pass in eval mode: compare with `golden(..., trace=True)` layer by layer."""
        was = self.training
        self.eval()
        try:
            env, grids = self.run(x)
        finally:
            self.train(was)
        return {
            lay.name: round_half_up(env[lay.name].double() / grids[lay.name].scale.double()).to(torch.int64)
            for lay in self.model.layers
            if grids[lay.name] is not None
        }

    def forward(self, x):
        env, _ = self.run(x)
        outs = {n: env[n] for n in self.model.outputs}
        return outs[self.model.outputs[0]] if len(outs) == 1 else outs


def _avg_on_grid(x: torch.Tensor, avg: torch.Tensor, grid: Grid, op: ir.Pool) -> torch.Tensor:
    """Average pooling of a tensor on an integer grid, exactly as the integer model does it:
    the integer window sum of codes, then `requantize` (the contract in cdsl.contract.ref.requant) with
    (M, S) = quantize_multiplier(1 / kernel**2). The gradient is that of the plain average.
    """
    m, s = avg_multiplier(op.kernel)
    with torch.no_grad():
        codes = round_half_up(x.double() / grid.scale.double())
        sums = F.avg_pool2d(codes, op.kernel, op.stride, divisor_override=1).to(torch.int64)  # exact: small ints
        out = requantize(sums, m, s, grid.qmin, grid.qmax)
        value = out.to(avg.dtype) * grid.scale
    return value + (avg - avg.detach())


def _make(model: ir.Model, lay: ir.Layer, scales: Scales) -> nn.Module | None:
    op = lay.op
    ann = lay.annotations
    in_shape = model.shape_of(lay.inputs[0])
    common = dict(quant=ann.quant, prune=ann.prune, scales=scales)
    if isinstance(op, ir.Dense):
        if len(in_shape) != 1:
            raise CdslError(f"dense layer {lay.name!r} needs a 1-D input, got {list(in_shape)!r}", span=lay.span,
                            expected="flatten first")
        return QWeighted(kind="dense", in_size=in_shape[0], out_size=op.units, bias=op.bias,
                         out_signed=output_signed(model, lay), **common)
    if isinstance(op, ir.Conv2d):
        if len(in_shape) != 3:
            raise CdslError(f"conv2d layer {lay.name!r} needs a [C, H, W] input, got {list(in_shape)!r}", span=lay.span)
        return QWeighted(kind="conv2d", in_size=in_shape[0], out_size=op.channels, kernel=op.kernel,
                         stride=op.stride, padding=op.padding, bias=op.bias,
                         out_signed=output_signed(model, lay), **common)
    if isinstance(op, ir.PatchEmbed):
        return PatchEmbed(channels=in_shape[0], size=(in_shape[1], in_shape[2]), patch=op.patch, dim=op.dim, **common)
    if isinstance(op, ir.Encoder):
        return EncoderBlock(dim=in_shape[1], heads=op.heads, mlp=op.mlp, **common)
    if isinstance(op, ir.ClsHead):
        return ClsHead(dim=in_shape[1], classes=op.classes, **common)
    return None


def parameter_count(net: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in net.parameters())
