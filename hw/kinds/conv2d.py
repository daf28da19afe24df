"""conv2d: planned by its MAC core (`cdsl.hw.cores`) onto a MAC engine (im2col windows in hardware)."""

from __future__ import annotations

from cdsl.contract.ref.conv2d import Conv2dPayload
from cdsl.hw.registry import plan_core, register

register(Conv2dPayload)(plan_core)
