"""The plan node of a dense or conv2d layer on a MAC engine (`cdsl.hw.mac_engine.MacEngine`), and
the `MacUnit` interface a MAC core implements (bit-parallel `Mac`, bit-serial `BitSerialMac`).

A dense layer is a conv over a 1x1 image with K channels and a 1x1 kernel. Lanes run over input
channels: a step reads `lanes` channels at one kernel position, so steps = ceil(Ci / lanes) * k * k.

Cycle model (`MacEngineNode.delay`): from the engine's last input transfer to its last output
transfer, busy + START + FETCH + MAC latency + REQUANT_LATENCY, where `busy` is the unit's
`busy_cycles` (outputs * steps for a bit-parallel MAC; for a bit-serial one, the sum over outputs
of steps * max(1, active planes)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cdsl.contract import codec
from cdsl.contract.intmodel import IntLayer, Setting
from cdsl.hw._engine import FETCH, START
from cdsl.hw.plan import Foldable, Node, PlanContext, StreamType
from cdsl.hw.requant_unit import LATENCY as REQUANT_LATENCY
from cdsl.hw.widths import dot_range, signed_width



class MacUnit(codec.ArrayEq):
    """The MAC of an engine (a frozen dataclass registered with the codec): its component, the extra
    step fields it reads, its runtime settings, its latency and busy cycles."""

    @property
    def latency(self) -> int:
        """Cycles from the reducer accepting a row's last step to its sum being valid."""
        raise NotImplementedError

    def settings(self, node: "MacEngineNode") -> tuple[Setting, ...]:
        return ()

    def component(self, node: "MacEngineNode"):
        """The reducer: stream `i` of steps (`cdsl.hw.mac.step_layout`), stream `o` of sums."""
        raise NotImplementedError

    def weights(self, m, node: "MacEngineNode", reducer, *, step, advance) -> None:
        """Drive the reducer's `w` from a weight ROM read at `step.waddr` when `advance` (default: one
        word of `lanes` full-width weights per step, `cdsl.hw.mac_engine.weight_rom`)."""
        from cdsl.hw.mac_engine import weight_rom

        weight_rom(m, node, reducer, step=step, advance=advance)

    def wire(self, m, node: "MacEngineNode", engine, reducer, *, step, advance, start) -> None:
        """Drive the reducer's inputs beyond x/w/first/last (ROMs, latched settings)."""

    def busy_cycles(self, node: "MacEngineNode", settings: Mapping[str, int]) -> int:
        raise NotImplementedError

    def acc_range(self, node: "MacEngineNode") -> tuple[int, int]:
        """The range of the reducer's result plus the bias: a dot product of the inputs and the weights by
        default; a unit whose result is something else (the AQFP margin) states its own."""
        k = node.in_shape[0] * node.kernel * node.kernel
        bias = (int(node.bias.min()), int(node.bias.max())) if node.bias is not None and node.bias.size else (0, 0)
        return dot_range(node.in_types[0].range, node.w_bits, k, bias)

    def describe(self) -> str:
        return type(self).__name__

    def figures(self, node: "MacEngineNode") -> dict:
        return {}


def chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A tensor shape as (C, H, W): a vector (K,) is (K, 1, 1)."""
    return (shape[0], 1, 1) if len(shape) == 1 else tuple(shape)  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class WeightedNode(Node, Foldable):
    """The fields every engine node of a dense or conv2d layer has (`weighted_fields` fills them).
    Shapes are (C, H, W) (dense: (K, 1, 1)); `lanes` input channels are read per frame-buffer word."""

    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int
    stride: int
    padding: int
    lanes: int
    lanes_fixed: bool
    w_bits: int
    weight: np.ndarray  # int64 [Co, Ci, k, k]
    bias: np.ndarray | None  # int64 [Co]
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    qmin: int
    qmax: int

    @property
    def max_lanes(self) -> int:
        return self.in_shape[0]

    @property
    def groups(self) -> int:
        """Lane groups of input channels per kernel position."""
        return -(-self.in_shape[0] // self.lanes)


@codec.serializable("mac_engine")
@dataclass(frozen=True, eq=False)
class MacEngineNode(WeightedNode):
    """A dense or conv2d layer on a `MacEngine`."""

    unit: MacUnit

    # ---- geometry
    @property
    def steps(self) -> int:
        """Steps (MAC transfers) per output."""
        return self.groups * self.kernel * self.kernel

    @property
    def pixels(self) -> int:
        return self.out_shape[1] * self.out_shape[2]

    @property
    def frame_words(self) -> int:
        return self.groups * self.in_shape[1] * self.in_shape[2]

    @property
    def acc_range(self) -> tuple[int, int]:
        return self.unit.acc_range(self)

    @property
    def acc_width(self) -> int:
        return signed_width(*self.acc_range)

    # ---- Node
    def component(self):
        from cdsl.hw.mac_engine import MacEngine

        return MacEngine(node=self)

    def settings(self) -> tuple[Setting, ...]:
        return self.unit.settings(self)

    def busy_cycles(self, settings):
        return self.unit.busy_cycles(self, settings)

    def delay(self, settings):
        return self.busy_cycles(settings) + START + FETCH + self.unit.latency + REQUANT_LATENCY

    def describe(self) -> str:
        return (f"{self.unit.describe()} {list(self.in_shape)} -> {list(self.out_shape)}, {self.lanes} lanes"
                f"{' (fixed)' if self.lanes_fixed else ''}")

    def figures(self, settings):
        return {"delay": self.delay(settings), "mac_cycles": self.busy_cycles(settings), "lanes": self.lanes,
                "steps_per_output": self.steps, "acc_width": self.acc_width, "acc_range": list(self.acc_range),
                "frame_words": self.frame_words, "weight_words": self.weight.shape[0] * self.steps,
                **self.unit.figures(self)}


def weighted_fields(layer: IntLayer, ctx: PlanContext, *, spec_lanes: int | None) -> dict:
    """The fields every engine node of a dense or conv2d layer has: its streams, shapes (a dense layer
    is the 1x1 conv of a (K, 1, 1) input), window, lanes, weights [Co, Ci, k, k], bias and requantization."""
    pay = layer.payload
    in_shape = chw(tuple(ctx.in_types[0].shape))
    out_shape = chw(tuple(layer.out_shape))
    kernel, stride, padding = pay.window()  # a dense layer is the 1x1 case of the same engine
    if pay.fan_in == math.prod(in_shape) and in_shape[1:] != (1, 1) and kernel == 1:
        in_shape = (math.prod(in_shape), 1, 1)  # a dense layer reads a (C, H, W) stream row-major
    weight = np.asarray(pay.weight, dtype=np.int64).reshape(pay.out_channels, in_shape[0], kernel, kernel)
    lanes, fixed = ctx.lanes_for(layer.name, spec_lanes)
    rq = pay.requant
    return dict(
        name=layer.name, inputs=ctx.in_streams, in_types=ctx.in_types,
        out_type=StreamType(layer.out_type.bits, layer.out_type.signed, tuple(layer.out_shape)),
        in_shape=in_shape, out_shape=out_shape, kernel=kernel, stride=stride, padding=padding,
        lanes=max(1, min(lanes, in_shape[0])), lanes_fixed=fixed, w_bits=pay.w_bits, weight=weight,
        bias=None if pay.bias is None else np.asarray(pay.bias, dtype=np.int64).reshape(-1),
        multipliers=tuple(int(v) for v in np.asarray(rq.multiplier).reshape(-1)),
        shifts=tuple(int(v) for v in np.asarray(rq.shift).reshape(-1)), qmin=rq.qmin, qmax=rq.qmax)


def plan_mac(layer: IntLayer, ctx: PlanContext, unit: MacUnit, *, spec_lanes: int | None) -> MacEngineNode:
    """The MacEngineNode of a dense or conv2d layer with the given MAC unit."""
    return MacEngineNode(**weighted_fields(layer, ctx, spec_lanes=spec_lanes), unit=unit)
