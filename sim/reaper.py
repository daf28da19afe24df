"""Run a command so that it dies with cdsl: `python -m cdsl.sim.reaper PARENT_PID -- CMD ARGS...`.

Verilator builds (make and its C++ compilers) and simulations are child processes of cdsl. When
cdsl is interrupted they get the terminal's SIGINT, but when it is killed (SIGKILL, SIGTERM to its
pid alone) they would run on as orphans. The reaper stands between: it puts the command in a process
group of its own, asks the kernel to signal it when its parent (cdsl) dies (`prctl(PR_SET_PDEATHSIG)`),
and then, or on SIGTERM, SIGINT or SIGHUP, kills the whole group before exiting. It exits with the
command's status otherwise. Linux only (elsewhere it runs the command and waits, nothing more).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m cdsl.sim.reaper PARENT_PID -- CMD ARGS...", file=sys.stderr)
        return 2
    parent, cmd = int(argv[0]), argv[2:]
    child: subprocess.Popen | None = None

    def reap(signum, frame):
        if child is not None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, reap)
    _die_with_parent(parent)
    child = subprocess.Popen(cmd, start_new_session=True)  # its own process group (and session)
    while True:
        try:
            return child.wait()
        except InterruptedError:
            continue


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
