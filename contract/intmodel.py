"""The integer model: what training exports and what both the golden model and the
RTL generator consume. It is the co-verification contract in data form.

On disk (a run folder's `intmodel/`): `manifest.json` (structure, types, scalars)
plus `tensors.npz` (every integer array, keyed `<layer>.<field>`).

Numbers
- Activations are integers `q` with real value `scale * (q - zero_point)`;
  `QType` gives their width, signedness, scale and zero point.
- Weights are integers with real value `w_scale[c] * q` (symmetric, zero point 0),
  one scale per output channel (per-channel) or one for all (per-tensor).
- `bias` is in accumulator units: real bias / (in_scale * w_scale[c]), rounded.
- A weighted layer computes acc = sum(w * x) + bias (int64, exact), then
  `requantize(acc, M[c], S[c], qmin, qmax)` from `cdsl.contract.ref.requant`. A ReLU that
  follows a layer with an unsigned output type is then the identity.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cdsl.dsl import ir

FORMAT_VERSION = 1


@dataclass(frozen=True)
class QType:
    """An integer activation type: `bits` wide, real value = scale * (q - zero_point)."""

    bits: int
    signed: bool
    scale: float
    zero_point: int = 0

    @property
    def qmin(self) -> int:
        return ir.int_range(self.bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        return ir.int_range(self.bits, self.signed)[1]


@dataclass(frozen=True, eq=False)
class Requant:
    """Per-channel (or one-element, per-tensor) requantization parameters."""

    multiplier: np.ndarray  # int64 [C] or [1]
    shift: np.ndarray  # int64 [C] or [1]
    qmin: int
    qmax: int

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Requant)
            and np.array_equal(self.multiplier, other.multiplier)
            and np.array_equal(self.shift, other.shift)
            and (self.qmin, self.qmax) == (other.qmin, other.qmax)
        )


@dataclass(frozen=True, eq=False)
class IntLayer:
    name: str
    op: ir.Op
    inputs: tuple[str, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    in_types: tuple[QType, ...]
    out_type: QType
    annotations: ir.Annotations = ir.Annotations()
    # Weighted layers only (None otherwise):
    w_bits: int | None = None
    weight: np.ndarray | None = None  # int64; dense [out, in], conv2d [co, ci, k, k]
    w_scale: np.ndarray | None = None  # float64 [out] or [1]
    bias: np.ndarray | None = None  # int64 [out], accumulator units
    mask: np.ndarray | None = None  # bool, weight shape; False = pruned (weight is 0 there)
    requant: Requant | None = None
    # Extra named integer tensors a block needs (thresholds, LFSR seeds, ADC steps, ...).
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntLayer):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "extra":
                if a.keys() != b.keys() or not all(np.array_equal(a[k], b[k]) for k in a):
                    return False
            elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or a.dtype != b.dtype or not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True


@dataclass(frozen=True)
class IntInput:
    name: str
    shape: tuple[int, ...]
    qtype: QType


@dataclass(frozen=True)
class IntModel:
    name: str
    inputs: tuple[IntInput, ...]
    layers: tuple[IntLayer, ...]  # topological order
    outputs: tuple[str, ...]
    classes: int = 10

    def layer(self, name: str) -> IntLayer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    # ------------------------------------------------------------ persistence

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for lay in self.layers:
            entry: dict[str, Any] = {}
            for f in dataclasses.fields(lay):
                value = getattr(lay, f.name)
                if isinstance(value, np.ndarray):
                    arrays[f"{lay.name}.{f.name}"] = value
                    entry[f.name] = {"array": f"{lay.name}.{f.name}"}
                elif f.name == "extra":
                    for key, arr in value.items():
                        arrays[f"{lay.name}.extra.{key}"] = arr
                    entry["extra"] = sorted(value)
                elif isinstance(value, Requant):
                    arrays[f"{lay.name}.requant.multiplier"] = value.multiplier
                    arrays[f"{lay.name}.requant.shift"] = value.shift
                    entry[f.name] = {"qmin": value.qmin, "qmax": value.qmax}
                else:
                    entry[f.name] = _to_json(value)
            layers.append(entry)
        manifest = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "inputs": [_to_json(i) for i in self.inputs],
            "layers": layers,
            "outputs": list(self.outputs),
            "classes": self.classes,
        }
        # Write to temporaries then rename: nothing half-written on failure.
        tmp_npz = folder / "tensors.npz.tmp"
        with open(tmp_npz, "wb") as fh:
            np.savez(fh, **arrays)
        tmp_json = folder / "manifest.json.tmp"
        tmp_json.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        tmp_npz.replace(folder / "tensors.npz")
        tmp_json.replace(folder / "manifest.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "IntModel":
        folder = Path(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("format") != FORMAT_VERSION:
            raise ValueError(f"{folder}: unsupported IntModel format {manifest.get('format')!r}")
        with np.load(folder / "tensors.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        layers = []
        for entry in manifest["layers"]:
            name = entry["name"]
            kwargs: dict[str, Any] = {}
            for f in dataclasses.fields(IntLayer):
                if f.name not in entry:
                    continue
                value = entry[f.name]
                if f.name == "extra":
                    kwargs["extra"] = {k: arrays[f"{name}.extra.{k}"] for k in value}
                elif f.name == "requant":
                    kwargs["requant"] = None if value is None else Requant(
                        arrays[f"{name}.requant.multiplier"], arrays[f"{name}.requant.shift"], value["qmin"], value["qmax"]
                    )
                elif isinstance(value, dict) and "array" in value:
                    kwargs[f.name] = arrays[value["array"]]
                else:
                    kwargs[f.name] = _from_json(value)
            layers.append(IntLayer(**kwargs))
        return cls(
            name=manifest["name"],
            inputs=tuple(_from_json(i) for i in manifest["inputs"]),
            layers=tuple(layers),
            outputs=tuple(manifest["outputs"]),
            classes=manifest["classes"],
        )


# ------------------------------------------------------------ JSON of typed values

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in [QType, IntInput, *[v for v in vars(ir).values() if isinstance(v, type) and dataclasses.is_dataclass(v)]]
}
_ENUMS: dict[str, type] = {v.__name__: v for v in vars(ir).values() if isinstance(v, type) and issubclass(v, enum.Enum)}


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"__type__": type(value).__name__}
        for f in dataclasses.fields(value):
            if f.compare:  # spans are not part of the value
                out[f.name] = _to_json(getattr(value, f.name))
        return out
    if isinstance(value, enum.Enum):
        return {"__enum__": type(value).__name__, "value": value.value}
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "__type__" in value:
            cls = _TYPES[value["__type__"]]
            return cls(**{k: _from_json(v) for k, v in value.items() if k != "__type__"})
        if "__enum__" in value:
            return _ENUMS[value["__enum__"]](value["value"])
        if "__tuple__" in value:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value
