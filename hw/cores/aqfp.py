"""The AQFP stochastic accumulator as a MAC core: a binary layer whose payload holds an `AqfpCore` runs on a
`MacEngine` whose reducer is `cdsl.hw.aqfp_accumulator.AqfpAccumulator`.

Lanes: the crossbar groups evaluated in parallel, per kernel position. By default all of them (the
whole crossbar column: one step per kernel position, T cycles each); a plan's per-layer `lanes`
override gives the number of groups instead, and the engine then reads min(groups * group, C) inputs
per step. The spec does not choose it and folding leaves it alone (the default is the full crossbar).
Runtime settings `T` and `seed` (the core's) come from the engine's registers; the thresholds tau sit
in a ROM read by the row. Cycles: outputs * steps * max(T, 1), steps = ceil(C / lanes) * k * k. The
engine's figures in the manifest include the energy model's estimate per inference (for `cdsl report`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import memory

from cdsl.contract import codec
from cdsl.contract.ref import aqfp_accumulator as ref
from cdsl.contract.ref.aqfp_accumulator import AqfpCore
from cdsl.contract.ref.aqfp_energy import layer_energy
from cdsl.hw.kinds._mac import MacUnit, plan_mac
from cdsl.hw.registry import UnsupportedModel, register_core


@codec.serializable("aqfp_unit")
@dataclass(frozen=True, eq=False)
class AqfpUnit(MacUnit):
    core: AqfpCore

    def groups(self, node) -> ref.Groups:
        return self.core.groups(node.in_shape[0] * node.kernel * node.kernel)

    @property
    def latency(self) -> int:
        from cdsl.hw.aqfp_accumulator import LATENCY

        return LATENCY

    @property
    def tau_bits(self) -> int:
        return max(int(self.core.tau.max()).bit_length(), 1)

    def settings(self, node):
        return self.core.settings(w_bits=node.w_bits)

    def component(self, node):
        from cdsl.hw.aqfp_accumulator import AqfpAccumulator

        core = self.core
        return AqfpAccumulator(lanes=node.lanes, a_width=node.in_types[0].bits, w_bits=node.w_bits, group=core.group,
                               channels=node.in_shape[0], taps=node.kernel * node.kernel,
                               rows=node.out_shape[0] * node.pixels, table=core.table, table_partial=core.table_partial,
                               t_max=core.t_max, tau_bits=self.tau_bits, acc_width=node.acc_width)

    def wire(self, m, node, engine, reducer, *, step, advance, start):
        rom = m.submodules.thresholds = memory.Memory(shape=unsigned(self.tau_bits), depth=max(len(self.core.tau), 2),
                                                      init=[int(v) for v in self.core.tau])
        rd = rom.read_port()
        m.d.comb += [rd.addr.eq(step.row), rd.en.eq(advance), reducer.i.payload.tau.eq(rd.data),
                     reducer.T.eq(engine.T), reducer.lfsr_seed.eq(engine.seed)]

    def step_cycles(self, node, row, settings):
        return max(settings.get("T", self.core.T), 1)

    def busy_cycles(self, node, settings):
        return node.out_shape[0] * node.pixels * node.steps * max(settings.get("T", self.core.T), 1)

    def acc_range(self, node):
        from cdsl.hw.aqfp_accumulator import margin_range

        return margin_range(self.groups(node), self.core.t_max, self.tau_bits)

    def describe(self) -> str:
        return f"AQFP stochastic accumulator (groups of {self.core.group}, T={self.core.T})"

    def figures(self, node):
        groups = self.groups(node)
        energy = layer_energy(node.name, fan_in=node.in_shape[0] * node.kernel * node.kernel, outputs=node.out_shape[0],
                              pixels=node.pixels, groups=groups.count, T=max(self.core.T, 1))
        return {"crossbar_groups": groups.count, "groups_per_step": -(-node.lanes // self.core.group),
                "group_size": groups.size, "partial_group": groups.partial if groups.partial != groups.size else None,
                "energy_per_inference_j": {"aqfp": energy.aqfp, "aqfp_cooled": energy.aqfp_cooled, "cmos": energy.cmos,
                                           "model": "cdsl.contract.ref.aqfp_energy, default parameters, default T"}}


@register_core(AqfpCore)
def plan_aqfp(layer, ctx):
    core = layer.payload.core
    in_type = ctx.in_types[0]
    if (in_type.bits, in_type.signed) != (2, True):
        raise UnsupportedModel(f"layer {layer.name!r}: the AQFP accumulator reads +1/-1 (2-bit signed) inputs, "
                               f"not {in_type.bits}-bit {'signed' if in_type.signed else 'unsigned'} ones")
    groups = core.groups(layer.payload.fan_in)
    per_step = ctx.lanes.get(layer.name, groups.chunks)
    if not isinstance(per_step, int) or per_step < 1:
        raise UnsupportedModel(f"layer {layer.name!r}: lanes (crossbar groups per step) must be a positive int, "
                               f"got {per_step!r}")
    lanes = min(per_step * core.group, groups.channels)
    return plan_mac(layer, dataclasses.replace(ctx, lanes={}), AqfpUnit(core=core), spec_lanes=lanes)
