"""The output side shared by reducing stream blocks (`Mac`, `PoolReduce`).

Input transfers carry `first`/`last` flags; the block folds each transfer into `acc` and, on a
`last` transfer, puts the folded value into a one-deep output register on `o`. Input is accepted
whenever that register is empty or being emptied this cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Value


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
