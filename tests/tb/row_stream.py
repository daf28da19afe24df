"""Drive rows of words into a component's frame stream `i` and collect its frame stream `o`, in
Amaranth's simulator, for engines that turn each row of words into a row of results (Shiftmax over a
row of scores, LayerNorm over a token, attention over an inference's q, k and v).

    outs, lasts, cycles = run_rows(dut, rows, lasts=[...], seed=1, in_stall=0.3, out_stall=0.3)

`lasts[r]` says whether row r's final word carries `last` (default: every row's); `out_lens[r]` how many
results row r gives (default: as many as its words). Returns the results
per row, the `last` flags of the results per row, and per row the cycles from its first word taken
to its last result taken, inclusive. Stalls drop input valid / output ready on random cycles.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator


def run_rows(dut, rows, *, lasts=None, out_lens=None, seed=0, in_stall=0.0, out_stall=0.0, max_cycles=400_000):
    rng = random.Random(seed)
    out_lens = [len(row) for row in rows] if out_lens is None else list(out_lens)
    owner = [r for r, k in enumerate(out_lens) for _ in range(k)]  # the row each result belongs to
    lasts = [True] * len(rows) if lasts is None else list(lasts)
    words = [(v, int(lasts[r] and j == len(row) - 1), r) for r, row in enumerate(rows) for j, v in enumerate(row)]
    total = len(owner)
    got, got_last, first_in, last_out = [], [], {}, {}

    async def bench(ctx):
        sent, cycle = 0, 0
        while len(got) < total:
            if cycle >= max_cycles:
                raise RuntimeError(f"timeout: {len(got)} of {total} results after {cycle} cycles (seed={seed})")
            offer = sent < len(words) and rng.random() >= in_stall
            ctx.set(dut.i.valid, offer)
            if sent < len(words):
                v, last, _ = words[sent]
                ctx.set(dut.i.payload, {"data": v, "last": last})
            ready = rng.random() >= out_stall
            ctx.set(dut.o.ready, ready)
            took = offer and ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload.data))
                got_last.append(ctx.get(dut.o.payload.last))
                last_out[owner[len(got) - 1]] = cycle
            if took:
                first_in.setdefault(words[sent][2], cycle)
                sent += 1
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    outs, out_lasts, k = [], [], 0
    for length in out_lens:
        outs.append(got[k:k + length])
        out_lasts.append(got_last[k:k + length])
        k += length
    return outs, out_lasts, [last_out[r] - first_in[r] + 1 for r in range(len(rows))]
