"""`verilator --lint-only -Wall` of a generated design, its warnings counted by category.

Every category Verilator reports on cdsl's Verilog is listed in `HARMLESS` with the reason it is
harmless; a category outside that list (or any %Error) makes the design unclean. The generated
code is never edited to silence a warning. Measured on the digits MLP (`cdsl gen ... --lint`):
523 UNUSEDSIGNAL, 87 PROCASSINIT, 71 WIDTHEXPAND, 16 WIDTHTRUNC, 1 DECLFILENAME.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cdsl.sim.toolchain import require_toolchain, verilator_env

HARMLESS: dict[str, str] = {
    "WIDTHEXPAND": "Yosys' write_verilog leaves operands of mixed widths to Verilog's context-determined "
                   "sizing (`assign w = a + 1'h1` into a wider w); Amaranth already fixed every width",
    "WIDTHTRUNC": "the same context-determined sizing, into a narrower wire: the truncation Amaranth asked for",
    "UNUSEDSIGNAL": "Amaranth keeps a named wire for every field of a stream payload or layout "
                    "(`o__payload.data`, `o__payload.last`) and every unused bit of a slice, for waveforms; "
                    "synthesis removes them",
    "PROCASSINIT": "Yosys declares each register with its power-on value (`reg [5:0] channel = 6'h00;`) "
                   "and assigns it in always_ff: Amaranth's init value, equal to its reset value",
    "DECLFILENAME": "one file (network.sv) holds every module of the design (`network.h1`, ...)",
    "CASEINCOMPLETE": "Yosys emits a `casez (fsm_state)` per signal an `m.FSM` assigns, listing only the states "
                      "that assign it; the other states keep the value set before the `casez`, which is what "
                      "Amaranth means (the ViT engines' FSMs; `cdsl.sim.build` waives it for the same reason)",
    "VARHIDDEN": "an engine's own signal has the name of its instance in the network top (the token linear's "
                 "token counter `t` inside the instance `t` of a layer called t): two scopes, one name, nothing "
                 "shared; layer names are the user's, so such a clash cannot be ruled out",
    "ASCRANGE": "Yosys writes an Amaranth signal of zero width as `wire [-1:0]` (a counter over a range of one "
                "value, such as the attention engine's lane group when its lanes equal the head's features): "
                "declared, never read or driven",
}

_WARNING = re.compile(r"^%Warning-([A-Z0-9_]+):", re.MULTILINE)
_ERROR = re.compile(r"^%Error", re.MULTILINE)


@dataclass(frozen=True)
class LintReport:
    counts: dict[str, int]  # warnings per category
    errors: int
    output: str  # Verilator's stderr

    @property
    def undocumented(self) -> list[str]:
        return sorted(c for c in self.counts if c not in HARMLESS)

    @property
    def clean(self) -> bool:
        """No error and no warning outside the documented harmless categories."""
        return self.errors == 0 and not self.undocumented

    def summary(self) -> str:
        return ", ".join(f"{n} {c}" for c, n in sorted(self.counts.items(), key=lambda kv: -kv[1])) or "no warnings"


def lint(verilog_path: str | Path, *, top: str = "network") -> LintReport:
    """`verilator --lint-only -Wall` of `verilog_path` with top module `top`, counted by category."""
    tc = require_toolchain()
    cmd = [str(tc.verilator_bin), "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top, str(verilog_path)]
    res = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)
    text = res.stdout + res.stderr
    errors = len(_ERROR.findall(text)) or (res.returncode != 0)
    return LintReport(counts=dict(Counter(_WARNING.findall(text))), errors=int(errors), output=text)
