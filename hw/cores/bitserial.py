"""The bit-serial MAC core: one weight bit-plane per cycle, MSB first (`cdsl.hw.bitserial_mac.BitSerialMac`).

Runtime setting `precision` (0 = all planes): the planes processed, latched when a frame starts
computing. Per-row plane masks (`plane_masks`, from the weights at plan time, kept in the plan) skip
planes with no set bit. Cycles: for each output, steps * max(1, active planes among the top
`precision`) (`cdsl.contract.ref.bitserial_mac.row_cycles`). The weights are stored as bit-planes
(`cdsl.hw.bitserial_mac.plane_rom_words`): one `lanes`-bit word is read per cycle, with the plane's
number and the next set plane of its row from a per-row order ROM (`order_rom_words`). With PE > 1 a
row is a group of channels and its mask the OR of theirs (every unit of the group reads its own
plane ROM on the group's plane schedule: `pe_view`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from amaranth.hdl import Signal

from cdsl.contract import codec
from cdsl.contract.ref import bitserial_mac as ref
from cdsl.contract.ref.bitserial_mac import BitSerialCore
from cdsl.hw.kinds._mac import MacUnit, plan_mac
from cdsl.hw.registry import register_core


@codec.serializable("bitserial_unit")
@dataclass(frozen=True, eq=False)
class BitSerialUnit(MacUnit):
    masks: tuple[int, ...]  # per output channel: bit b set iff some weight of that row has bit b set

    supports_pe = True

    def pe_view(self, node) -> "BitSerialUnit":
        """The unit one of the `pe` copies sees: the rows' (groups') masks, so all share one plane schedule."""
        return dataclasses.replace(self, masks=self.row_masks(node))

    def row_masks(self, node) -> tuple[int, ...]:
        """Per row of the engine: the OR of the masks of its `pe` channels (their units run in lock step;
        a plane that is zero in one channel adds zero there, so the result is exact)."""
        pe = node.pe
        out = []
        for r in range(len(self.masks) // pe):
            mask = 0
            for v in self.masks[r * pe:(r + 1) * pe]:
                mask |= v
            out.append(mask)
        return tuple(out)

    @property
    def latency(self) -> int:
        from cdsl.hw.bitserial_mac import LATENCY

        return LATENCY

    def settings(self, node):
        return BitSerialCore(lanes=node.lanes).settings(w_bits=node.w_bits)

    def component(self, node):
        from cdsl.hw.bitserial_mac import BitSerialMac

        in_type = node.in_types[0]
        return BitSerialMac(lanes=node.lanes, a_width=in_type.bits, a_signed=in_type.signed, w_bits=node.w_bits,
                            acc_width=node.acc_width)

    def weights(self, m, node, reducer, *, step, advance):
        from cdsl.hw.bitserial_mac import drive_plane_rom, order_rom_words, plane_rom_words
        from cdsl.hw.mac_engine import weight_rom_words

        words = weight_rom_words(node)
        planes = plane_rom_words(words, [self.masks[a // node.steps] for a in range(len(words))], w_bits=node.w_bits)
        order = order_rom_words(list(self.masks), w_bits=node.w_bits)
        drive_plane_rom(m, reducer, planes, order, lanes=node.lanes, w_bits=node.w_bits, waddr=step.waddr,
                        row=step.row, advance=advance)

    def wire(self, m, node, engine, reducer, *, step, advance, start):
        precision = Signal(range(node.w_bits + 1))
        with m.If(start):
            m.d.sync += precision.eq(engine.precision)
        m.d.comb += reducer.precision.eq(precision)

    def busy_cycles(self, node, settings):
        p = settings.get("precision", 0)
        p = node.w_bits if p == 0 or p > node.w_bits else p
        return node.pixels * sum(node.steps * max(1, len(ref.active_planes(mask, node.w_bits, p)))
                                 for mask in self.row_masks(node))

    def step_cycles(self, node, row, settings):
        p = settings.get("precision", 0)
        p = node.w_bits if p == 0 or p > node.w_bits else p
        return max(1, len(ref.active_planes(self.row_masks(node)[row], node.w_bits, p)))

    def describe(self) -> str:
        return "bit-serial MAC"

    def figures(self, node):
        return {"plane_masks": list(self.masks)}


@register_core(BitSerialCore)
def plan_bitserial(layer, ctx):
    pay = layer.payload
    masks = tuple(int(v) for v in ref.plane_masks(pay.weight, pay.w_bits))
    return plan_mac(layer, ctx, BitSerialUnit(masks=masks), spec_lanes=pay.core.lanes)
