"""Frame gate: a store-and-forward FIFO that releases a frame only once the frame's `last` word is in.

Stream in `i`, stream out `o` (`cdsl.hw.streams.frame_layout`, `bits` wide, signed or not). The
words go into an `amaranth.lib.fifo.SyncFIFOBuffered` of `words` entries (the longest frame: a token
stream [N, D] holds N D words; downstream of a token selector a frame may be shorter, `last` says where
it ends). `o` offers words only while the FIFO holds at least one whole frame (a counter of the `last`
words written and not yet read), so the engine behind the gate sees a frame as one burst however its
words arrived. `i` is ready whenever the FIFO has room: while a complete frame drains, the next frame
may already flow in (it is held back until its own `last`), so nothing deadlocks as long as no frame is
longer than `words`.

Latency (`release_latency`): the first word of a frame is valid on `o` one cycle after the transfer of
its `last` word on `i` (two for a frame of one word, which is also its `last`: the FIFO's read
register), when no earlier frame is still in the gate; after that, words leave one per cycle while `o`
is ready (they are already in the FIFO). Why an engine needs it: `cdsl.hw.plan`'s cycle model takes a
node's delay from its last input transfer, whatever the spacing of its input words; an engine that
works token by token slower than one word per cycle (the layer norm) would otherwise finish at a time
that depends on when each token arrived.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int
from cdsl.hw.stream_fifo import entries
from cdsl.hw.streams import frame_signature

__all__ = ["FrameGate", "release_latency", "gate_bits"]


def release_latency(words: int) -> int:
    """Cycles from a frame's last word taken on `i` to its first word valid on `o` (module docstring)."""
    return 1 if check_int("words", words, lo=1) >= 2 else 2


def fifo_depth(words: int) -> int:
    """Entries of the gate's FIFO for frames of at most `words` words: at least two (a FIFO of one is a
    bare register, with another latency), as a stream FIFO builds them (`stream_fifo.entries`: three
    for two, so the second word of a back-to-back frame is not stalled)."""
    return entries(max(words, 2))


def gate_bits(*, bits: int, words: int) -> int:
    """Storage of a gate of `words` words of `bits` data bits: each entry holds its data and `last`."""
    return fifo_depth(words) * (bits + 1)


class FrameGate(wiring.Component):
    """words: the FIFO's depth (the longest frame); bits, signed: the data of a word."""

    def __init__(self, *, bits: int, signed: bool, words: int):
        self._bits = check_int("bits", bits, lo=1, hi=64)
        self._signed = check_bool("signed", signed)
        self._words = check_int("words", words, lo=1)
        super().__init__({"i": In(frame_signature(bits, signed)), "o": Out(frame_signature(bits, signed))})

    @property
    def words(self) -> int:
        return self._words

    @property
    def memory_bits(self) -> int:
        """Storage: `words` entries of data and `last`."""
        return gate_bits(bits=self._bits, words=self._words)

    def elaborate(self, platform):
        m = Module()
        depth = fifo_depth(self._words)
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=self._bits + 1, depth=depth)
        frames = Signal(range(depth + 1))  # complete frames in the FIFO (each holds >= 1 word)
        took_last = self.i.valid & self.i.ready & self.i.payload.last
        sent_last = self.o.valid & self.o.ready & self.o.payload.last
        m.d.sync += frames.eq(frames + took_last - sent_last)
        m.d.comb += [
            q.w_data.eq(self.i.payload.as_value()),
            q.w_en.eq(self.i.valid),
            self.i.ready.eq(q.w_rdy),
            self.o.payload.eq(q.r_data),
            self.o.valid.eq(q.r_rdy & (frames != 0)),
            q.r_en.eq(self.o.valid & self.o.ready),
        ]
        return m
