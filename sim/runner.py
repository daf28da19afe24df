"""Run a cocotb test module against Verilog in Verilator: build (cached), simulate, parse results.

    from cdsl.sim.runner import run_cocotb

    result = run_cocotb(verilog=text, toplevel="harness_top",
                        test_module="cdsl.sim.selftest_bench",     # importable from this process's sys.path
                        extra_env={"CDSL_HARNESS": harness.manifest_json()},
                        seed=1234, waves=Path("run.fst"))
    result.passed          # every test passed (and at least one ran)
    result.tests           # (TestCase(name, passed, seconds, sim_time_ns, message), ...)
    result.data            # the JSON the test wrote with cdsl.sim.drivers.write_results(...), or None
    result.build.hit       # whether the Verilator build came from the cache
    result.log_text()      # the simulator's output (it goes to result.log, not to the terminal)

The cocotb test module must be importable: cocotb's runner hands the simulator this process's
`sys.path` as PYTHONPATH (and overrides any PYTHONPATH given in `extra_env`): production testbenches
live in the installed package (`cdsl.sim.network_bench`, `cdsl.sim.selftest_bench`), test-only ones
in tests/tb, which pytest puts on sys.path (`pythonpath` in pyproject.toml).

`verilog` is one Verilog text, or a tuple of texts compiled together (the top's first: e.g. a
harness and the generated `network.sv` it instantiates).

`waves`: a path ending in `.fst` or `.vcd`; the build then has tracing compiled in (its own cache
entry) and the simulator writes that file (`--trace-file`). Open it with GTKWave or Surfer.
FST needs the lz4 headers at build time (Verilator's FST writer includes <lz4.h>; not installed
on this machine): without them a `.fst` request raises ToolchainError naming the fix.

Environment given to the test: `extra_env`, plus `CDSL_RESULTS` (where `write_results` writes) and
`COCOTB_RANDOM_SEED` (`seed`, drawn at random when None and kept in `result.seed`; testbenches
read it with `cdsl.sim.drivers.tb_seed()`).
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from cdsl.sim.build import Build, BuildOptions, build_verilog, reaped_runner
from cdsl.sim.drivers import SIM_CLOCK_VAR
from cdsl.sim.toolchain import ToolchainError, apply_verilator_env, fst_supported

__all__ = ["run_cocotb", "CocotbResult", "TestCase", "SimulationError", "parse_results_xml"]


class SimulationError(ToolchainError):
    """The simulator crashed or produced no results (a failing test is not an error: see `passed`)."""


@dataclass(frozen=True)
class TestCase:
    name: str
    passed: bool
    seconds: float
    sim_time_ns: float
    message: str = ""


@dataclass(frozen=True)
class CocotbResult:
    tests: tuple[TestCase, ...]
    build: Build
    results_xml: Path
    log: Path
    results_json: Path
    waves: Path | None
    seconds: float
    seed: int | None
    _data: dict | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return bool(self.tests) and all(t.passed for t in self.tests)

    @property
    def failed(self) -> tuple[TestCase, ...]:
        return tuple(t for t in self.tests if not t.passed)

    @property
    def data(self) -> dict | None:
        """What the test wrote with `write_results`, or None."""
        return self._data

    def log_text(self, *, tail: int | None = None) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:] if tail else lines)

    def summary(self) -> str:
        head = f"{sum(t.passed for t in self.tests)}/{len(self.tests)} cocotb tests passed (seed {self.seed})"
        lines = [head] + [f"  FAIL {t.name}: {t.message}" for t in self.failed]
        return "\n".join(lines)


def parse_results_xml(path: Path) -> tuple[TestCase, ...]:
    """Test cases of a cocotb xUnit results file."""
    root = ET.parse(path).getroot()
    cases = []
    for case in root.iter("testcase"):
        problems = [child for child in case if child.tag in ("failure", "error")]
        message = "; ".join((p.get("message") or p.text or p.tag).strip() for p in problems)
        cases.append(TestCase(
            name=case.get("name", "?"),
            passed=not problems and case.find("skipped") is None,
            seconds=float(case.get("time", 0) or 0),
            sim_time_ns=float(case.get("sim_time_ns", 0) or 0),
            message=message,
        ))
    return tuple(cases)


def _waves_format(waves: Path | None) -> str | None:
    if waves is None:
        return None
    suffix = Path(waves).suffix.lower()
    if suffix not in (".fst", ".vcd"):
        raise ValueError(f"run_cocotb: waves must end in .fst or .vcd, not {str(waves)!r}")
    if suffix == ".fst" and not fst_supported():
        raise ToolchainError(f"cannot write {str(waves)!r}: Verilator's FST writer needs the lz4 headers "
                             f"(apt-get install liblz4-dev); write a .vcd file instead")
    return suffix[1:]


SIMULATORS = ("verilator", "icarus")


def _build_icarus(*, verilog: str | tuple[str, ...], toplevel: str, directory: Path) -> Build:
    """Compile with Icarus Verilog (iverilog -g2012) for cocotb; a fresh build each time (it takes a second)."""
    import shutil

    from cdsl.sim.build import BuildError, tail_of

    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise ToolchainError("Icarus Verilog is not installed (Debian: apt-get install iverilog)")
    start = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    texts = (verilog,) if isinstance(verilog, str) else tuple(verilog)
    sources = []
    for k, text in enumerate(texts):
        sources.append(directory / f"{toplevel}_src{k}.v")
        sources[-1].write_text(text)
    log = directory / "build.log"
    try:
        reaped_runner("icarus").build(sources=sources, hdl_toplevel=toplevel, build_dir=directory,
                                      build_args=["-g2012"], timescale=("1ns", "1ps"), log_file=log)
    except (RuntimeError, SystemExit) as err:
        raise BuildError(f"Icarus build of {toplevel!r} failed ({err}); log {log}:\n{tail_of(log)}") from None
    return Build("icarus", directory, toplevel, False, time.perf_counter() - start, BuildOptions(optimize=False))


def run_cocotb(*, verilog: str, toplevel: str, test_module: str, test_dir: Path | None = None,
               extra_env: Mapping[str, str] | None = None, waves: Path | None = None,
               seed: int | None = None, testcase: str | None = None,
               build_options: BuildOptions | None = None, cache_dir: Path | None = None,
               simulator: str = "verilator") -> CocotbResult:
    """Build `verilog` (cached) and run the cocotb tests of `test_module` on it.

    test_dir: where results.xml, sim.log and cdsl_results.json go (default: a new temp folder, removed
    afterwards unless a test failed or the simulator wrote no results: then it holds the log that the
    result or the error names; the result's data is read before the folder goes).
    build_options: see `BuildOptions`; its `waves` field is set from `waves`.
    simulator: "verilator" (the flow's simulator, builds cached by content hash) or "icarus" (Icarus
    Verilog, a second simulator to hold Verilator against; compiled with -g2012 into test_dir, no
    cache, no waves; ToolchainError if iverilog is not installed).
    Raises `ToolchainError`/`BuildError` for tool or build problems and `SimulationError` when the
    simulator produced no results; failing tests are reported in the result (`passed` False).
    """
    if not isinstance(test_module, str) or not all(p.isidentifier() for p in test_module.split(".")):
        raise ValueError(f"run_cocotb: test_module must be a dotted module name, not {test_module!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"run_cocotb: seed must be a non-negative integer, not {seed!r}")
    start = time.perf_counter()
    if seed is None:
        seed = random.randrange(1 << 31)
    if simulator not in SIMULATORS:
        raise ValueError(f"run_cocotb: simulator must be one of {SIMULATORS!r}, not {simulator!r}")
    if test_dir is not None:
        return _run(verilog=verilog, toplevel=toplevel, test_module=test_module, test_dir=Path(test_dir).resolve(),
                    extra_env=extra_env, waves=waves, seed=seed, testcase=testcase, build_options=build_options,
                    cache_dir=cache_dir, simulator=simulator, start=start)
    test_dir = Path(tempfile.mkdtemp(prefix="cdsl-sim-"))
    keep = True
    try:
        result = _run(verilog=verilog, toplevel=toplevel, test_module=test_module, test_dir=test_dir,
                      extra_env=extra_env, waves=waves, seed=seed, testcase=testcase, build_options=build_options,
                      cache_dir=cache_dir, simulator=simulator, start=start)
        keep = not result.passed
        return result
    except SimulationError:
        raise  # its message names the log in test_dir
    except BaseException:
        keep = False  # a build or tool error (its log is kept in the build cache) or an interruption
        raise
    finally:
        if not keep:
            shutil.rmtree(test_dir, ignore_errors=True)


def _run(*, verilog, toplevel, test_module, test_dir: Path, extra_env, waves, seed, testcase, build_options,
         cache_dir, simulator, start: float) -> CocotbResult:
    test_dir.mkdir(parents=True, exist_ok=True)
    if simulator == "icarus":
        if waves is not None:
            raise ValueError("run_cocotb: waves are written by the Verilator simulations only")
        build = _build_icarus(verilog=verilog, toplevel=toplevel, directory=test_dir / "icarus_build")
    else:
        fmt = _waves_format(waves)
        options = build_options or BuildOptions()
        if options.waves != fmt:
            options = dataclasses.replace(options, waves=fmt)
        build = build_verilog(verilog=verilog, toplevel=toplevel, options=options, cache_dir=cache_dir)
        apply_verilator_env()
    results_xml = test_dir / "results.xml"
    results_json = test_dir / "cdsl_results.json"
    log = test_dir / "sim.log"
    for stale in (results_xml, results_json):
        stale.unlink(missing_ok=True)
    env = dict(extra_env or {})
    env["CDSL_RESULTS"] = str(results_json)
    if simulator == "verilator" and build.options.sim_clock:
        from cdsl.sim.drivers import CLOCK_PERIOD_NS

        env.setdefault(SIM_CLOCK_VAR, str(CLOCK_PERIOD_NS))
    test_args: list[str] = []
    waves_path = None
    if waves is not None:
        waves_path = Path(waves).resolve()
        waves_path.parent.mkdir(parents=True, exist_ok=True)
        test_args = ["--trace-file", str(waves_path)]

    runner = reaped_runner(simulator)
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=build.directory,
            test_dir=test_dir,
            results_xml=str(results_xml),
            extra_env=env,
            seed=seed,
            testcase=testcase,
            waves=waves is not None,
            test_args=test_args,
            log_file=log,
        )
    except SystemExit:
        # cocotb's runner exits when a test fails under pytest or the simulator returns non-zero;
        # the results file (if any) still says what happened.
        pass
    except RuntimeError:
        # The simulator returned non-zero (cocotb's runner raises RuntimeError): a crash, or an
        # error counted by Verilator; the results file, if written, still lists the tests.
        pass
    if not results_xml.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.is_file() else ""
        raise SimulationError(f"simulation of {toplevel!r} with {test_module!r} wrote no results; log {log}:\n{tail}")
    tests = parse_results_xml(results_xml)
    data = json.loads(results_json.read_text()) if results_json.is_file() else None
    return CocotbResult(tests=tests, build=build, results_xml=results_xml, log=log,
                        results_json=results_json, waves=waves_path,
                        seconds=time.perf_counter() - start, seed=seed, _data=data)
