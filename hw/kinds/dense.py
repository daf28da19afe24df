"""dense: planned by its MAC core (`cdsl.hw.cores`) onto a MAC engine."""

from __future__ import annotations

from cdsl.contract.ref.dense import DensePayload
from cdsl.hw.registry import plan_core, register

register(DensePayload)(plan_core)
