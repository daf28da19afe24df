"""What each submodule of a generated engine is, for cost reports (`cdsl report`).

The engines name their submodules (`m.submodules.frame = ...`); in the generated Verilog an engine's
submodule is the module `network.<engine>.<name>`. A cost report groups them into four roles: the
multiply-accumulate datapath, the requantization unit, the frame buffer, and control (window
generation, the engine's own sequencing and weight ROMs, the register bank, the FIFOs and forks
between engines). A name not listed here counts as control.
"""

from __future__ import annotations

MAC, REQUANT, FRAME, CONTROL = "MAC", "requant", "frame buffer", "control"
ROLES = (MAC, REQUANT, FRAME, CONTROL)

# submodule name (or the prefix before '_<index>') -> role
SUB_BLOCK_ROLES = {
    "reducer": MAC,  # MacUnit of a MAC engine (bit-parallel, bit-serial, AQFP accumulator), PoolReduce
    "tile": MAC,  # CIM tiles: tile_<t>_<u>
    "requant": REQUANT,
    "frame": FRAME,
    "windows": CONTROL,
    "outputs": CONTROL,  # the CIM engine's output buffer
}


def role_of(submodule: str) -> str:
    """The role of an engine's submodule from its name (`tile_0_1` -> the role of `tile`)."""
    if submodule in SUB_BLOCK_ROLES:
        return SUB_BLOCK_ROLES[submodule]
    head = submodule.split("_", 1)[0]
    return SUB_BLOCK_ROLES.get(head, CONTROL)
