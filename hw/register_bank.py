"""Register bank: the network's runtime settings, written through a control stream before a run.

Port `ctrl`: a stream of writes `{addr, data}` (always ready; one write per cycle). Register k
(address k) holds `widths[k]` bits, resets to `resets[k]`, and drives output `r<k>`. A write to an
unknown address is ignored. Engines latch the settings they use when an inference starts, so a
write takes effect from the next inference on.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_int, index_shape

DATA_BITS = 32  # a setting may be up to 32 bits wide (a seed, a threshold)


def ctrl_signature(registers: int) -> stream.Signature:
    return stream.Signature(data.StructLayout({"addr": index_shape(registers), "data": DATA_BITS}))


class RegisterBank(wiring.Component):
    def __init__(self, *, widths, resets):
        self._widths = tuple(check_int("width", w, lo=1, hi=DATA_BITS) for w in widths)
        self._resets = tuple(check_int("reset", r, lo=0) for r in resets)
        if not self._widths or len(self._resets) != len(self._widths):
            raise ValueError(f"widths and resets need one entry per register, got {widths!r} and {resets!r}")
        for w, r in zip(self._widths, self._resets):
            if r >= 1 << w:
                raise ValueError(f"reset value {r!r} does not fit in {w!r} bits")
        super().__init__({"ctrl": In(ctrl_signature(len(self._widths))),
                          **{f"r{k}": Out(w, init=r) for k, (w, r) in enumerate(zip(self._widths, self._resets))}})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.ctrl.ready.eq(1)
        for k, (w, r) in enumerate(zip(self._widths, self._resets)):
            reg = Signal(w, init=r, name=f"reg{k}")
            m.d.comb += getattr(self, f"r{k}").eq(reg)
            with m.If(self.ctrl.valid & (self.ctrl.payload.addr == k)):
                m.d.sync += reg.eq(self.ctrl.payload.data[:w])
        return m
