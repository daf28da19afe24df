"""Drive frames (one inference each) into a component's frame stream `i` and collect its frame stream
`o`, in Amaranth's simulator, measuring each frame's delay as the plan's cycle model defines it:
the cycle of its last output transfer minus the cycle of its last input transfer.

    outs, lasts, delays = run_frames(dut, frames, out_lens=[...], seed=1, in_stall=0.3, out_stall=0.3,
                                     wait=True)

`frames[f]` is the list of words of frame f (`last` on its final word); `out_lens[f]` how many words
it gives. `ends`, a list, receives each frame's last output cycle. With `wait` the next frame is offered only once the previous one's last output has left
(the verify harness runs inferences one after another); without it, frames follow back to back.
Input valid drops on random cycles with probability `in_stall`, output ready with `out_stall`.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator


def run_frames(dut, frames, *, out_lens, seed=0, in_stall=0.0, out_stall=0.0, wait=True, ends=None,
               max_cycles=400_000):
    rng = random.Random(seed)
    owner = [f for f, k in enumerate(out_lens) for _ in range(k)]
    total = len(owner)
    got, got_last, last_in, last_out = [], [], {}, {}

    async def bench(ctx):
        f, j, cycle = 0, 0, 0  # frame and word being offered
        while len(got) < total:
            if cycle >= max_cycles:
                raise RuntimeError(f"timeout: {len(got)} of {total} results after {cycle} cycles (seed={seed})")
            can = f < len(frames) and (not wait or f == 0 or (f - 1) in last_out)
            offer = can and rng.random() >= in_stall
            ctx.set(dut.i.valid, offer)
            if f < len(frames):
                ctx.set(dut.i.payload, {"data": frames[f][j], "last": int(j == len(frames[f]) - 1)})
            ready = rng.random() >= out_stall
            ctx.set(dut.o.ready, ready)
            took = offer and ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload.data))
                got_last.append(ctx.get(dut.o.payload.last))
                k = len(got) - 1
                if k + 1 == total or owner[k + 1] != owner[k]:
                    last_out[owner[k]] = cycle
            if took:
                j += 1
                if j == len(frames[f]):
                    last_in[f] = cycle
                    f, j = f + 1, 0
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    outs, lasts, k = [], [], 0
    for length in out_lens:
        outs.append(got[k:k + length])
        lasts.append(got_last[k:k + length])
        k += length
    if ends is not None:
        ends.extend(last_out[f] for f in range(len(frames)))
    return outs, lasts, [last_out[f] - last_in[f] for f in range(len(frames))]
