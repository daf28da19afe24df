"""Registers every kind's payload type: imports each module of `cdsl.contract.ref`.

A kind's payload is defined, and registered with `cdsl.contract.codec.serializable`, in its own
reference module; adding a module there is all it takes (nothing here names a kind).
"""

from __future__ import annotations

from cdsl.contract import ref
from cdsl.plugins import import_all

MODULES = import_all(ref)
