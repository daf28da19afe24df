"""PrefixPorts: sets a component's extra input ports from the first words of each frame.

The bulk-load `cdsl.sim.harness.Harness` drives only the stream ports `i` and `o`. To test
runtime inputs such as a bit-serial layer's `precision` in the same Verilator build, this
wrapper takes, before every frame of `frame` words, one word per name in `ports`: word k is
stored (its low bits) in a register that drives `dut.<ports[k]>`; the frame's words then pass
to `dut.i` unchanged. Each prefix word takes one cycle; `o` is `dut.o`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_int, index_shape


class PrefixPorts(wiring.Component):
    def __init__(self, *, dut: wiring.Component, ports, frame: int):
        if not isinstance(dut, wiring.Component):
            raise TypeError(f"dut must be a wiring.Component, not {dut!r}")
        self._ports = tuple(ports)
        for name in self._ports:
            if name not in dut.signature.members or dut.signature.members[name].flow != In:
                raise ValueError(f"dut has no input port {name!r}")
        if not self._ports:
            raise ValueError("ports must name at least one input port")
        self._frame = check_int("frame", frame, lo=1)
        self._dut = dut
        members = dut.signature.members
        super().__init__({"i": In(members["i"].signature), "o": Out(members["o"].signature)})

    def elaborate(self, platform):
        m = Module()
        dut = self._dut
        m.submodules.dut = dut
        n = len(self._ports)
        index = Signal(index_shape(n + 1))  # 0..n-1: prefix words; n: frame words
        count = Signal(index_shape(self._frame))
        regs = []
        for name in self._ports:
            port = getattr(dut, name)
            reg = Signal(len(Value.cast(port)), name=f"reg_{name}")
            m.d.comb += port.eq(reg)
            regs.append(reg)
        in_prefix = index < n
        word = Value.cast(self.i.payload)
        m.d.comb += [
            dut.i.payload.eq(self.i.payload),
            dut.i.valid.eq(self.i.valid & ~in_prefix),
            self.i.ready.eq(in_prefix | dut.i.ready),
        ]
        with m.If(self.i.valid & in_prefix):
            for k, reg in enumerate(regs):
                with m.If(index == k):
                    m.d.sync += reg.eq(word[:len(reg)])
            m.d.sync += index.eq(index + 1)
        with m.If(self.i.valid & ~in_prefix & dut.i.ready):
            with m.If(count == self._frame - 1):
                m.d.sync += [count.eq(0), index.eq(0)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        wiring.connect(m, wiring.flipped(self.o), dut.o)
        return m
