"""Keyword-parameter checks shared by the hardware components (messages name the value)."""

from __future__ import annotations


def check_int(name: str, value, *, lo: int | None = None, hi: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, not {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, not {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value




def index_shape(n: int) -> range:
    """range(n) as a shape, at least one bit wide (zero-width vectors trip Verilator's ASCRANGE lint)."""
    return range(max(n, 2))


def const_table(values, shape, index):
    """A read-only table of constants indexed by a signal, padded with zeros to 2**len(index)
    entries so every index value is covered (no incomplete `case` in the Verilog)."""
    from amaranth.hdl import Array, Const, Value

    width = len(Value.cast(index))
    padded = list(values) + [0] * ((1 << width) - len(values))
    return Array(Const(int(v), shape) for v in padded)[index]
