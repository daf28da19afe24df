"""Checks shared by the ViT engines' plan nodes (layer norm, attention, GELU): the token stream they
read and the requantization they end with. Messages name the node."""

from __future__ import annotations

from cdsl.contract.intmodel import Requant
from cdsl.hw.plan import StreamType


def token_stream(name: str, what: str, t: StreamType, *, signed_bits: tuple[int, int] | None = None) -> tuple[int, int]:
    """(N, D) of a token stream [N, D]; with `signed_bits` (lo, hi) the codes must be signed of lo..hi bits."""
    if len(t.shape) != 2:
        raise ValueError(f"{what} {name!r}: expected a token stream [N, D], found shape {list(t.shape)}")
    if signed_bits is not None and not (t.signed and signed_bits[0] <= t.bits <= signed_bits[1]):
        raise ValueError(f"{what} {name!r}: the engine takes signed codes of {signed_bits[0]}..{signed_bits[1]} bits, "
                         f"found {'' if t.signed else 'un'}signed {t.bits}")
    return t.shape[0], t.shape[1]


def out_shape(name: str, what: str, out_type: StreamType, shape: tuple[int, ...]) -> None:
    if tuple(out_type.shape) != tuple(shape):
        raise ValueError(f"{what} {name!r}: out_type shape {list(out_type.shape)}, expected {list(shape)}")


def requant(name: str, r: Requant, out_type: StreamType, *, channels: int) -> None:
    """`r` gives values of `out_type` and has 1 or `channels` entries."""
    if not isinstance(r, Requant):
        raise TypeError(f"{name}: expected a Requant, not {r!r}")
    lo, hi = out_type.range
    if not lo <= r.qmin <= r.qmax <= hi:
        raise ValueError(f"{name}: requantization range {r.qmin}..{r.qmax} does not fit the output's "
                         f"{'' if out_type.signed else 'un'}signed {out_type.bits} bits")
    if r.multiplier.shape not in ((1,), (channels,)) or r.shift.shape != r.multiplier.shape:
        raise ValueError(f"{name}: requantization needs 1 or {channels} multipliers and shifts, "
                         f"found {list(r.multiplier.shape)} and {list(r.shift.shape)}")
