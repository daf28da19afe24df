"""The frame schedule shared by the window engines (`MacEngine`, `PoolEngine`).

A frame buffer (double-buffered, `FrameBuffer`) fills from the input stream; when a frame is loaded
and the engine idle, `start` pulses the window generator; when the generator has issued every step,
the frame's bank is released (the writer may fill it again) and, if the other bank already holds
the next frame, that frame starts in the same cycle. So back to back an engine starts a frame every
`busy + RESTART` cycles at best (its steps, plus the cycle the generator takes to restart), while
the next frame loads during the computation. Steps go through one fetch cycle: the frame buffer (and weight ROMs) are read with
the step's address, and the step is offered to the reducer the cycle after (`Fetch`).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, Value

START = 1  # the cycle after the last input transfer: the engine pulses the window generator's start
FETCH = 1  # the cycle the first step is offered and read from the frame buffer / weight ROM
RESTART = 1  # back to back: the cycle between a frame's last step and the next frame's first one


@dataclass(frozen=True)
class Fetch:
    """The fetch stage's signals: `advance` (a new step may be read this cycle), the fetched step's
    `valid`, `pad`, `first`, `last`, and `step` (the generator's payload being read)."""

    advance: Value
    valid: Signal
    pad: Signal
    first: Signal
    last: Signal
    step: Value


def frame_schedule(m: Module, *, fb, gen, hold: Value | None = None) -> Value:
    """Start a frame when it is loaded and release it when every step is issued; returns `start`.
    `hold` (optional) keeps the next frame from starting while the engine still works on the previous
    one past its last step (an engine that buffers a whole output frame before emitting it)."""
    running = Signal()
    release = running & ~gen.busy
    start = ~gen.busy & Mux(running, fb.next_full, fb.full)  # while releasing, the other bank is next
    if hold is not None:
        start = start & ~hold
    m.d.comb += [gen.start.eq(start), fb.release.eq(release)]
    with m.If(release):
        m.d.sync += running.eq(0)
    with m.If(start):
        m.d.sync += running.eq(1)
    return start


def fetch_stage(m: Module, *, fb, gen, ready: Value) -> Fetch:
    """Read the frame buffer at each step's address; the step moves on when `ready` (the reducer) allows."""
    valid, pad, first, last = Signal(), Signal(), Signal(), Signal()
    advance = ~valid | ready
    step = gen.o.payload
    m.d.comb += [gen.o.ready.eq(advance), fb.rd_en.eq(advance), fb.rd_addr.eq(step.addr)]
    with m.If(advance):
        m.d.sync += [valid.eq(gen.o.valid), pad.eq(step.pad), first.eq(step.first), last.eq(step.last)]
    return Fetch(advance=advance, valid=valid, pad=pad, first=first, last=last, step=step)
