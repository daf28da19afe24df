"""Drive rows of words into a component's frame stream `i` and collect its frame stream `o`, in
Amaranth's simulator, for engines that turn each row of words into a row of results (Shiftmax over a
row of scores, LayerNorm over a token, attention over an inference's q, k and v).

    outs, lasts, cycles = run_rows(dut, rows, lasts=[...], seed=1, in_stall=0.3, out_stall=0.3)

`lasts[r]` says whether row r's final word carries `last` (default: every row's); `out_lens[r]` how many
results row r gives (default: as many as its words). Rows follow each other without waiting. Returns
the results per row, the `last` flags of the results per row, and per row the cycles from its first
word taken to its last result taken, inclusive (`tests/tb/frame_stream.drive_frames` drives them).
"""

from __future__ import annotations

from tb.frame_stream import drive_frames


def run_rows(dut, rows, *, lasts=None, out_lens=None, seed=0, in_stall=0.0, out_stall=0.0, max_cycles=400_000):
    out_lens = [len(row) for row in rows] if out_lens is None else list(out_lens)
    recs = drive_frames(dut, rows, out_lens=out_lens, lasts=lasts, seed=seed, in_stall=in_stall,
                        out_stall=out_stall, wait=False, max_cycles=max_cycles)
    return [r.out for r in recs], [r.lasts for r in recs], [r.last_out - r.first_in + 1 for r in recs]
