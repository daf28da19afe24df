"""What the ViT kinds' planners share (`patch_embed`, `encoder`, `cls_head` each plan into a sub-graph
of engines, `cdsl.hw.plan`): the stream type of a requantized intermediate and the lanes and MAC unit
of their linear sub-layers."""

from __future__ import annotations

from cdsl.contract.intmodel import IntLayer, Requant
from cdsl.contract.ref._vit import IntLinear
from cdsl.hw.plan import PlanContext, StreamType
from cdsl.hw.widths import signed_width


def requant_type(rq: Requant, shape: tuple[int, ...]) -> StreamType:
    """The stream of a tensor requantized by `rq`: as few bits as hold [qmin, qmax], signed when qmin < 0."""
    if rq.qmin < 0:
        return StreamType(signed_width(rq.qmin, rq.qmax), True, tuple(shape))
    return StreamType(max(1, rq.qmax.bit_length()), False, tuple(shape))


def layer_type(layer: IntLayer) -> StreamType:
    """The stream of the layer's own tensor (its last node's output)."""
    return StreamType(layer.out_type.bits, layer.out_type.signed, tuple(layer.out_shape))


def linear_lanes(layer: IntLayer, ctx: PlanContext, fan_in: int, linear: IntLinear) -> dict:
    """The lanes and MAC unit of a linear sub-layer with `fan_in` inputs. With `@bitserial(lanes=L)` on
    the layer (`payload.bitserial`): a bit-serial unit (`bitserial_unit`, all precision planes) with L
    lanes, fixed as the spec's lanes of a dense layer are (a `gen --lanes` override still wins); else the
    bit-parallel unit with the override or the default lanes. At most `fan_in` either way."""
    from cdsl.hw.kinds.token_linear import bitserial_unit

    spec = getattr(layer.payload, "bitserial", None)
    lanes, fixed = ctx.lanes_for(layer.name, spec)
    unit = bitserial_unit(linear) if spec is not None else None
    return {"lanes": max(1, min(lanes, fan_in)), "lanes_fixed": fixed, "unit": unit}
