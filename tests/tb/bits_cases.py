"""Test-only statements for bit-level compression (TruncQuant, MSQ) on trained integer models.

`mac_busy` is the bit-serial MAC's busy cycles of a dense layer written out from the weights with
Python integers (`mac_cases.set_planes`), never through `plane_masks` or the cycle model. `widen`
stores layers at more bits with the same arithmetic: an MSQ-narrowed layer back at 8 bits, whose
dropped planes are then all-zero planes that the plane masks must skip.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from cdsl.contract.intmodel import IntModel, Requant, replace_payload
from tb.mac_cases import set_planes


def mac_busy(weight, w_bits: int, precision: int, lanes: int) -> int:
    """Cycles a bit-serial MAC spends on a dense layer [rows, K]: per row ceil(K/L) * max(1, set planes
    among the top `precision`)."""
    steps = math.ceil(len(weight[0]) / lanes)
    return sum(steps * max(1, set_planes(row, w_bits, precision)) for row in weight)


def widen(intmodel: IntModel, names, bits: int) -> IntModel:
    """`intmodel` with the layers `names` stored at `bits`: weight and bias * 2**d, weight scale / 2**d and
    requantization shift + d (d = bits - w_bits), so that (acc * 2**d * M + 2**(S+d-1)) >> (S+d) =
    (acc * M + 2**(S-1)) >> S: the same outputs, exactly."""
    layers = []
    for lay in intmodel.layers:
        if lay.name in names:
            pay = lay.payload
            d = bits - pay.w_bits
            rq = pay.requant
            bias = None if pay.bias is None else np.asarray(pay.bias, dtype=np.int64) << d
            lay = replace_payload(lay, weight=np.asarray(pay.weight, dtype=np.int64) << d, bias=bias, w_bits=bits,
                                  w_scale=np.asarray(pay.w_scale) / (1 << d),
                                  requant=Requant(rq.multiplier, np.asarray(rq.shift) + d, rq.qmin, rq.qmax))
        layers.append(lay)
    return dataclasses.replace(intmodel, layers=tuple(layers))
