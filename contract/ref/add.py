"""Integer reference of `add(a, b)`: the elementwise sum of two tensors on different grids (a residual join).

With input scales s_a, s_b and output scale s_y, each input is rescaled to a common fixed point
with one shift S, summed, and requantized through the one contract (`requantize` with M = 1):

    acc = a * M_a + b * M_b,        M_x = round(s_x / s_y * 2**S)
    y   = clamp((acc + 2**(S-1)) >> S, qmin, qmax)          (requantize(acc, 1, S, qmin, qmax))

`add_multipliers` picks the largest S (<= 62) for which both M_a and M_b stay below 2**ADD_MULT_BITS,
so the rescaling is as exact as that many bits allow (the error of each ratio is at most
2**-(S+1)); it refuses ratios too large for S >= 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.intmodel import Payload
from cdsl.contract.ref._tensor import as_int64, like_input
from cdsl.contract.ref.requant import MAX_SHIFT, requantize

ADD_MULT_BITS = 16  # M_a, M_b < 2**ADD_MULT_BITS


def add_multipliers(scale_a: float, scale_b: float, scale_out: float) -> tuple[int, int, int]:
    """(M_a, M_b, S) for rescaling inputs of scales `scale_a`, `scale_b` onto `scale_out`."""
    for name, s in (("scale_a", scale_a), ("scale_b", scale_b), ("scale_out", scale_out)):
        if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
            raise ValueError(f"add: {name} must be a positive finite number, got {s!r}")
    ra, rb = scale_a / scale_out, scale_b / scale_out
    top = max(ra, rb)
    shift = min(MAX_SHIFT, ADD_MULT_BITS - 1 - math.floor(math.log2(top)))
    while shift >= 0 and max(round(ra * 2 ** shift), round(rb * 2 ** shift)) >= 1 << ADD_MULT_BITS:
        shift -= 1
    if shift < 0:
        raise ValueError(f"add: the input scales are {top:.3g} times the output scale, too large to rescale "
                         f"with {ADD_MULT_BITS}-bit multipliers")
    return round(ra * 2 ** shift), round(rb * 2 ** shift), shift


def add(a, b, *, mult_a: int, mult_b: int, shift: int, qmin: int, qmax: int):
    """requantize(a * mult_a + b * mult_b, 1, shift, qmin, qmax), elementwise, int64."""
    at = as_int64(a, what="add input a")
    bt = as_int64(b, what="add input b")
    if at.shape != bt.shape:
        raise ValueError(f"add inputs must have one shape, got {tuple(at.shape)!r} and {tuple(bt.shape)!r}")
    return like_input(requantize(at * mult_a + bt * mult_b, 1, shift, qmin, qmax), a)


@codec.serializable("add")
@dataclass(frozen=True, eq=False)
class AddPayload(Payload):
    """The sum of the layer's two inputs, rescaled onto its output type (see the module docstring)."""

    mult_a: int
    mult_b: int
    shift: int
    qmin: int
    qmax: int

    def check(self, layer):
        from cdsl.contract.ref import _checks as c

        if len(layer.inputs) != 2:
            raise ValueError(f"inputs: expected two inputs, found {len(layer.inputs)}")
        if tuple(layer.in_shapes[0]) != tuple(layer.in_shapes[1]):
            raise ValueError(f"in_shapes: expected one shape for both inputs, found {[list(s) for s in layer.in_shapes]}")
        c.same_shape(layer, tuple(layer.in_shapes[0]))
        for name in ("mult_a", "mult_b"):
            c.at_least(getattr(self, name), f"payload.{name}", 0, (1 << ADD_MULT_BITS) - 1)
        c.at_least(self.shift, "payload.shift", 0, MAX_SHIFT)
        if (self.qmin, self.qmax) != (layer.out_type.qmin, layer.out_type.qmax):
            raise ValueError("payload: expected qmin, qmax of the output type")

    def run(self, layer, inputs, settings):
        a, b = inputs
        return add(a, b, mult_a=self.mult_a, mult_b=self.mult_b, shift=self.shift, qmin=self.qmin, qmax=self.qmax)

