"""Verilog text of an Amaranth component, as every generated design and harness of cdsl is written.

`amaranth.back.verilog.convert` asks Yosys' `write_verilog` for Verilog-2005, whose combinational
`always @*` blocks rely on a trick to run at time zero (a `reg` with an initializer that they are
sensitive to). Simulators in SystemVerilog mode run variable initializers before time zero without
an event, so those blocks never run until an input changes: Icarus Verilog with `-g2012` started every
design from X. With `write_verilog -sv`, Yosys writes `always_comb` (which the language runs once at
time zero) and `always_ff`: correct in Verilator, Icarus `-g2012` and synthesis tools alike (read as
SystemVerilog: the files end in `.sv`).
"""

from __future__ import annotations

from amaranth.back import rtlil
from amaranth.back.verilog import _convert_rtlil_text  # the one function that takes write_verilog options


def verilog_text(component, *, name: str) -> str:
    """SystemVerilog (Yosys `write_verilog -sv`) of `component` as module `name`, without source attributes."""
    text = rtlil.convert(component, name=name, emit_src=False)
    return _convert_rtlil_text(text, write_verilog_opts=("-sv",))
