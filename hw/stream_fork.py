"""Stream fork: one stream to `n` consumers in lock step (a word moves when every consumer is ready).

Combinational: no latency, no storage. Ports `i` and `o0`..`o{n-1}`, all of one stream signature.
The network top puts one wherever a tensor has several readers; the plan sizes the buffers that
keep a lock-step fork from deadlocking a join (`cdsl.hw.plan`).
"""

from __future__ import annotations

from functools import reduce
from operator import and_

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_int


class StreamFork(wiring.Component):
    def __init__(self, *, signature: stream.Signature, n: int):
        if not isinstance(signature, stream.Signature):
            raise TypeError(f"signature must be a stream.Signature, not {signature!r}")
        self._n = check_int("n", n, lo=2)
        super().__init__({"i": In(signature), **{f"o{k}": Out(signature) for k in range(n)}})

    def outputs(self) -> list:
        return [getattr(self, f"o{k}") for k in range(self._n)]

    def elaborate(self, platform):
        m = Module()
        outs = self.outputs()
        m.d.comb += self.i.ready.eq(reduce(and_, [o.ready for o in outs]))
        for k, o in enumerate(outs):
            others_ready = reduce(and_, [p.ready for j, p in enumerate(outs) if j != k])
            m.d.comb += [o.payload.eq(self.i.payload), o.valid.eq(self.i.valid & others_ready)]
        return m
