"""Typed JSON + npz encoding of the contract's frozen dataclasses (IntModel payloads, hardware plans).

A value is encoded into JSON plus a dict of numpy arrays (stored beside it in an `.npz`):
- a registered dataclass -> {"__type__": NAME, field: value, ...} (fields with compare=False,
  such as source spans, are left out);
- a registered enum -> {"__enum__": NAME, "value": value};
- a tuple -> {"__tuple__": [...]}; lists and str-keyed dicts as themselves;
- a numpy array -> {"__array__": KEY}, the array stored under KEY (the field path);
- numpy scalars become Python numbers; None, bool, int, float, str as themselves.

Only registered types are ever instantiated when decoding (`serializable`), so a manifest cannot
name an arbitrary class. Each kind registers its own payload and plan types where it defines them.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable, TypeVar

import numpy as np

T = TypeVar("T")

_TYPES: dict[str, type] = {}


class CodecError(ValueError):
    """A manifest names an unknown type, or a value cannot be encoded."""


def serializable(name: str | None = None) -> Callable[[type[T]], type[T]]:
    """Class decorator: register a dataclass or enum under `name` (default: the class name)."""

    def register(cls: type[T]) -> type[T]:
        key = name or cls.__name__
        if not (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum)):
            raise TypeError(f"serializable: {cls!r} is neither a dataclass nor an enum")
        known = _TYPES.get(key)
        if known is not None and known is not cls and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"serializable: the name {key!r} is taken by {known!r}")
        _TYPES[key] = cls
        cls.__codec_name__ = key  # type: ignore[attr-defined]
        return cls

    return register


def type_name(cls: type) -> str:
    return getattr(cls, "__codec_name__", cls.__name__)



def encode(value: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    """JSON-ready form of `value`; arrays go into `arrays` under keys derived from `path`."""
    if isinstance(value, np.ndarray):
        key = path
        if key in arrays:
            raise CodecError(f"two arrays at {key!r}")
        arrays[key] = value
        return {"__array__": key}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if _TYPES.get(type_name(cls)) is not cls:
            raise CodecError(f"{cls.__qualname__} is not registered with cdsl.contract.codec.serializable")
        out: dict[str, Any] = {"__type__": type_name(cls)}
        for f in dataclasses.fields(value):
            if f.compare:
                out[f.name] = encode(getattr(value, f.name), arrays, f"{path}.{f.name}")
        return out
    if isinstance(value, enum.Enum):
        return {"__enum__": type_name(type(value)), "value": value.value}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, arrays, f"{path}.{k}") for k, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, arrays, f"{path}.{k}") for k, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise CodecError(f"{path}: dict keys must be strings")
        return {k: encode(v, arrays, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CodecError(f"{path}: cannot encode a {type(value).__name__}")


_FORMS = {"__enum__": {"__enum__", "value"}, "__tuple__": {"__tuple__"}, "__array__": {"__array__"}}


def decode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The value `encode` produced `obj` from (arrays looked up in `arrays`)."""
    if isinstance(obj, dict):
        for form, keys in _FORMS.items():
            if form in obj and set(obj) != keys:
                raise CodecError(f"{form}: expected exactly the keys {sorted(keys)}, found {sorted(obj)}")
        if "__type__" in obj:
            cls = _TYPES.get(obj["__type__"])
            if cls is None or not dataclasses.is_dataclass(cls):
                raise CodecError(f"unknown type {obj['__type__']!r}")
            optional = getattr(cls, "codec_optional", frozenset())
            missing = [f.name for f in dataclasses.fields(cls)
                       if f.compare and f.init and f.name not in obj and f.name not in optional]
            if missing:  # encode writes every field: a default never stands in for a lost one (except a
                # field added later that the class names in `codec_optional`: files written before it take its default)
                raise CodecError(f"{obj['__type__']}: missing field {', '.join(map(repr, missing))}")
            kwargs = {k: decode(v, arrays) for k, v in obj.items() if k != "__type__"}
            try:
                return cls(**kwargs)
            except TypeError as err:
                raise CodecError(f"{obj['__type__']}: {err}") from None
        if "__enum__" in obj:
            cls = _TYPES.get(obj["__enum__"])
            if cls is None or not issubclass(cls, enum.Enum):
                raise CodecError(f"unknown enum {obj['__enum__']!r}")
            return cls(obj["value"])
        if "__tuple__" in obj:
            return tuple(decode(v, arrays) for v in obj["__tuple__"])
        if "__array__" in obj:
            key = obj["__array__"]
            if key not in arrays:
                raise CodecError(f"array {key!r} is missing")
            return arrays[key]
        return {k: decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v, arrays) for v in obj]
    return obj


def values_equal(a: Any, b: Any) -> bool:
    """Structural equality that compares numpy arrays by dtype and contents."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and bool(np.array_equal(a, b)))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            values_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a) if f.compare)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return a == b


class ArrayEq:
    """Mixin for dataclasses (declared with eq=False) holding numpy arrays: equality by value."""

    def __eq__(self, other: object) -> bool:
        return values_equal(self, other)

    __hash__ = None  # type: ignore[assignment]


# ---------------------------------------------------------------- type checks of decoded values


def type_errors(value: Any, path: str = "") -> list[str]:
    """Every field of a decoded dataclass (recursively) whose value does not have its annotated type:
    `["weight: expected an integer array, found str", ...]`. Arrays are checked to be numpy arrays
    (their dtypes and shapes are the kind's `check`)."""
    import typing

    if not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return []
    hints = typing.get_type_hints(type(value))
    errors: list[str] = []
    for f in dataclasses.fields(value):
        if f.compare:
            errors += _check_type(getattr(value, f.name), hints.get(f.name, Any), f"{path}{f.name}")
    return errors


def _describe(value: Any) -> str:
    return f"an array of {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__


def _check_type(value: Any, hint: Any, path: str) -> list[str]:
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return []
    if origin in (typing.Union, types.UnionType):
        options = [_check_type(value, a, path) for a in args]
        return [] if any(not o for o in options) else [f"{path}: expected {_hint_words(hint)}, found {_describe(value)}"]
    if hint is type(None):
        return [] if value is None else [f"{path}: expected nothing (null), found {_describe(value)}"]
    if origin is tuple:
        if not isinstance(value, tuple):
            return [f"{path}: expected a list, found {_describe(value)}"]
        if len(args) == 2 and args[1] is Ellipsis:
            return [e for k, v in enumerate(value) for e in _check_type(v, args[0], f"{path}[{k}]")]
        if len(args) != len(value):
            return [f"{path}: expected {len(args)} entries, found {len(value)}"]
        return [e for k, (v, a) in enumerate(zip(value, args)) for e in _check_type(v, a, f"{path}[{k}]")]
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected true or false, found {_describe(value)}"]
    if hint is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else \
            [f"{path}: expected a whole number, found {_describe(value)}"]
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
        return [] if ok else [f"{path}: expected a finite number, found {value!r}"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string, found {_describe(value)}"]
    if hint is np.ndarray:
        return [] if isinstance(value, np.ndarray) else [f"{path}: expected an array, found {_describe(value)}"]
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return [f"{path}: expected a {type_name(hint)}, found {_describe(value)}"]
        # a dataclass, or a subclass of an abstract base (a payload's MAC core): its own fields too
        return type_errors(value, f"{path}.")
    return []


def _hint_words(hint: Any) -> str:
    import typing

    args = typing.get_args(hint)
    names = [("nothing" if a is type(None) else getattr(a, "__name__", str(a))) for a in args] or [str(hint)]
    return " or ".join(names)
