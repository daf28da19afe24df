"""An interrupted or failed command leaves the run folder as it was: SIGINT and SIGKILL during training,
the Verilator build and the simulation of `cdsl run`; two commands writing one folder do not mix."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cdsl.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlp.cdsl"
pytestmark = pytest.mark.slow


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Command:
    """`cdsl ARGS` in a subprocess, its output collected line by line."""

    def __init__(self, *args: str, env: dict | None = None):
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "cdsl", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {}),
                                                                                "COLUMNS": "200"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared:\n{''.join(self.lines)[-2000:]}")

    def finish(self, timeout: float = 600) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run folder (trained, generated, verified on 50 samples) to interrupt a new run over."""
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["run", str(EXAMPLE), "-o", str(run), "--epochs", "2", "--n", "50"]) == 0
    return run


@pytest.mark.parametrize("sig,phase", [
    (signal.SIGINT, "epoch   1/3"),  # training
    (signal.SIGKILL, "epoch   2/3"),
    (signal.SIGKILL, "3/3 verify"),  # Verilator build (an empty build cache) then simulation
    (signal.SIGINT, "3/3 verify"),
])
def test_an_interrupted_run_leaves_the_previous_folder_intact(trained, tmp_path, sig, phase):
    before = snapshot(trained)
    env = {"CDSL_CACHE": str(tmp_path / "cache")} if sig == signal.SIGKILL and phase.startswith("3/3") else {}
    cmd = Command("run", str(EXAMPLE), "-o", str(trained), "--epochs", "3", "--n", "450", env=env)
    cmd.wait_for(phase)
    time.sleep(0.5)
    cmd.proc.send_signal(sig)
    code = cmd.finish()
    assert code != 0, "the command was not interrupted"
    assert snapshot(trained) == before, "the run folder changed"
    if sig == signal.SIGINT:
        assert "interrupted" in "".join(cmd.lines)
        assert not list(trained.parent.glob(".run.tmp-*")), "a staging folder was left behind"
    # whatever a killed command left is cleaned up by the next one that writes the folder
    assert main(["train", str(EXAMPLE), "-o", str(trained), "--epochs", "2", "--no-float"]) == 0
    assert not list(trained.parent.glob(".run.tmp-*"))
    assert not (trained / "rtl").exists() and not (trained / "verify.json").exists()  # a new model, not verified yet


def test_two_commands_never_write_one_folder_at_once(tmp_path, capsys):
    run = tmp_path / "run"
    first = Command("train", str(EXAMPLE), "-o", str(run), "--epochs", "3")
    first.wait_for("epoch   1/3")
    assert main(["train", str(EXAMPLE), "-o", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "is being written by another cdsl command" in err and "Traceback" not in err
    assert first.finish() == 0
    assert (run / "intmodel" / "manifest.json").is_file()


def test_a_folder_that_is_not_a_run_folder_is_not_replaced(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    assert main(["train", str(EXAMPLE), "-o", str(mine), "--epochs", "2"]) == 2
    assert "is not a cdsl run folder" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "keep me"
