"""Bit-serial MAC: the weight operand enters one bit-plane per cycle, MSB plane first.

Stream in `i`: one step per transfer, payload `step_layout` below: `x` (lanes activations) and `w`,
one word of the plane ROM (`plane_word_layout`): `bits` (the plane: bit j is that bit of lane j's
two's-complement weight, `lanes` bits), `plane` (its number b), `next` and `more` (the row's next set
plane, if any), plus `first`, `last`. The MAC holds each step for one cycle per active plane: the
set planes of the row's mask (MSB first) within the top p, p = `precision` (a port; 0 or anything
above `w_bits` means full precision, so an undriven port computes exactly); stopping after p planes
is TruncQuant's truncation `(w >> (B-p)) << (B-p)`. A step with no active plane takes one cycle and
adds zero.

The plane ROM (`plane_rom_words`) stores each step's set planes at their plane numbers, the top one
also at w_bits-1, where every step starts; a per-row order ROM at the same plane numbers
(`order_rom_words`) names each plane and the next set plane below it. So the active
planes at any precision are the first ones read, and a word says whether another active one follows.
Output `plane_index` is the word to read for the next cycle while the step is held: the next plane
after a processed one, the same word in a stall (the engine reads word w_bits-1 of the next step
when the MAC accepts; `drive_plane_rom`).
In a cycle on plane b the MAC adds `sum_j(x_j * bits_j) << b` to the row's accumulator, subtracting
on the MSB plane (b = w_bits-1) by an inverted operand and a carry-in; the shift is as narrow as the
lane sum. The accumulator clears when a row's sum is emitted. Stream out `o`: one signed sum per
row, LATENCY cycle after its last step.

Arithmetic and cycles are defined by `cdsl.contract.ref.bitserial_mac` (bitserial_dot, row_cycles).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw.mac import check_mac_params
from cdsl.contract.ref.bitserial_mac import LATENCY

__all__ = ["BitSerialMac", "LATENCY", "plane_word_layout", "order_layout", "step_layout", "plane_rom_words",
           "order_rom_words", "drive_plane_rom", "index_bits"]


def index_bits(w_bits: int) -> int:
    """Bits of a plane number or of a plane index within a step (the low address bits of the plane ROM)."""
    return max((w_bits - 1).bit_length(), 1)


def plane_word_layout(*, lanes: int, w_bits: int) -> data.StructLayout:
    """What the MAC reads per cycle: the plane's `bits` (bit j: lane j; from the plane ROM), and from the
    row's order ROM its number, the next set plane, whether there is one."""
    return data.StructLayout({"bits": lanes, **order_layout(w_bits).members})


def order_layout(w_bits: int) -> data.StructLayout:
    """One word of the order ROM: a plane's number, the next set plane below it, whether there is one."""
    ib = index_bits(w_bits)
    return data.StructLayout({"plane": ib, "next": ib, "more": 1})


def step_layout(*, lanes: int, a_width: int, a_signed: bool, w_bits: int) -> data.StructLayout:
    """The payload of a bit-serial MAC step: x, one plane word, first, last."""
    a_shape = signed(a_width) if a_signed else Shape(a_width, False)
    return data.StructLayout({"x": data.ArrayLayout(a_shape, lanes), "w": plane_word_layout(lanes=lanes, w_bits=w_bits),
                              "first": 1, "last": 1})


def _set_planes(mask: int, w_bits: int) -> list[int]:
    return [b for b in range(w_bits - 1, -1, -1) if (mask >> b) & 1]


def plane_rom_words(words: list[list[int]], masks: list[int], *, w_bits: int) -> list[int]:
    """The plane ROM: words[a] (lanes weights of step a) with its row's mask masks[a] give the words at
    (a << index_bits) + b: for each set plane b of the mask, plane b (bit j: that bit of lane j's
    two's-complement weight), and at b = w_bits-1 the row's top set plane, where every step starts.
    Unused words are zero."""
    ib = index_bits(w_bits)
    rom = [0] * (max(len(words), 1) << ib)
    for a, (ws, mask) in enumerate(zip(words, masks)):
        planes = _set_planes(mask, w_bits)
        for b in planes:
            rom[(a << ib) + b] = sum((((w & ((1 << w_bits) - 1)) >> b) & 1) << j for j, w in enumerate(ws))
        if planes:
            rom[(a << ib) + w_bits - 1] = rom[(a << ib) + planes[0]]
    return rom


def order_rom_words(masks: list[int], *, w_bits: int) -> list[dict]:
    """The order ROM, one set of words per row (not per step): at (r << index_bits) + b for each set plane
    b of masks[r], {plane: b, next: the next set plane below b, more: whether there is one}, and at
    w_bits-1 the top set plane's word (a row without set planes: plane 0, nothing more)."""
    ib = index_bits(w_bits)
    zero = {"plane": 0, "next": 0, "more": 0}
    rom = [zero] * (max(len(masks), 1) << ib)
    for r, mask in enumerate(masks):
        planes = _set_planes(mask, w_bits)
        for i, b in enumerate(planes):
            more = i + 1 < len(planes)
            rom[(r << ib) + b] = {"plane": b, "next": planes[i + 1] if more else 0, "more": int(more)}
        if planes:
            rom[(r << ib) + w_bits - 1] = rom[(r << ib) + planes[0]]
    return rom


def drive_plane_rom(m: Module, reducer: "BitSerialMac", plane_words: list[int], order_words: list[dict], *,
                    lanes: int, w_bits: int, waddr, row, advance) -> None:
    """The plane ROM (at step `waddr`) and the order ROM (at `row`), read one word per cycle: word w_bits-1
    (the top plane) when the step advances, else the MAC's `plane_index` of the held step."""
    ib = index_bits(w_bits)
    prom = m.submodules.weights = memory.Memory(shape=lanes, depth=max(len(plane_words), 2), init=plane_words)
    orom = m.submodules.plane_order = memory.Memory(shape=order_layout(w_bits), depth=max(len(order_words), 2),
                                                    init=order_words)
    prd, ord_ = prom.read_port(), orom.read_port()
    held_waddr, held_row = Signal.like(waddr), Signal.like(row)
    with m.If(advance):
        m.d.sync += [held_waddr.eq(waddr), held_row.eq(row)]
    index = Mux(advance, Const(w_bits - 1, ib), reducer.plane_index)
    m.d.comb += [prd.addr.eq(Cat(index, Mux(advance, waddr, held_waddr))),
                 ord_.addr.eq(Cat(index, Mux(advance, row, held_row))),
                 reducer.i.payload.w.bits.eq(prd.data),
                 reducer.i.payload.w.plane.eq(ord_.data.plane), reducer.i.payload.w.next.eq(ord_.data.next),
                 reducer.i.payload.w.more.eq(ord_.data.more)]


class _Adder(wiring.Component):
    """a + b as its own module: with hierarchy kept (`synth_ice40 -noflatten`, as `cdsl report` runs it)
    Yosys maps it to one carry chain, a LUT per bit, instead of folding the whole tree into LUT logic."""

    def __init__(self, a: Shape, b: Shape):
        out = (Const(0, a) + Const(0, b)).shape()
        super().__init__({"a": In(a), "b": In(b), "s": Out(out)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.s.eq(self.a + self.b)
        return m


def adder_tree(m: Module, terms: list) -> object:
    """The sum of `terms` as a balanced tree of `_Adder` submodules."""
    level, n = list(terms), 0
    while len(level) > 1:
        nxt = []
        for a, b in zip(level[0::2], level[1::2]):
            add = _Adder(Shape.cast(a.shape()), Shape.cast(b.shape()))
            m.submodules[f"add{n}"] = add
            n += 1
            m.d.comb += [add.a.eq(a), add.b.eq(b)]
            nxt.append(add.s)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class BitSerialMac(wiring.Component):
    """Bit-serial multiply-accumulate with `lanes` lanes (see the module docstring)."""

    def __init__(self, *, lanes: int, a_width: int, a_signed: bool, w_bits: int, acc_width: int):
        self._lanes, self._a_width, self._a_signed, self._w_bits, self._acc_width = check_mac_params(
            lanes=lanes, a_width=a_width, a_signed=a_signed, w_bits=w_bits, acc_width=acc_width)
        super().__init__({
            "i": In(stream.Signature(step_layout(lanes=lanes, a_width=a_width, a_signed=a_signed, w_bits=w_bits))),
            "precision": In(range(w_bits + 1)),
            "plane_index": Out(index_bits(w_bits)),
            "o": Out(stream.Signature(signed(acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        bits, lanes = self._w_bits, self._lanes
        step = self.i.payload
        word = step.w
        acc = Signal(signed(self._acc_width))

        # planes below `cut` are dropped (precision p keeps b >= B - p)
        cut = Signal(range(bits + 1))
        full = self.precision == 0
        if (1 << len(self.precision)) - 1 > bits:  # the port can hold a value above the width (not for 3, 7, 15 bits)
            full = full | (self.precision > bits)
        m.d.comb += cut.eq(Mux(full, 0, bits - self.precision))
        active = Signal()
        m.d.comb += active.eq(word.plane >= cut)
        final_plane = ~word.more | (word.next < cut)

        lane_sum = adder_tree(m, [Mux(word.bits[j], step.x[j], 0) for j in range(lanes)])
        shifted = Signal(signed(Shape.cast(lane_sum.shape()).width + bits))
        m.d.comb += shifted.eq(Mux(active, lane_sum, 0) << word.plane)
        subtract = Signal()
        m.d.comb += subtract.eq(active & (word.plane == bits - 1))
        operand = Signal(signed(self._acc_width))  # shifted or ~shifted; the carry-in completes -shifted
        m.d.comb += operand.eq(shifted ^ subtract.replicate(self._acc_width).as_signed())
        acc_next = Signal(signed(self._acc_width))
        m.d.comb += acc_next.eq(acc + operand + subtract)

        advance = ~self.o.valid | self.o.ready
        fire = self.i.valid & advance
        m.d.comb += [self.i.ready.eq(advance & final_plane),
                     self.plane_index.eq(Mux(fire, word.next, word.plane))]

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(fire):
            m.d.sync += acc.eq(acc_next)
            with m.If(final_plane & step.last):
                m.d.sync += [self.o.payload.eq(acc_next), self.o.valid.eq(1), acc.eq(0)]
        return m
