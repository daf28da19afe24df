"""`cdsl check` and `cdsl fmt` through `cdsl.cli.main`, and one run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


from cdsl.cli import main
from dsl_helpers import EXAMPLES, MLP


def test_check_examples(capsys):
    code = main(["check", *map(str, EXAMPLES)])
    out, err = capsys.readouterr()
    for name in ("digits_mlp", "digits_cnn", "digits_bnn", "digits_vit"):
        assert name in out
    assert "bitserial(8 lanes)" in out and "cim 64x32 x 2 tiles" in out and "aqfp(group 16, T=16)" in out
    assert "compression 5.2x" in out  # the MLP: 206848 / 39424 bits
    # every example is valid; those some stage cannot take yet say which and why (exit 1), located
    beyond = out.count("valid, but not every stage takes it")
    assert out.count(": ok (train yes, export yes, hardware yes)") + beyond == len(EXAMPLES)
    assert "mlp.cdsl: ok" in out.replace("\n", " ") and code == (1 if beyond else 0)
    assert err.count("error:") >= beyond and "Traceback" not in err


def test_check_reports_error_and_continues(tmp_path, capsys):
    bad = tmp_path / "bad.cdsl"
    bad.write_text(MLP.replace("units=64", "unit=64"))
    good = tmp_path / "good.cdsl"
    good.write_text(MLP.replace("y = dense(r1, units=10)", "y = dense(r1, units=10) @quant(w=8, a=8)"))
    assert main(["check", str(bad), str(good)]) == 2
    out, err = capsys.readouterr()
    assert f"{bad}:3:17: error: unknown parameter 'unit' for dense; expected one of: units, bias" in err
    assert "^^^^" in err
    assert f"{good}: ok" in out


def test_check_holds_outputs_to_what_training_takes(tmp_path, capsys):
    """An output that is not a vector of class scores (a conv's [10, 1, 1]) passed `cdsl check` as 'ok'
    and was refused only by `cdsl run`; check now names it under [train], at the output's layer, as
    `run` does before training."""
    spec = tmp_path / "img.cdsl"
    spec.write_text("model img {\n  input x: ufixed<8,4>[1, 8, 8]\n"
                    "  c = conv2d(x, channels=10, kernel=8) @quant(w=4, a=8)\n  output c\n}\n")
    assert main(["check", str(spec)]) == 1
    out, err = capsys.readouterr()
    assert f"[train] {spec}:3:3: error: the output 'c' must be a vector of class scores, its shape is [10, 1, 1]" in err
    assert "valid, but not every stage takes it (train no" in out
    assert main(["train", str(spec), "-o", str(tmp_path / "run")]) == 2
    assert f"{spec}:3:3: error: the output 'c' must be a vector of class scores" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_check_missing_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "none.cdsl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_fmt_check_clean(capsys):
    assert main(["fmt", "--check", *map(str, EXAMPLES)]) == 0


def test_fmt_check_lists_files_and_writes_nothing(tmp_path, capsys):
    messy = tmp_path / "messy.cdsl"
    text = MLP.replace("units=64", "units = 64")
    messy.write_text(text)
    assert main(["fmt", "--check", str(messy)]) == 1
    assert f"would reformat {messy}" in capsys.readouterr().out
    assert messy.read_text() == text


def test_fmt_rewrites_in_place(tmp_path, capsys):
    messy = tmp_path / "messy.cdsl"
    messy.write_text(MLP.replace("units=64", "units = 64") + "# end\n")
    messy.chmod(0o640)
    assert main(["fmt", str(messy)]) == 0
    assert messy.read_text() == MLP + "# end\n"
    assert (messy.stat().st_mode & 0o777) == 0o640
    assert main(["fmt", "--check", str(messy)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["messy.cdsl"]  # no temporary left behind


def test_fmt_error_leaves_file_untouched(tmp_path, capsys):
    bad = tmp_path / "bad.cdsl"
    text = MLP.replace("relu(h1)", "relu(h1")
    bad.write_text(text)
    assert main(["fmt", str(bad)]) == 2
    assert "unclosed '('" in capsys.readouterr().err
    assert bad.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["bad.cdsl"]


def test_subprocess_exit_codes_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.cdsl"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    empty = tmp_path / "empty.cdsl"
    empty.write_text("")
    env = dict(os.environ, COLUMNS="200")
    cases = [
        (["check", str(EXAMPLES[0].parent / "mlp.cdsl")], 0),
        (["check", str(bad)], 2),
        (["check", str(empty)], 2),
        (["check", str(tmp_path)], 2),
        (["fmt", "--check", str(bad)], 2),
    ]
    for args, code in cases:
        proc = subprocess.run([sys.executable, "-m", "cdsl", *args], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
        if code == 2:
            assert "error:" in proc.stderr
