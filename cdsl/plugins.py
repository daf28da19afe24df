"""Plug-in discovery: a kind (or a MAC core) is a module in a package, found by importing them all.

Registries (`cdsl.contract.kinds`, `cdsl.sw.registry`, `cdsl.sw.cores`, `cdsl.hw.registry`) call
`import_all(package)` before their first lookup; each module registers itself when imported, so
adding a kind means adding a file, and no list anywhere names the kinds.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def import_all(package: ModuleType) -> tuple[str, ...]:
    """Import every module of `package` whose name does not start with '_'; return their names."""
    names = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
            names.append(info.name)
    return tuple(names)
