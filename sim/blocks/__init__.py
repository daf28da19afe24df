"""Co-verification of hardware blocks that sit inside a layer, on the golden model's own tensors.

Some blocks have RTL before the layers around them do (the token selector in front of an encoder
block, while the encoder runs in the golden model only). A block is a value of a registered contract
type held by a layer's payload (the payload itself, or any field of it, at any depth); its module
in this package registers a checker for that type:

    @register_block(TokenSelector)
    def check_selector(block, *, layer, path, inputs, counts, test_dir) -> BlockReport: ...

`verify_blocks(intmodel, x_int)` runs the golden model with its trace, finds every block, and gives
each checker the tensors arriving at its layer (`inputs`, int64 [S, ...] per layer input, one row
per sample). Nothing here names a kind: modules are found with `cdsl.plugins.import_all`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

__all__ = ["BlockReport", "Block", "register_block", "blocks_of", "verify_blocks", "missing_hardware"]

_CHECKERS: dict[type, Callable] = {}


class BlockReport(Protocol):
    name: str
    samples: int
    mismatches: list[str]

    @property
    def ok(self) -> bool: ...

    def summary(self) -> str: ...


def register_block(block_type: type):
    """Decorator: `fn(block, *, layer, path, inputs, counts, test_dir) -> BlockReport` checks blocks of
    `block_type` (`counts[k]`: int64 [S], the tokens each sample of input k holds when a selector
    upstream shortened that stream, else None)."""
    def add(fn):
        known = _CHECKERS.get(block_type)
        if known is not None and known.__qualname__ != fn.__qualname__:
            raise TypeError(f"the block checker of {block_type.__name__} is already {known.__qualname__}")
        _CHECKERS[block_type] = fn
        return fn

    return add


def _load() -> None:
    import cdsl.sim.blocks as package
    from cdsl.plugins import import_all

    import_all(package)


@dataclass(frozen=True)
class Block:
    layer: object  # the IntLayer holding it
    path: str  # where in the layer: "<layer>.payload.<field>..."
    value: object
    check: Callable


def _walk(value, path: str, seen: set[int]):
    if id(value) in seen:
        return
    seen.add(id(value))
    for cls in type(value).__mro__:
        if cls in _CHECKERS:
            yield path, value, _CHECKERS[cls]
            return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name), f"{path}.{f.name}", seen)
    elif isinstance(value, (tuple, list)):
        for k, v in enumerate(value):
            yield from _walk(v, f"{path}[{k}]", seen)


def blocks_of(intmodel) -> list[Block]:
    """Every registered block inside the layers' payloads, in layer order."""
    _load()
    found = []
    for lay in intmodel.layers:
        for path, value, check in _walk(lay.payload, f"{lay.name}.payload", set()):
            found.append(Block(lay, path, value, check))
    return found


def verify_blocks(intmodel, x_int, *, settings=None, test_dir: Path | None = None) -> list[BlockReport]:
    """Check every block of `intmodel` on the golden model's tensors for the samples `x_int` (see the
    module docstring). Returns one report per block."""
    import tempfile

    from cdsl.contract.golden import feeds, golden_counts

    blocks = blocks_of(intmodel)
    if not blocks:
        return []
    if test_dir is None:  # a scratch folder, removed afterwards (a failure raises with its log text)
        with tempfile.TemporaryDirectory(prefix="cdsl-blocks-") as scratch:
            return verify_blocks(intmodel, x_int, settings=settings, test_dir=Path(scratch))
    _, trace, counts = golden_counts(intmodel, x_int, settings=settings)
    env = {**feeds(intmodel, x_int), **trace}
    root = Path(test_dir)
    reports = []
    for k, b in enumerate(blocks):
        inputs = [env[name] for name in b.layer.inputs]
        reports.append(b.check(b.value, layer=b.layer, path=b.path, inputs=inputs,
                               counts=[counts.get(name) for name in b.layer.inputs], test_dir=root / f"block{k}"))
    return reports


def missing_hardware(intmodel) -> str | None:
    """Why the whole network has no RTL ("layer 'e1': encoder has no hardware engine yet"), or None."""
    from cdsl.hw.registry import missing_engine

    for lay in intmodel.layers:
        core = getattr(lay.payload, "core", None)
        why = missing_engine(type(lay.payload), type(core) if core is not None else None)
        if why is not None:
            return f"layer {lay.name!r}: {why}"
    return None
