"""The hardware path's kinds: how each payload type is planned onto an engine, found by its type.

A kind lives in its own module under `cdsl.hw.kinds` and registers a planner for its payload:

    @register(DensePayload)
    def plan_dense(layer: IntLayer, ctx: PlanContext) -> Node | Alias: ...

The planner returns the layer's `Node` (a frozen dataclass describing its engine: configuration,
Amaranth component, runtime settings, cycle model), or an `Alias` when the layer needs no hardware
(a flatten, a ReLU fused into the layer before it). MAC cores register the same way under
`cdsl.hw.cores`, keyed by the contract's core type. The planner, the network top, `cdsl gen` and
co-simulation ask these registries; they never name a kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, TypeVar

from cdsl.plugins import import_all

if TYPE_CHECKING:
    from cdsl.contract.intmodel import IntLayer
    from cdsl.hw.plan import Alias, Node, PlanContext

F = TypeVar("F", bound=Callable)

_PLANNERS: dict[type, Callable] = {}
_CORES: dict[type, Callable] = {}


class UnsupportedModel(ValueError):
    """The IntModel uses something the hardware generator cannot build (yet)."""


def _register(table: dict, key: type, what: str) -> Callable[[F], F]:
    def add(fn: F) -> F:
        known = table.get(key)
        if known is not None and known.__qualname__ != fn.__qualname__:
            raise TypeError(f"the hardware {what} of {key.__name__} is already {known.__qualname__}")
        table[key] = fn
        return fn

    return add


def register(payload_type: type) -> Callable[[F], F]:
    """Decorator: `fn(layer, ctx) -> Node | Alias` plans layers whose payload is a `payload_type`."""
    return _register(_PLANNERS, payload_type, "planner")


def register_core(core_type: type) -> Callable[[F], F]:
    """Decorator: `fn(layer, ctx) -> Node` plans a weighted layer whose MAC core is a `core_type`."""
    return _register(_CORES, core_type, "MAC core")


def load_all() -> None:
    """Import every kind and MAC-core module (each registers its planner and node types)."""
    from cdsl.hw import cores, kinds

    import_all(kinds)
    import_all(cores)


def _lookup(table: dict, value: object):
    load_all()
    for cls in type(value).__mro__:
        if cls in table:
            return table[cls]
    return None


def missing_engine(payload_type: type, core_type: type | None = None) -> str | None:
    """Why a layer with this payload (and MAC core) type has no hardware, or None when it has."""
    load_all()
    if not any(cls in _PLANNERS for cls in payload_type.__mro__):
        from cdsl.contract.intmodel import kind_of

        return f"{kind_of(payload_type)} has no hardware engine yet"
    if core_type is not None and not any(cls in _CORES for cls in core_type.__mro__):
        return f"its MAC core {core_type.__name__} has no hardware engine yet"
    return None


def plan_layer(layer: "IntLayer", ctx: "PlanContext") -> "Node | Alias":
    planner = _lookup(_PLANNERS, layer.payload)
    if planner is None:
        raise UnsupportedModel(f"layer {layer.name!r}: {layer.kind} has no hardware engine yet")
    return planner(layer, ctx)


def plan_core(layer: "IntLayer", ctx: "PlanContext") -> "Node":
    core = layer.payload.core
    planner = _lookup(_CORES, core)
    if planner is None:
        raise UnsupportedModel(f"layer {layer.name!r}: its MAC core {type(core).__name__} has no hardware engine yet")
    return planner(layer, ctx)
