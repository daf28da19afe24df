"""The plan node of a dense or conv2d layer on a MAC engine (`cdsl.hw.mac_engine.MacEngine`), and
the `MacUnit` interface a MAC core implements (bit-parallel `Mac`, bit-serial `BitSerialMac`).

A dense layer is a conv over a 1x1 image with K channels and a 1x1 kernel. Lanes (FINN's SIMD) run
over input channels: a step reads `lanes` channels at one kernel position, so steps = ceil(Ci / lanes)
* k * k. PE (processing elements) run over output channels: `pe` copies of the MAC unit share each
step's input word and compute `pe` consecutive output channels (a row of the engine is a group of
`pe` channels; the weight ROM word holds `pe * lanes` weights); their sums leave one per cycle in
channel order through one bias add and requantization: with one pixel per channel straight from a
register (`MacEngine._serialize`), with several through a double-buffered output buffer that holds a
row's sums at every pixel and reads them out channel by channel (`MacEngine._reorder`). PE > 1 needs
a unit that allows it (`MacUnit.supports_pe`), `pe` dividing the output channels, and pe <= steps, so
that the shared requantization (one output per cycle) never holds the MAC units up.

Cycle model (`MacEngineNode.delay`): from the engine's last input transfer to its last output
transfer, busy + START + FETCH + MAC latency + REQUANT_LATENCY, plus with pe > 1 the read-out of the
last row: pe (one pixel: the serializer's register and the row's other pe - 1 words) or
pe * pixels + 1 (several: the row's words and the buffer's read cycle). `busy` is the unit's
`busy_cycles` (rows * pixels * steps for a bit-parallel MAC; for a bit-serial one, pixels times the
sum over rows of steps * max(1, active planes of the row), a row's mask the OR of its channels' masks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cdsl.contract import codec
from cdsl.contract.intmodel import IntLayer, Setting
from cdsl.hw._engine import FETCH, RESTART, START
from cdsl.hw.plan import Foldable, Node, PlanContext, StreamType
from cdsl.hw.requant_unit import LATENCY as REQUANT_LATENCY
from cdsl.hw.widths import dot_range, signed_width



class MacUnit(codec.ArrayEq):
    """The MAC of an engine (a frozen dataclass registered with the codec): its component, the extra
    step fields it reads, its runtime settings, its latency and busy cycles."""

    supports_pe = False  # several copies may run in lock step on one step stream (PE > 1)

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

    def pe_view(self, node: "MacEngineNode") -> "MacUnit":
        """The unit as one of a PE engine's `pe` lock-step copies sees itself: copy u's weights come from
        `view.unit.weights(..., view, ...)` with view = `cdsl.hw.mac_engine.pe_view(node, u)` (an engine of
        `rows` channels, PE 1); a unit with per-row tables (the bit-serial plane masks) regroups them."""
        return self

    def wire(self, m, node: "MacEngineNode", engine, reducer, *, step, advance, start) -> None:
        """Drive the reducer's inputs beyond x/w/first/last (ROMs, latched settings)."""

    def busy_cycles(self, node: "MacEngineNode", settings: Mapping[str, int]) -> int:
        raise NotImplementedError

    def step_cycles(self, node: "MacEngineNode", row: int, settings: Mapping[str, int]) -> int:
        """Cycles the reducer takes per step of output channel `row` (1 for a bit-parallel MAC)."""
        return 1

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
    pe: int
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

    @property
    def rows(self) -> int:
        """Output channels per pixel the engine walks: groups of `pe` channels."""
        return self.out_shape[0] // self.pe


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

    def pe_problem(self, pe: int, lanes: int | None = None) -> str | None:
        """Why this engine cannot run `pe` MAC units (with `lanes` lanes), or None when it can."""
        lanes = self.lanes if lanes is None else lanes
        steps = -(-self.in_shape[0] // lanes) * self.kernel * self.kernel
        if pe == 1:
            return None
        if not self.unit.supports_pe:
            return f"its {self.unit.describe()} runs one unit per engine (PE 1)"
        if self.out_shape[0] % pe:
            return f"PE {pe} does not divide its {self.out_shape[0]} output channels"
        if pe > steps:
            return f"PE {pe} exceeds its {steps} steps per output (the shared requantization takes one per cycle)"
        return None

    def pe_choices(self, lanes: int) -> tuple[int, ...]:
        co_n = self.out_shape[0]
        divisors = [d for d in range(1, math.isqrt(co_n) + 1) if co_n % d == 0]
        divisors = sorted(set(divisors) | {co_n // d for d in divisors})
        return tuple(d for d in divisors if self.pe_problem(d, lanes) is None)

    # ---- Node
    def component(self):
        from cdsl.hw.mac_engine import MacEngine

        return MacEngine(node=self)

    def settings(self) -> tuple[Setting, ...]:
        return self.unit.settings(self)

    def busy_cycles(self, settings):
        return self.unit.busy_cycles(self, settings)

    def delay(self, settings):
        serial = 0 if self.pe == 1 else self.pe if self.pixels == 1 else self.pe * self.pixels + 1
        return self.busy_cycles(settings) + START + FETCH + self.unit.latency + serial + REQUANT_LATENCY

    def interval(self, settings):
        """Back to back: busy cycles, plus the generator's restart unless the reducer hides it (it
        does when the frame's second-to-last step takes two cycles or more: `cdsl.hw._engine`)."""
        rows = self.rows
        if self.steps * self.pixels * rows < 2:
            restart = RESTART
        else:
            row = rows - 1 if self.steps * self.pixels >= 2 else rows - 2
            restart = RESTART if self.unit.step_cycles(self, row, settings) < 2 else 0
        return max(self.busy_cycles(settings) + restart, self.in_types[0].words, self.out_type.words)

    def memory_bits(self) -> int:
        """The double-buffered input frame, and with PE > 1 over several pixels the double-buffered
        output rows (pe sums per pixel)."""
        reorder = 2 * self.pixels * self.pe * self.acc_width if self.pe > 1 and self.pixels > 1 else 0
        return 2 * self.frame_words * self.lanes * self.in_types[0].bits + reorder

    def describe(self) -> str:
        return (f"{self.unit.describe()} {list(self.in_shape)} -> {list(self.out_shape)}, {self.lanes} lanes"
                f"{' (fixed)' if self.lanes_fixed else ''}" + (f" x PE {self.pe}" if self.pe > 1 else ""))

    def figures(self, settings):
        return {"delay": self.delay(settings), "mac_cycles": self.busy_cycles(settings), "lanes": self.lanes,
                "pe": self.pe,
                "steps_per_output": self.steps, "acc_width": self.acc_width, "acc_range": list(self.acc_range),
                "interval": self.interval(settings), "frame_words": self.frame_words,
                "frame_bits": self.memory_bits(), "weight_words": self.rows * self.steps,
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
        lanes=max(1, min(lanes, in_shape[0])), lanes_fixed=fixed, pe=1, w_bits=pay.w_bits, weight=weight,
        bias=None if pay.bias is None else np.asarray(pay.bias, dtype=np.int64).reshape(-1),
        multipliers=tuple(int(v) for v in np.asarray(rq.multiplier).reshape(-1)),
        shifts=tuple(int(v) for v in np.asarray(rq.shift).reshape(-1)), qmin=rq.qmin, qmax=rq.qmax)


def plan_mac(layer: IntLayer, ctx: PlanContext, unit: MacUnit, *, spec_lanes: int | None) -> MacEngineNode:
    """The MacEngineNode of a dense or conv2d layer with the given MAC unit (PE 1; folding may raise it)."""
    return MacEngineNode(**weighted_fields(layer, ctx, spec_lanes=spec_lanes), unit=unit)
