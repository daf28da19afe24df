"""`verilator --lint-only` of a generated design with the documented WIDTH waivers only.

Yosys' Verilog relies on context-determined operand widths, which Verilator reports as
WIDTHEXPAND/WIDTHTRUNC though Amaranth already fixed every width (see `cdsl.sim.build`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from cdsl.sim.toolchain import require_toolchain, verilator_env

LINT_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC")


def lint(verilog_path: str | Path, *, top: str = "network") -> subprocess.CompletedProcess:
    """Lint with Verilator's default warnings and the WIDTH waivers; returncode 0 = clean."""
    tc = require_toolchain()
    cmd = [str(tc.verilator_bin), "--lint-only", *LINT_WAIVERS, "--top-module", top, str(verilog_path)]
    return subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)
