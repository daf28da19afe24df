"""Drive frames (one inference each) into a component's frame stream `i` and collect its frame stream
`o`, in Amaranth's simulator: the one stream driver of the block tests (`run_frames` times frames as
the plan's cycle model does, `tests/tb/row_stream.run_rows` from each row's first word).

    frames = drive_frames(dut, frames, out_lens=[...], seed=1, in_stall=0.3, out_stall=0.3, wait=True)
    outs, lasts, delays = run_frames(dut, frames, out_lens=[...], ...)

`frames[f]` is the list of words of frame f; its final word carries `last` unless `lasts[f]` is false.
`out_lens[f]` is how many words it gives. With `wait` the next frame is offered only once the previous
one's last output has left (the verify harness runs inferences one after another); without it, frames
follow back to back. Input valid drops on random cycles with probability `in_stall`, output ready with
`out_stall`. `drive_frames` returns one `Frame` per frame: its results, their `last` flags and the
cycles of its first and last input transfer and of its last output transfer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator


@dataclass
class Frame:
    out: list = field(default_factory=list)
    lasts: list = field(default_factory=list)
    first_in: int | None = None
    last_in: int | None = None
    last_out: int | None = None


def drive_frames(dut, frames, *, out_lens, lasts=None, seed=0, in_stall=0.0, out_stall=0.0, wait=True,
                 max_cycles=400_000) -> list[Frame]:
    rng = random.Random(seed)
    out_lens = list(out_lens)
    lasts = [True] * len(frames) if lasts is None else list(lasts)
    recs = [Frame() for _ in frames]
    total = sum(out_lens)

    async def bench(ctx):
        f, j, fo, got, cycle = 0, 0, 0, 0, 0  # frame and word offered, frame and word count collected
        while fo < len(out_lens) and out_lens[fo] == 0:
            fo += 1
        while got < total:
            if cycle >= max_cycles:
                raise RuntimeError(f"timeout: {got} of {total} results after {cycle} cycles (seed={seed})")
            can = f < len(frames) and (not wait or f == 0 or recs[f - 1].last_out is not None)
            offer = can and rng.random() >= in_stall
            ctx.set(dut.i.valid, offer)
            if f < len(frames):
                ctx.set(dut.i.payload, {"data": frames[f][j], "last": int(lasts[f] and j == len(frames[f]) - 1)})
            ready = rng.random() >= out_stall
            ctx.set(dut.o.ready, ready)
            took = offer and ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                rec = recs[fo]
                rec.out.append(ctx.get(dut.o.payload.data))
                rec.lasts.append(ctx.get(dut.o.payload.last))
                got += 1
                if len(rec.out) == out_lens[fo]:
                    rec.last_out = cycle
                    fo += 1
                    while fo < len(out_lens) and out_lens[fo] == 0:
                        fo += 1
            if took:
                if j == 0:
                    recs[f].first_in = cycle
                j += 1
                if j == len(frames[f]):
                    recs[f].last_in = cycle
                    f, j = f + 1, 0
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return recs


def run_frames(dut, frames, *, out_lens, seed=0, in_stall=0.0, out_stall=0.0, wait=True, ends=None,
               max_cycles=400_000):
    """(results per frame, their `last` flags, each frame's last output cycle minus its last input
    cycle); `ends`, a list, receives each frame's last output cycle."""
    recs = drive_frames(dut, frames, out_lens=out_lens, seed=seed, in_stall=in_stall, out_stall=out_stall,
                        wait=wait, max_cycles=max_cycles)
    if ends is not None:
        ends.extend(r.last_out for r in recs)
    return [r.out for r in recs], [r.lasts for r in recs], [r.last_out - r.last_in for r in recs]
