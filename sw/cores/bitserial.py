"""The bit-serial MAC's training twin: `@bitserial(lanes=L)` maps a layer to `BitSerialCore(L)`.

At full precision a bit-serial MAC computes exact products, so the forward pass is unchanged;
runtime truncation (`precision`) is a setting of the integer model and the hardware.
"""

from __future__ import annotations

from cdsl.contract.ref.bitserial_mac import BitSerialCore
from cdsl.contract.ref.mac import MacCore
from cdsl.dsl import ir
from cdsl.sw.cores import CoreTwin, register_core


class BitSerialTwin(CoreTwin):
    """A bit-serial MAC computes exact products at full precision: the forward pass is unchanged."""

    core_type = BitSerialCore

    def __init__(self, annotation: ir.BitSerial):
        super().__init__()
        self.lanes = annotation.lanes

    def core(self) -> MacCore:
        return BitSerialCore(lanes=self.lanes)


register_core("bitserial", BitSerialTwin)
