"""The output side shared by reducing stream blocks (`Mac`, `PoolReduce`), and the sum of many terms.

Input transfers carry `first`/`last` flags; the block folds each transfer into `acc` and, on a
`last` transfer, puts the folded value into a one-deep output register on `o`. Input is accepted
whenever that register is empty or being emptied this cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value, signed

# terms per chained sum: Amaranth checks and lowers an expression recursively, one Python frame per
# nested addition, so a sum of ~1000 terms (a 2048-lane MAC) exceeded Python's recursion limit
MAX_CHAIN = 64


def emit_on_last(m: Module, *, i, o, acc: Value, acc_next: Value, last: Value) -> None:
    """Add the handshake: `acc <= acc_next` on every accepted transfer, `o <= acc_next` on `last`."""
    advance = ~o.valid | o.ready
    fire = i.valid & advance
    m.d.comb += i.ready.eq(advance)
    with m.If(o.ready):
        m.d.sync += o.valid.eq(0)
    with m.If(fire):
        m.d.sync += acc.eq(acc_next)
        with m.If(last):
            m.d.sync += [o.payload.eq(acc_next), o.valid.eq(1)]


def chained_sum(m: Module, terms: list, width: int, name: str = "part") -> Value:
    """sum(terms) for a `width`-bit signed result, as chains of at most MAX_CHAIN terms: each longer
    sum is split into chains whose sums are held in `width`-bit signals, and those are summed the
    same way. Exact wherever the whole sum fits `width` bits: every partial sum is kept modulo
    2**width, and the sum of residues modulo 2**width is the residue of the sum. Up to MAX_CHAIN
    terms this is `sum(terms)` itself (the same Verilog as before)."""
    level, n = list(terms), 0
    while len(level) > MAX_CHAIN:
        parts = []
        for k in range(0, len(level), MAX_CHAIN):
            part = Signal(signed(width), name=f"{name}{n}")
            n += 1
            m.d.comb += part.eq(sum(level[k:k + MAX_CHAIN]))
            parts.append(part)
        level = parts
    return sum(level)
