"""Checks the kinds' payloads use in `Payload.check`: an array's dtype, shape and range, one field at a time."""

from __future__ import annotations

import numpy as np


def int_array(value: np.ndarray, field: str, *, shape: tuple[int, ...] | None = None, lo: int | None = None,
              hi: int | None = None) -> None:
    if value.dtype.kind not in "iu":
        raise ValueError(f"{field}: expected integers, found an array of {value.dtype}")
    shape_is(value, field, shape)
    if value.size and lo is not None and int(value.min()) < lo:
        raise ValueError(f"{field}: expected values >= {lo}, found {int(value.min())}")
    if value.size and hi is not None and int(value.max()) > hi:
        raise ValueError(f"{field}: expected values <= {hi}, found {int(value.max())}")


def bool_array(value: np.ndarray, field: str, *, shape: tuple[int, ...] | None = None) -> None:
    if value.dtype.kind != "b":
        raise ValueError(f"{field}: expected true/false, found an array of {value.dtype}")
    shape_is(value, field, shape)


def shape_is(value: np.ndarray, field: str, shape: tuple[int, ...] | None) -> None:
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{field}: expected shape {list(shape)}, found {list(value.shape)}")


def at_least(value: int, field: str, lo: int, hi: int | None = None) -> None:
    """`value` in lo..hi (or >= lo)."""
    if value < lo or (hi is not None and value > hi):
        wanted = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{field}: expected {wanted}, found {value}")


def same_shape(layer, shape: tuple[int, ...], what: str = "out_shape") -> None:
    if tuple(layer.out_shape) != tuple(shape):
        raise ValueError(f"{what}: expected {list(shape)}, found {list(layer.out_shape)}")


def same_type(layer, qtype, what: str = "out_type") -> None:
    if layer.out_type != qtype:
        raise ValueError(f"{what}: expected the type of its input")


def one_input(layer) -> tuple[tuple[int, ...], object]:
    if len(layer.inputs) != 1:
        raise ValueError(f"inputs: expected one input, found {len(layer.inputs)}")
    return tuple(layer.in_shapes[0]), layer.in_types[0]
