"""AQFP-style stochastic accumulator: the reducer of a binary layer on a `MacEngine` (`@binary @aqfp`).

Its arithmetic is `cdsl.contract.ref.aqfp_accumulator` (groups, gray-zone tables, LFSRs, margins); this
is the hardware that computes it, bit for bit given the seed:

- XNOR-popcount groups: a step carries `lanes` inputs and weights (+1/-1, 0 where there is none: zero
  padding, channels past the layer's) split into lane groups of `group` lanes, each one crossbar group
  of the reference; `channels` and `taps` say which group (chunk of channels, kernel position) a lane
  group holds at each step and whether it is full, partial or absent. Each lane group sums its
  products into its current d and reads its table entry (the probability of a 1, in 256ths).
- LFSR bit generators: one 32-bit Galois LFSR per group of the layer, stepped 8 bits per cycle in
  which its group is evaluated; its 8-bit draw below the table entry is the group's bit. All LFSRs
  restart when a new inference begins (after `rows` rows), group g at the `lfsr_seed` port's value
  jumped (g + 1) * 2**24 steps ahead (a constant XOR network per group).
- Counter: the bits of every group, over T cycles per step and every step of a row, add up to the
  count; at the row's end the margin count * 2**16 - tau * T goes out on `o` (tau: the row's
  threshold, carried with each step). T = 0 (the noise-free limit) takes one cycle per step and adds
  the table entries themselves: margin = sum * 2**8 - tau.

Ports: `i` (steps, `aqfp_step_layout`), `T` and `lfsr_seed` (the layer's runtime settings T and
seed, latched when an inference begins), `o` (signed margins). Timing: each step is held for
max(T, 1) cycles (the MAC engine's fetch stage waits, as for a bit-serial MAC), a row's margin is
valid LATENCY cycle after its last step's last cycle.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.contract.ref import aqfp_accumulator as ref
from cdsl.hw._checks import check_int, const_table, index_shape
from cdsl.hw._reduce import chained_sum
from cdsl.hw.mac import step_layout
from cdsl.hw.widths import signed_width

LATENCY = 1  # cycles from accepting a row's last step (on its last cycle) to its margin being valid
ABSENT = 0  # a lane group with no channel at a step


def aqfp_step_layout(*, lanes: int, a_width: int, w_bits: int, tau_bits: int) -> data.StructLayout:
    """A MAC step (`cdsl.hw.mac.step_layout`) plus the row's threshold `tau`."""
    base = step_layout(lanes=lanes, a_width=a_width, a_signed=True, w_bits=w_bits)
    return data.StructLayout({**{name: member.shape for name, member in base}, "tau": unsigned(tau_bits)})


def t_port_max(t_max: int) -> int:
    """The largest value the `T` port (as wide as t_max) can carry: the counter is sized for it."""
    return (1 << max(t_max.bit_length(), 1)) - 1


def count_top(groups: ref.Groups, t_max: int) -> int:
    """The largest count: every bit of every group for the largest T, or every table entry at 2**8 (T = 0)."""
    return groups.count * max(t_port_max(t_max), 1 << ref.DRAW_BITS)


def margin_range(groups: ref.Groups, t_max: int, tau_bits: int) -> tuple[int, int]:
    """Range of the margin for any T the port can carry (and T = 0) and any `tau_bits`-bit threshold."""
    t_top = t_port_max(t_max)
    return -((1 << tau_bits) - 1) * t_top, groups.count * t_top << ref.TAU_FRAC


class AqfpAccumulator(wiring.Component):
    """See the module docstring. `table`/`table_partial`: the reference's integer tables (the latter None
    when every group is full); `rows`: outputs per inference; `tau_bits`: width of the thresholds."""

    def __init__(self, *, lanes: int, a_width: int, w_bits: int, group: int, channels: int, taps: int, rows: int,
                 table, table_partial, t_max: int, tau_bits: int, acc_width: int):
        self._lanes = check_int("lanes", lanes, lo=1)
        self._a_width = check_int("a_width", a_width, lo=1, hi=8)
        self._w_bits = check_int("w_bits", w_bits, lo=1, hi=8)
        self._groups = ref.Groups(channels=check_int("channels", channels, lo=1), taps=check_int("taps", taps, lo=1),
                                  size=check_int("group", group, lo=1))
        if lanes % group and lanes < channels:
            raise ValueError(f"lanes={lanes!r} must be a multiple of group={group!r} or hold all {channels!r} channels")
        self._rows = check_int("rows", rows, lo=1)
        self._t_max = check_int("t_max", t_max, lo=1, hi=1 << 16)
        self._tau_bits = check_int("tau_bits", tau_bits, lo=1, hi=48)
        self._tables = {group: self._table(table, group, "table")}
        g = self._groups
        if g.partial != g.size:
            self._tables[g.partial] = self._table(table_partial, g.partial, "table_partial")
        elif table_partial is not None:
            raise ValueError(f"table_partial must be None: {group!r} divides the {channels!r} channels")
        lo, hi = margin_range(g, t_max, tau_bits)
        self._acc_width = check_int("acc_width", acc_width, lo=signed_width(lo, hi), hi=64)
        super().__init__({
            "i": In(stream.Signature(aqfp_step_layout(lanes=lanes, a_width=a_width, w_bits=w_bits, tau_bits=tau_bits))),
            "T": In(range(t_max + 1)),
            "lfsr_seed": In(ref.LFSR_BITS),
            "o": Out(stream.Signature(signed(acc_width))),
        })

    @staticmethod
    def _table(values, size: int, name: str) -> tuple[int, ...]:
        one = 1 << ref.DRAW_BITS
        if values is None or len(values) != 2 * size + 1 or any(not 0 <= int(v) <= one for v in values):
            raise ValueError(f"{name} must hold {2 * size + 1} entries in 0..{one}, got {values!r}")
        return tuple(int(v) for v in values)

    # ---- the static map of lane groups to crossbar groups

    @property
    def blocks(self) -> int:
        """Steps per kernel position: channel blocks of `lanes`."""
        return -(-self._groups.channels // self._lanes)

    @property
    def steps(self) -> int:
        return self.blocks * self._groups.taps

    @property
    def lane_groups(self) -> int:
        return -(-self._lanes // self._groups.size)

    def placement(self, step: int, j: int) -> tuple[int, int]:
        """(group index, size) of lane group j at a step: step = block * taps + tap; (-1, ABSENT) past the channels."""
        g = self._groups
        block, tap = divmod(step, g.taps)
        chunk = block * self._lanes // g.size + j
        size = min(max(g.channels - chunk * g.size, 0), g.size)
        return (chunk * g.taps + tap, size) if size else (-1, ABSENT)

    # ---- hardware

    def elaborate(self, platform):
        m = Module()
        g = self._groups
        steps, n = self.steps, g.size
        payload = self.i.payload

        step = Signal(index_shape(steps))
        cycle = Signal(range(t_port_max(self._t_max) + 1))
        row = Signal(index_shape(self._rows))
        fresh = Signal(init=1)  # the next transfer begins an inference: LFSRs from the seed, T latched
        t_latched = Signal.like(self.T)
        t_now = Signal.like(self.T)
        m.d.comb += t_now.eq(Mux(fresh, self.T, t_latched))
        noise_free = t_now == 0

        advance = ~self.o.valid | self.o.ready
        fire = self.i.valid & advance
        last_cycle = noise_free | (cycle == t_now - 1)
        m.d.comb += self.i.ready.eq(advance & last_cycle)

        # LFSRs: the state in use (the seed's at the start of an inference), its draw and next state
        states = [Signal(ref.LFSR_BITS, name=f"lfsr{k}") for k in range(g.count)]
        current, draws, nexts = [], [], []
        for k, state in enumerate(states):
            start = Signal(ref.LFSR_BITS, name=f"lfsr{k}_start")  # the seed jumped ahead: an XOR network
            columns = ref.jump_columns((k + 1) * ref.GROUP_STRIDE)
            parity_masks = [sum((column >> i & 1) << b for b, column in enumerate(columns))
                            for i in range(ref.LFSR_BITS)]
            m.d.comb += start.eq(Cat(*[(self.lfsr_seed & mask).xor() for mask in parity_masks]))
            cur = Signal(ref.LFSR_BITS, name=f"lfsr{k}_cur")
            m.d.comb += cur.eq(Mux(fresh, start, state))
            bits, value = [], cur
            for b in range(ref.DRAW_BITS):  # one Galois step each, named so the expression does not repeat
                bits.append(value[0])
                shifted = Signal(ref.LFSR_BITS, name=f"lfsr{k}_step{b}")
                m.d.comb += shifted.eq((value >> 1) ^ Mux(value[0], Const(ref.LFSR_MASK, ref.LFSR_BITS), 0))
                value = shifted
            draw = Signal(ref.DRAW_BITS, name=f"lfsr{k}_draw")
            m.d.comb += draw.eq(Cat(*bits))
            current.append(cur)
            draws.append(draw)
            nexts.append(value)

        own_step = {k: s for s in range(steps) for j in range(self.lane_groups) for k, _ in [self.placement(s, j)]
                    if k >= 0}

        # lane groups: current d, table entry, draw, bit
        entry_shape = unsigned(ref.DRAW_BITS + 1)
        contributions = []
        for j in range(self.lane_groups):
            lanes = range(j * n, min((j + 1) * n, self._lanes))
            top = len(lanes) << (self._a_width + self._w_bits - 2)  # |x * w| <= 2**(a-1) * 2**(w-1)
            d = Signal(signed(signed_width(-top, top)), name=f"d{j}")
            m.d.comb += d.eq(chained_sum(m, [payload.x[k] * payload.w[k] for k in lanes], len(d), name=f"d{j}_"))
            placed = [self.placement(s, j) for s in range(steps)]
            size = Signal(range(n + 1), name=f"size{j}")
            m.d.comb += size.eq(const_table([z for _, z in placed], size.shape(), step))
            entry = Signal(entry_shape, name=f"entry{j}")
            for z in sorted({z for _, z in placed} - {ABSENT}):
                index = Signal(range(2 * z + 1), name=f"index{j}_{z}")
                m.d.comb += index.eq(Mux(d < -z, 0, Mux(d > z, 2 * z, d + z)))
                with m.If(size == z):
                    m.d.comb += entry.eq(const_table(self._tables[z], entry_shape, index))
            draw = Signal(ref.DRAW_BITS, name=f"draw{j}")
            m.d.comb += draw.eq(Array(draws[k] if k >= 0 else Const(0, ref.DRAW_BITS) for k, _ in placed)[step])
            contributions.append(Mux(noise_free, entry, draw < entry))

        count = Signal(range(count_top(g, self._t_max) + 1))
        count_next = Signal.like(count)
        restart = payload.first & (cycle == 0)
        m.d.comb += count_next.eq(Mux(restart, 0, count) + sum(contributions))

        positive, negative, margin = (Signal(signed(self._acc_width), name=name)
                                      for name in ("positive", "negative", "margin"))
        m.d.comb += [
            positive.eq(Mux(noise_free, count_next << (ref.TAU_FRAC - ref.DRAW_BITS), count_next << ref.TAU_FRAC)),
            negative.eq(payload.tau * Mux(noise_free, 1, t_now)),
            margin.eq(positive - negative),
        ]

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(fire):
            m.d.sync += [count.eq(count_next), fresh.eq(0), t_latched.eq(t_now)]
            for k, state in enumerate(states):  # a group's LFSR steps in the cycles of its own step
                m.d.sync += state.eq(Mux((step == own_step[k]) & ~noise_free, nexts[k], current[k]))
            with m.If(last_cycle):
                m.d.sync += [cycle.eq(0), step.eq(Mux(payload.last, 0, step + 1))]
                with m.If(payload.last):
                    m.d.sync += [self.o.payload.eq(margin), self.o.valid.eq(1),
                                 row.eq(Mux(row == self._rows - 1, 0, row + 1))]
                    with m.If(row == self._rows - 1):
                        m.d.sync += fresh.eq(1)
            with m.Else():
                m.d.sync += cycle.eq(cycle + 1)
        return m


__all__ = ["AqfpAccumulator", "LATENCY", "aqfp_step_layout", "margin_range"]
