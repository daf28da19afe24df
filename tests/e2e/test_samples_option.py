"""Options held to what they can reach: `--n N` beyond the test split is refused before training (by every
command that trains a spec first); `cdsl check` reports each folding target of a design as reached or
not; a runtime setting is given once.

`cdsl run SPEC --n 60` on a data set whose test split holds 20 samples used to train, export and
generate, then fail in its verify step and throw the whole run folder away. The split is known as
soon as the data is loaded, so the option is held to it then: one line naming the option, exit 2,
no training, no run folder.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from cdsl.cli import main

SPEC = """\
model few {
  input x: uint3[1, 1, 1]
  c = conv2d(x, channels=1, kernel=1) @quant(w=2, a=2) @bitserial(lanes=1)
  r = relu(c)
  f = flatten(r)
  y = dense(f, units=2) @quant(w=2, a=2, per=channel)
  output y
}
train {
  data = "few.npz"
  epochs = 1
}
"""


@pytest.fixture
def spec(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 8, size=(80, 1, 1, 1))
    np.savez(tmp_path / "few.npz", x=x, y=(x[:, 0, 0, 0] >= 4).astype(np.int64))  # test split: 20 samples
    path = tmp_path / "few.cdsl"
    path.write_text(SPEC)
    return path


@pytest.mark.parametrize("command", ["run", "verify"])
def test_n_beyond_the_test_split_is_refused_before_training(spec, tmp_path, monkeypatch, command):
    from cdsl.sw import train as train_mod

    def no_training(*args, **kwargs):
        raise AssertionError("trained although --n could not be met")

    monkeypatch.setattr(train_mod, "fit", no_training)
    run = tmp_path / "run"
    argv = [command, str(spec), "--n", "60"] + (["-o", str(run)] if command == "run" else ["--run-dir", str(run)])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    lines = err.getvalue().strip().splitlines()
    assert rc == 2, err.getvalue()
    assert lines == [f"cdsl {command}: error: --n 60: the test split has 20 samples"], lines
    assert not run.exists()


def test_check_of_a_folded_design_names_each_target_as_reached_or_not(spec, tmp_path):
    """`cdsl check RUN_DIR` on a design generated for two targets, one met and one out of reach, says
    which (it used to print both as "not reached")."""
    run = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(spec), "-o", str(run), "--no-float"]) == 0
        assert main(["gen", str(run), "--target-ii", "1000", "--target-cycles", "1"]) == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["check", str(run)]) == 0
    text = " ".join(out.getvalue().split())
    assert "--target-ii 1000: reached, II " in text, text
    assert "--target-cycles 1 is out of reach: " in text, text
    assert "not reached" not in text, text


@pytest.mark.parametrize("command", ["sim", "verify"])
def test_a_runtime_setting_given_twice_is_refused(tmp_path, command):
    """`--precision c2=3 --set c2.precision=2` (or the same option twice) used to keep whichever came
    last in the parser's order, silently; now one line names both."""
    for twice in (["--precision", "c2=3", "--set", "c2.precision=2"], ["--precision", "c2=3", "--precision", "c2=2"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main([command, str(tmp_path / "no-run"), "--n", "1", *twice])
        lines = err.getvalue().strip().splitlines()
        assert rc == 2 and len(lines) == 1, err.getvalue()
        assert "c2.precision is already set by --precision c2=3" in lines[0], lines
