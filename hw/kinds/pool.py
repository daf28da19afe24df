"""maxpool and avgpool on a `PoolEngine`: one window element per cycle, kernel * kernel steps per output.

Cycle model (`PoolNode.delay`): outputs * k * k busy cycles + START + FETCH + the reducer's latency,
plus the requantization unit's latency for an average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.ref.pool import AvgPoolPayload, MaxPoolPayload
from cdsl.dsl.ir import PoolKind
from cdsl.hw._engine import FETCH, RESTART, START
from cdsl.hw.plan import Node, StreamType
from cdsl.hw.pool_reduce import LATENCY as REDUCE_LATENCY
from cdsl.hw.registry import register
from cdsl.hw.requant_unit import LATENCY as REQUANT_LATENCY
from cdsl.hw.widths import signed_width, sum_range

codec.serializable("pool_kind")(PoolKind)


@codec.serializable("pool_engine")
@dataclass(frozen=True, eq=False)
class PoolNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType
    reduce: PoolKind
    kernel: int
    stride: int
    requant: tuple[int, int, int, int] | None  # average: (multiplier, shift, qmin, qmax); max: None

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.in_types[0].shape)  # type: ignore[return-value]

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return tuple(self.out_type.shape)  # type: ignore[return-value]

    @property
    def acc_width(self) -> int:
        return signed_width(*sum_range(self.in_types[0].range, self.kernel * self.kernel))

    def component(self):
        from cdsl.hw.pool_engine import PoolEngine

        return PoolEngine(node=self)

    def delay(self, settings):
        busy = math.prod(self.out_shape) * self.kernel * self.kernel
        return busy + START + FETCH + REDUCE_LATENCY + (REQUANT_LATENCY if self.requant is not None else 0)

    def interval(self, settings):
        return max(math.prod(self.out_shape) * self.kernel * self.kernel + RESTART, self.in_types[0].words)

    def memory_bits(self) -> int:
        return 2 * math.prod(self.in_shape) * self.in_types[0].bits

    def describe(self) -> str:
        return f"{self.reduce.value} pooling {self.kernel}x{self.kernel}/{self.stride}"

    def figures(self, settings):
        return {"delay": self.delay(settings), "interval": self.interval(settings), "frame_bits": self.memory_bits(),
                "acc_width": self.acc_width, "frame_words": math.prod(self.in_shape)}


def _node(layer, ctx, reduce: PoolKind, requant) -> PoolNode:
    pay = layer.payload
    return PoolNode(name=layer.name, inputs=ctx.in_streams, in_types=ctx.in_types,
                    out_type=StreamType(layer.out_type.bits, layer.out_type.signed, tuple(layer.out_shape)),
                    reduce=reduce, kernel=pay.kernel, stride=pay.stride, requant=requant)


@register(MaxPoolPayload)
def plan_maxpool(layer, ctx):
    return _node(layer, ctx, PoolKind.MAX, None)


@register(AvgPoolPayload)
def plan_avgpool(layer, ctx):
    rq = layer.payload.requant
    return _node(layer, ctx, PoolKind.AVG, (int(rq.multiplier[0]), int(rq.shift[0]), rq.qmin, rq.qmax))
