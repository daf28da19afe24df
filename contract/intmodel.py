"""The integer model: what training exports and what both the golden model and the RTL generator
consume. It is the co-verification contract in data form.

On disk (a run folder's `intmodel/`): `manifest.json` (structure, types, scalars) plus
`tensors.npz` (every integer array, keyed by its field path `<layer>.<field>...`).

Numbers
- Activations are integers `q` with real value `scale * (q - zero_point)`; `QType` gives their
  width, signedness, scale and zero point. A float input becomes codes with `QType.quantize`:
  clamp(round_half_up(x / scale), qmin, qmax), the one rounding rule of the contract.
- Every layer is an `IntLayer`: its graph position, input and output types and shapes, and a
  typed payload: a frozen dataclass owned by the layer's kind (`cdsl.contract.ref.<kind>`), which
  holds the kind's integer data (weights, requantization, masks, ...) and its golden step
  (`Payload.run`). There are no string-keyed extras: a kind that needs new data adds a field.
- Runtime settings (a bit-serial layer's weight precision today; a keep threshold or a noise seed
  tomorrow) are declared by the payload (`Payload.settings`) with their range and default; the
  golden model and the hardware's control interface take the same values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.files import staged
from cdsl.dsl import ir

FORMAT_VERSION = 3


def round_half_up(v: torch.Tensor) -> torch.Tensor:
    """floor(v + 0.5): the one rounding of float values onto an integer grid (inputs, weights,
    biases, activation codes), the same round-half-up as the requantization contract."""
    return torch.floor(v + 0.5)


@codec.serializable()
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

    def quantize(self, x) -> torch.Tensor:
        """Float values -> int64 codes: clamp(round_half_up(x / scale) + zero_point, qmin, qmax)."""
        xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)
        q = round_half_up(xt / self.scale) + self.zero_point
        return q.clamp(self.qmin, self.qmax).to(torch.int64)


@codec.serializable()
@dataclass(frozen=True, eq=False)
class Requant(codec.ArrayEq):
    """Per-channel (or one-element, per-tensor) requantization parameters of
    `cdsl.contract.ref.requant.requantize`."""

    multiplier: np.ndarray  # int64 [C] or [1]
    shift: np.ndarray  # int64 [C] or [1]
    qmin: int
    qmax: int

    def apply(self, acc: torch.Tensor, *, channel_dim: int) -> torch.Tensor:
        """requantize(acc) with the channel axis of `acc` at `channel_dim` (counted from the end, < 0)."""
        from cdsl.contract.ref.requant import requantize

        shape = (-1,) + (1,) * (-channel_dim - 1)
        mult = torch.from_numpy(np.asarray(self.multiplier, dtype=np.int64)).reshape(shape)
        shift = torch.from_numpy(np.asarray(self.shift, dtype=np.int64)).reshape(shape)
        return requantize(acc, mult, shift, self.qmin, self.qmax)


@codec.serializable()
@dataclass(frozen=True)
class Setting:
    """A runtime setting of a layer: an integer in lo..hi, `default` when not set."""

    name: str
    lo: int
    hi: int
    default: int
    doc: str

    def check(self, layer: str, value: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not self.lo <= value <= self.hi:
            raise ValueError(f"layer {layer!r}: {self.name} must be an integer in {self.lo}..{self.hi}, "
                             f"got {value!r} ({self.doc})")
        return value


class Payload(codec.ArrayEq):
    """Base of every kind's payload: a frozen dataclass (eq=False) registered with
    `codec.serializable(KIND)`. `KIND` is the name written in the manifest."""

    kind: ClassVar[str]

    def settings(self, layer: "IntLayer") -> tuple[Setting, ...]:
        """The runtime settings this layer takes (none by default)."""
        return ()

    def run(self, layer: "IntLayer", inputs: list[torch.Tensor], settings: Mapping[str, int]) -> torch.Tensor:
        """The golden step: int64 inputs [B, *in_shape] -> int64 output [B, *out_shape]."""
        raise NotImplementedError(f"{type(self).__name__} has no golden step")

    def run_tokens(self, layer: "IntLayer", inputs: list[torch.Tensor], counts: list[torch.Tensor | None],
                   settings: Mapping[str, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The golden step on token streams [B, N, D] whose token count varies per sample (a selector
        upstream pruned them): `counts[k]` int64 [B] is how many leading rows of input k sample b really
        holds (zero rows after them), None when every sample holds all N. Returns (output, its counts or
        None: all rows). The golden model calls this for every layer. By default `run` on the padded
        tensors, all output rows: right for a layer that reads only the class token (row 0) or none of
        its tokens' count; a layer whose tokens vary in number (the encoder) overrides this."""
        return self.run(layer, inputs, settings), None

    def check(self, layer: "IntLayer") -> None:
        """Raise ValueError("field: what was expected") if the payload does not fit its layer (array
        dtypes, shapes and ranges; the output shape and type). Field types are already checked."""


def kind_of(payload_type: type) -> str:
    return codec.type_name(payload_type)


@dataclass(frozen=True, eq=False)
class IntLayer(codec.ArrayEq):
    name: str
    inputs: tuple[str, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    in_types: tuple[QType, ...]
    out_shape: tuple[int, ...]
    out_type: QType
    payload: Payload

    @property
    def kind(self) -> str:
        return kind_of(type(self.payload))

    def settings(self) -> tuple[Setting, ...]:
        return self.payload.settings(self)


@codec.serializable()
@dataclass(frozen=True)
class IntInput:
    name: str
    shape: tuple[int, ...]
    qtype: QType


Settings = Mapping[str, Mapping[str, int]]  # layer name -> setting name -> value


@dataclass(frozen=True, eq=False)
class IntModel(codec.ArrayEq):
    name: str
    inputs: tuple[IntInput, ...]
    layers: tuple[IntLayer, ...]  # topological order
    outputs: tuple[str, ...]
    # The digest a model read back was exported with (`from_json`), its name for good: a later cdsl may
    # re-encode the same model differently (a payload field added with a default), which must not make
    # an untouched run folder look edited. Not copied by `dataclasses.replace` (init=False): a changed
    # model is named by its own encoding.
    sealed: str | None = dataclasses.field(default=None, init=False, compare=False, repr=False)

    def layer(self, name: str) -> IntLayer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    def type_of(self, name: str) -> QType:
        """The type of a tensor: a model input or a layer output."""
        for inp in self.inputs:
            if inp.name == name:
                return inp.qtype
        return self.layer(name).out_type

    def shape_of(self, name: str) -> tuple[int, ...]:
        for inp in self.inputs:
            if inp.name == name:
                return inp.shape
        return self.layer(name).out_shape

    def settings(self) -> dict[str, tuple[Setting, ...]]:
        """Every layer's runtime settings (layers without any are left out)."""
        return {lay.name: lay.settings() for lay in self.layers if lay.settings()}

    def check_settings(self, values: Settings | None) -> dict[str, dict[str, int]]:
        """`values` checked against the declared settings (names and ranges); ValueError otherwise."""
        declared = self.settings()
        out: dict[str, dict[str, int]] = {}
        for layer, items in (values or {}).items():
            if layer not in declared:
                names = ", ".join(f"{n}.{s.name}" for n, ss in declared.items() for s in ss) or "none"
                raise ValueError(f"layer {layer!r} of {self.name!r} has no runtime settings (settable: {names})")
            by_name = {s.name: s for s in declared[layer]}
            for name, value in items.items():
                if name not in by_name:
                    raise ValueError(f"layer {layer!r} has no setting {name!r} (it has: {', '.join(by_name)})")
                out.setdefault(layer, {})[name] = by_name[name].check(layer, value)
        return out

    # ------------------------------------------------------------ persistence

    def to_json(self, *, digest: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for lay in self.layers:
            layers.append({
                "name": lay.name,
                "kind": lay.kind,
                "inputs": list(lay.inputs),
                "in_shapes": [list(s) for s in lay.in_shapes],
                "in_types": [_qtype_json(t) for t in lay.in_types],
                "out_shape": list(lay.out_shape),
                "out_type": _qtype_json(lay.out_type),
                "payload": codec.encode(lay.payload, arrays, lay.name),
            })
        manifest = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "inputs": [{"name": i.name, "shape": list(i.shape), "qtype": _qtype_json(i.qtype)} for i in self.inputs],
            "layers": layers,
            "outputs": list(self.outputs),
        }
        if digest:
            manifest["digest"] = _digest(manifest, arrays)
        return manifest, arrays

    @classmethod
    def from_json(cls, manifest: dict, arrays: Mapping[str, np.ndarray], *, where: str = "manifest.json") -> "IntModel":
        """The IntModel of a manifest and its arrays, validated: the manifest's schema (`schema.Manifest`),
        every payload's field types and its kind's checks, the graph's consistency (every input defined
        before use, shapes and types agreeing with their producers), and the digest (nothing edited
        since export). IntModelError (one line: the file, the field, what was expected) otherwise."""
        import cdsl.contract.kinds  # noqa: F401  (registers every kind's payload type)
        from cdsl.contract.schema import Manifest, first_error

        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise IntModelError(f"{where}: format: expected {FORMAT_VERSION}, found {found!r} "
                                "(an integer model of another cdsl version: train again)")
        try:
            Manifest.model_validate(manifest)
        except ValueError as err:
            raise IntModelError(f"{where}: {first_error(err)}") from None
        arrays = dict(arrays)
        known: dict[str, tuple[tuple[int, ...], QType]] = {}
        inputs = []
        for entry in manifest["inputs"]:
            inp = IntInput(entry["name"], tuple(entry["shape"]), QType(**entry["qtype"]))
            inputs.append(inp)
            known[inp.name] = (inp.shape, inp.qtype)
        layers = []
        for k, entry in enumerate(manifest["layers"]):
            field = f"layers[{k}] {entry['name']!r}"
            try:
                payload = codec.decode(entry["payload"], arrays)
            except (codec.CodecError, TypeError) as err:
                raise IntModelError(f"{where}: {field}: payload: {err}") from None
            if not isinstance(payload, Payload) or kind_of(type(payload)) != entry["kind"]:
                raise IntModelError(f"{where}: {field}: payload: expected a {entry['kind']!r} payload")
            errors = codec.type_errors(payload, "payload.")
            if errors:
                raise IntModelError(f"{where}: {field}: {errors[0]}")
            layer = IntLayer(name=entry["name"], inputs=tuple(entry["inputs"]),
                             in_shapes=tuple(tuple(s) for s in entry["in_shapes"]),
                             in_types=tuple(QType(**t) for t in entry["in_types"]),
                             out_shape=tuple(entry["out_shape"]), out_type=QType(**entry["out_type"]),
                             payload=payload)
            try:
                _check_layer(layer, known)
                payload.check(layer)
            except ValueError as err:
                raise IntModelError(f"{where}: {field}: {err}") from None
            if layer.name in known:
                raise IntModelError(f"{where}: {field}: name: {layer.name!r} is defined twice")
            known[layer.name] = (layer.out_shape, layer.out_type)
            layers.append(layer)
        named = {node["__array__"] for node in _json_nodes(manifest["layers"])
                 if isinstance(node, dict) and isinstance(node.get("__array__"), str)}
        unused = sorted(set(arrays) - named)
        if unused:
            raise IntModelError(f"{where}: tensors.npz holds arrays no layer names: {', '.join(unused[:4])}")
        layer_names = {lay.name for lay in layers}
        for name in manifest["outputs"]:
            if name not in layer_names:
                raise IntModelError(f"{where}: outputs: {name!r} is not a layer")
        if manifest["digest"] != _digest(manifest, arrays):  # over what was read, not a re-encoding
            raise IntModelError(f"{where}: digest: the integer model (manifest.json or tensors.npz) was changed "
                                "after it was exported; export it again with `cdsl train`")
        model = cls(name=manifest["name"], inputs=tuple(inputs), layers=tuple(layers),
                    outputs=tuple(manifest["outputs"]))
        object.__setattr__(model, "sealed", manifest["digest"])
        return model

    def digest(self) -> str:
        """SHA-256 of the canonical manifest (without its digest) and every array: names this exact model
        (for a model read back, the digest it was exported with: see `sealed`)."""
        if self.sealed is not None:
            return self.sealed
        manifest, arrays = self.to_json(digest=False)
        return _digest(manifest, arrays)

    def save(self, folder: str | Path) -> Path:
        """Write `folder/manifest.json` and `folder/tensors.npz` (into a temporary folder, then renamed)."""
        folder = Path(folder)
        manifest, arrays = self.to_json()
        with staged(folder) as tmp:
            with open(tmp / "tensors.npz", "wb") as fh:
                np.savez(fh, **arrays)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "IntModel":
        """Read and validate an IntModel folder; IntModelError (a ValueError) names the file and field."""
        folder = Path(folder)
        mpath, npath = folder / "manifest.json", folder / "tensors.npz"
        for path in (mpath, npath):
            if not path.is_file():
                raise IntModelError(f"{path}: missing")
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise IntModelError(f"{mpath}: not a readable JSON manifest ({err})") from None
        arrays = load_arrays(npath)
        return cls.from_json(manifest, arrays, where=str(mpath))


class IntModelError(ValueError):
    """An integer model that cannot be read: the message names the file and the field."""


MAX_TENSOR_BYTES = 1 << 30  # tensors.npz may hold at most this much, uncompressed


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz written by `IntModel.save`: plain numeric arrays only, no pickled objects,
    at most MAX_TENSOR_BYTES uncompressed (checked before anything is inflated)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(info.file_size for info in zf.infolist())
            if total > MAX_TENSOR_BYTES:
                raise IntModelError(f"{path}: {total / 2**30:.1f} GiB uncompressed, more than the "
                                    f"{MAX_TENSOR_BYTES / 2**30:.0f} GiB an integer model may hold")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except IntModelError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise IntModelError(f"{path}: not a readable array file ({err})") from None
    for key, arr in arrays.items():
        if arr.dtype.kind not in "biuf":
            raise IntModelError(f"{path}: {key}: expected numbers, found an array of {arr.dtype}")
    return arrays


def _json_nodes(obj):
    """A JSON value and every value inside it."""
    yield obj
    for value in (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()):
        yield from _json_nodes(value)


def _qtype_json(t: QType) -> dict:
    return {"bits": t.bits, "signed": t.signed, "scale": t.scale, "zero_point": t.zero_point}


def _digest(manifest: dict, arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps({k: v for k, v in manifest.items() if k != "digest"}, sort_keys=True).encode())
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        h.update(f"\0{key}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _check_layer(layer: IntLayer, known: Mapping[str, tuple[tuple[int, ...], QType]]) -> None:
    """The graph agrees with itself: every input defined before, with the shape and type recorded."""
    if not (len(layer.inputs) == len(layer.in_shapes) == len(layer.in_types)):
        raise ValueError(f"inputs, in_shapes, in_types: expected one entry each per input, found "
                         f"{len(layer.inputs)}, {len(layer.in_shapes)}, {len(layer.in_types)}")
    for k, (name, shape, qtype) in enumerate(zip(layer.inputs, layer.in_shapes, layer.in_types)):
        if name not in known:
            raise ValueError(f"inputs[{k}]: {name!r} is not an input or an earlier layer")
        if tuple(shape) != tuple(known[name][0]):
            raise ValueError(f"in_shapes[{k}]: expected {list(known[name][0])} (the shape of {name!r}), found {list(shape)}")
        if qtype != known[name][1]:
            raise ValueError(f"in_types[{k}]: expected the type of {name!r}")


def with_settings(layer: IntLayer, settings: Settings | None) -> dict[str, int]:
    """The layer's settings: its declared defaults, overridden by `settings[layer.name]`."""
    values = {s.name: s.default for s in layer.settings()}
    values.update((settings or {}).get(layer.name, {}))
    return values


def replace_payload(layer: IntLayer, **changes: Any) -> IntLayer:
    return dataclasses.replace(layer, payload=dataclasses.replace(layer.payload, **changes))
