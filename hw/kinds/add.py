"""add: a join of two streams on an `AddEngine`. The plan puts a one-inference FIFO in front of each
input (`cdsl.hw.plan`), so the join never stalls a producer. Cycle model: the last sum leaves
REQUANT_LATENCY cycles after the join takes its last pair of inputs."""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.ref.add import AddPayload
from cdsl.hw.requant_unit import LATENCY as REQUANT_LATENCY
from cdsl.hw.plan import Node, StreamType
from cdsl.hw.registry import register
from cdsl.hw.widths import signed_width


@codec.serializable("add_engine")
@dataclass(frozen=True, eq=False)
class AddNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType
    mult_a: int
    mult_b: int
    shift: int
    qmin: int
    qmax: int

    @property
    def acc_range(self) -> tuple[int, int]:
        """Range of a * mult_a + b * mult_b (the multipliers are non-negative)."""
        (alo, ahi), (blo, bhi) = (t.range for t in self.in_types)
        return alo * self.mult_a + blo * self.mult_b, ahi * self.mult_a + bhi * self.mult_b

    @property
    def acc_width(self) -> int:
        return max(2, signed_width(*self.acc_range))

    def component(self):
        from cdsl.hw.add_engine import AddEngine

        return AddEngine(node=self)

    def delay(self, settings):
        return REQUANT_LATENCY

    def describe(self) -> str:
        return f"add (join of {self.inputs[0]} and {self.inputs[1]}, rescale >> {self.shift})"

    def figures(self, settings):
        return {"delay": self.delay(settings), "acc_width": self.acc_width, "multipliers": [self.mult_a, self.mult_b],
                "shift": self.shift}


@register(AddPayload)
def plan_add(layer, ctx):
    pay = layer.payload
    return AddNode(name=layer.name, inputs=ctx.in_streams, in_types=ctx.in_types,
                   out_type=StreamType(layer.out_type.bits, layer.out_type.signed, tuple(layer.out_shape)),
                   mult_a=pay.mult_a, mult_b=pay.mult_b, shift=pay.shift, qmin=pay.qmin, qmax=pay.qmax)
