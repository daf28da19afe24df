"""The schema of an IntModel manifest (`intmodel/manifest.json`), in pydantic: structure, names, types
and ranges of everything but the payloads (whose fields are typed by their dataclasses and checked by
their kinds, `cdsl.contract.intmodel.IntModel.from_json`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Size = Annotated[int, Field(ge=1, le=1 << 30, strict=True)]
Shape = Annotated[list[Size], Field(min_length=1, max_length=4)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class QTypeJ(_Strict):
    bits: Annotated[int, Field(ge=1, le=32)]
    signed: bool
    scale: Annotated[float, Field(gt=0, allow_inf_nan=False, strict=False)]
    zero_point: int


class InputJ(_Strict):
    name: Name
    shape: Shape
    qtype: QTypeJ


class LayerJ(_Strict):
    name: Name
    kind: Name
    inputs: Annotated[list[Name], Field(min_length=1)]
    in_shapes: list[Shape]
    in_types: list[QTypeJ]
    out_shape: Shape
    out_type: QTypeJ
    payload: dict


class Manifest(_Strict):
    format: int
    name: Name
    inputs: Annotated[list[InputJ], Field(min_length=1)]
    layers: Annotated[list[LayerJ], Field(min_length=1)]
    outputs: Annotated[list[Name], Field(min_length=1)]
    digest: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def first_error(err: ValidationError) -> str:
    """'layers[2].out_type.bits: expected ... (found ...)' for the first problem pydantic found."""
    e = err.errors()[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
    if e["type"] == "missing":
        return f"{path or 'manifest'}: missing (a required field)"
    found = e.get("input")
    shown = repr(found) if not isinstance(found, (dict, list)) else type(found).__name__
    return f"{path or 'manifest'}: {e['msg'].lower()} (found {shown[:60]})"
