"""flatten: free in hardware; the row-major (C, H, W) stream already is the flattened vector."""

from __future__ import annotations

from cdsl.contract.ref.flatten import FlattenPayload
from cdsl.hw.plan import Alias
from cdsl.hw.registry import register


@register(FlattenPayload)
def plan_flatten(layer, ctx):
    return Alias(ctx.in_streams[0])
