"""The stream format between engines: one activation per transfer, and `last` on an inference's final word.

    payload = {data: signed/unsigned(bits), last: 1}        (`frame_layout`)

Every engine's output drives `last` (with `drive_last`, a word counter, or from the producer's own
knowledge of where a variable-length stream ends, as a token selector will); an engine that reads
a fixed-length stream counts its words and may ignore `last`. In Verilog the payload is one
vector: `data` in the low `bits` bits, `last` above it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import Out

from cdsl.hw._checks import check_int, index_shape


def frame_layout(bits: int, signed: bool) -> data.StructLayout:
    return data.StructLayout({"data": Shape(bits, signed), "last": 1})


def frame_signature(bits: int, signed: bool) -> stream.Signature:
    return stream.Signature(frame_layout(bits, signed))


def probe_signature(bits: int, signed: bool) -> wiring.Signature:
    """An observation port: the payload of a stream and `fire` (valid & ready) in the cycle it moves."""
    return wiring.Signature({"payload": Out(frame_layout(bits, signed)), "fire": Out(1)})


def drive_last(m: Module, port, *, words: int) -> None:
    """Set `port.payload.last` on every `words`-th transfer of the output stream `port` (a counter)."""
    check_int("words", words, lo=1)
    count = Signal(index_shape(words))
    last = count == words - 1
    m.d.comb += port.payload.last.eq(last)
    with m.If(port.valid & port.ready):
        m.d.sync += count.eq(Mux(last, 0, count + 1))


def map_words(m: Module, *, i, o, data) -> None:
    """`o` carries `data` (a function of `i`'s payload data) word by word, combinationally: valid, ready
    and `last` pass through (an elementwise engine: no cycles, no storage)."""
    m.d.comb += [
        o.valid.eq(i.valid),
        o.payload.data.eq(data),
        o.payload.last.eq(i.payload.last),
        i.ready.eq(o.ready),
    ]
