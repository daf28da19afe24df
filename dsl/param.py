"""`Param`: one parameter an op, annotation, train key or stage accepts.

A leaf module (it imports nothing from the package) so that the op classes in `dsl.ir` can hold
their own parameter schemas while `dsl.schema`, which checks values against them, imports `ir`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Sizes a user writes (units, channels, dims, array rows ...) are at most this.
MAX_SIZE = 1 << 20


@dataclass(frozen=True)
class Param:
    """One parameter. kind: int | float | bool | enum | ratio | intlist | namelist | data | compress."""

    name: str
    kind: str
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself is not allowed
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    length: int | None = None  # lists: exact length
    hint: str = ""  # shown in `expected` when the parameter is missing


def int_param(name: str, required: bool = False, lo: int = 1, hi: int = MAX_SIZE, hint: str = "") -> Param:
    """A whole-number parameter from `lo` to `hi` (a size, by default)."""
    return Param(name, "int", required=required, lo=lo, hi=hi, hint=hint)


def bool_param(name: str) -> Param:
    return Param(name, "bool")
