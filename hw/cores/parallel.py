"""The bit-parallel MAC core: `lanes` full multiplies per cycle (`cdsl.hw.mac.Mac`).

Cycles: every row (a group of `pe` output channels) takes `steps` cycles, busy = rows * pixels * steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.ref.mac import ParallelCore
from cdsl.hw.kinds._mac import MacUnit, plan_mac
from cdsl.hw.registry import register_core


@codec.serializable("parallel_unit")
@dataclass(frozen=True, eq=False)
class ParallelUnit(MacUnit):
    supports_pe = True
    @property
    def latency(self) -> int:
        from cdsl.hw.mac import LATENCY

        return LATENCY

    def component(self, node):
        from cdsl.hw.mac import Mac

        in_type = node.in_types[0]
        return Mac(lanes=node.lanes, a_width=in_type.bits, a_signed=in_type.signed, w_bits=node.w_bits,
                   acc_width=node.acc_width)

    def busy_cycles(self, node, settings):
        return node.rows * node.pixels * node.steps

    def describe(self) -> str:
        return "bit-parallel MAC"


@register_core(ParallelCore)
def plan_parallel(layer, ctx):
    return plan_mac(layer, ctx, ParallelUnit(), spec_lanes=layer.payload.core.lanes)
