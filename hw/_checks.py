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


def signed_width(lo: int, hi: int) -> int:
    """Bits of the smallest signed integer type holding every value in [lo, hi]."""
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width
