"""IR -> torch.nn.Module with the compression annotations in the forward pass.

`build(spec)` returns a `Net`: it runs the layers in topological order, carrying for every
tensor its value and, when it lies on an integer grid, that grid (scale, bits, signedness). Each
layer's module comes from its kind (`cdsl.sw.registry.sw_kind(op).build`); nothing here names a
kind. The model inputs are always quantized with their declared fixed-point type (round half up,
clamp), the same rule as `QType.quantize` in the contract.

Which annotations act is chosen per training stage with `Net.set_compress(names)` (None = all of
them, () = float). An annotation that the layer's kind does not implement in training is refused
with a CdslError at the annotation (`check_supported`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cdsl.dsl import ir
from cdsl.sw.layers import ActQuant, Compressible, Grid, QWeighted, Scales, WeightedParams, WeightQuant, fake_quant, \
    round_half_up
from cdsl.sw.registry import sw_kind

# The annotation kinds a training stage can switch (`compress=[...]`): every annotation.
ACTIVE_KINDS = ir.ANNOTATION_NAMES


def build(spec: ir.Spec | ir.Model, *, scales: Scales = Scales()) -> "Net":
    """A trainable module for `spec` (see `cdsl.sw.layers.Scales` for how scales are found)."""
    if not isinstance(scales, Scales):
        raise TypeError(f"scales must be a Scales, got {scales!r}")
    model = spec.model if isinstance(spec, ir.Spec) else spec
    check_supported(model)
    return Net(model, scales=scales)


def check_supported(model: ir.Model) -> None:
    """Refuse an annotation that the layer's kind does not implement in training (at its span)."""
    for lay in model.layers:
        for stage, err in sw_kind(lay.op).problems(model, lay):
            if stage == "train":
                raise err


class Net(nn.Module):
    """The trainable network of one ir.Model. forward(x) -> output tensor (or dict of outputs)."""

    def __init__(self, model: ir.Model, *, scales: Scales):
        super().__init__()
        self.model = model
        self.blocks = nn.ModuleDict()
        for lay in model.topo_order():
            self.blocks[lay.name] = sw_kind(lay.op).build(model, lay, scales)
        self.active: tuple[str, ...] = ()
        self.set_compress(())

    # ------------------------------------------------------------ compression control

    def set_compress(self, names) -> None:
        """Activate the given annotation kinds (None: all)."""
        names = ACTIVE_KINDS if names is None else tuple(names)
        self.active = tuple(n for n in ACTIVE_KINDS if n in names)
        for mod in self.modules():
            if isinstance(mod, Compressible):
                mod.set_compress(self.active)

    def quantizers(self):
        return [m for m in self.modules() if isinstance(m, (ActQuant, WeightQuant))]

    def needs_calibration(self) -> bool:
        return "quant" in self.active and any(not bool(m.calibrated) for m in self.quantizers())

    @torch.no_grad()
    def calibrate(self, x) -> None:
        """Initialize weight scales (max-abs) and activation scales (max over the batch `x`)."""
        for mod in self.modules():
            if isinstance(mod, WeightedParams) and mod.wq is not None:
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
    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        """Called before each training epoch (0-based): pruning masks ramp, bit widths drop, ..."""
        for mod in self.modules():
            if isinstance(mod, Compressible):
                mod.start_epoch(epoch, total_epochs)

    def epoch_notes(self) -> list[str]:
        """What the layers report about the epoch just run (`Compressible.epoch_note`), `name: note`."""
        notes = []
        for name, block in self.blocks.items():
            for mod in block.modules():
                if isinstance(mod, Compressible) and (note := mod.epoch_note()):
                    notes.append(f"{name} {note}")
        return notes

    def regularizer(self) -> torch.Tensor:
        """The sum of every active module's regularization term (0 when none)."""
        terms = [mod.regularizer() for mod in self.modules() if isinstance(mod, Compressible)]
        terms = [t for t in terms if t is not None]
        return sum(terms) if terms else torch.zeros(())

    def objective(self, x: torch.Tensor, y: torch.Tensor):
        """(training loss, outputs) for a batch: the classification loss plus the regularizers, as
        every active annotation's objective (`cdsl.sw.objectives`) shapes it."""
        from cdsl.sw.objectives import objective

        return objective(self, x, y)

    @torch.no_grad()
    def apply_masks(self) -> None:
        for mod in self.modules():
            if isinstance(mod, WeightedParams):
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
            env[lay.name], grids[lay.name] = self.blocks[lay.name](
                [env[n] for n in lay.inputs], [grids[n] for n in lay.inputs])
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


def weighted_modules(net: nn.Module) -> list[QWeighted]:
    return [m for m in net.modules() if isinstance(m, QWeighted)]


def parameter_count(net: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in net.parameters())
