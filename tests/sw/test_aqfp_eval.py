"""`cdsl eval` on a run with an AQFP layer: the accuracy-against-T table is the golden model at those settings,
the deterministic-sign and group-size rows come from retrained networks, the energy section applies the
overrides; bad options are user errors."""

import pytest

from cdsl.cli import main
from cdsl.contract.golden import predict, quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.dsl import parse
from cdsl.errors import CdslError
from cdsl.sw.evaluate import evaluate_run
from cdsl.sw.train import load_data, save_run, train
from tb.aqfp_cases import TINY_AQFP, TINY_BNN


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    text = TINY_BNN.format(binary=TINY_AQFP)
    folder = tmp_path_factory.mktemp("aqfp") / "run"
    save_run(train(parse(text), float_twin=False), folder, spec_text=text)
    return folder


def test_sections(run):
    options = {"aqfp_t": "0,2", "aqfp_seeds": "2", "aqfp_groups": "4,64", "aqfp_energy": "cooling=1000"}
    res = evaluate_run(run, options=options)
    by_title = {s.title.split(":")[1].split("(")[0].strip(): s for s in res["sections"]}
    t_table = by_title["integer-model accuracy against the bitstream length T"]
    im = IntModel.load(run / "intmodel")
    data = load_data(parse(TINY_BNN.format(binary=TINY_AQFP)))
    x = quantize_input(im, data.x_test)

    def rate(**setting):
        return float((predict(im, x, settings={'b': setting}) == data.y_test).double().mean())

    def acc(**setting):
        return f"{100 * rate(**setting):.2f}%"

    assert [row[:2] for row in t_table.rows] == [("0 (no noise)", acc(T=0)), (2, acc(T=2))]
    assert t_table.rows[1][2] == f"{100 * (rate(T=2, seed=1) + rate(T=2, seed=2)) / 2:.2f}%"
    det = by_title["stochastic accumulation against the deterministic sign"]
    assert det.rows[0][1] == acc() and det.rows[1][1] == acc(T=0)
    groups = by_title["accuracy against the crossbar group size"]
    assert [row[0] for row in groups.rows] == [4] and "skipped" in groups.notes[-1] and "64" in groups.notes[-1]
    assert groups.rows[0][1] == 5  # 20 inputs in groups of 4
    energy = by_title["energy per inference of the AQFP layers against a CMOS estimate of the same layers"]
    assert energy.columns == ("per inference", "b") and "cooling=1000" in energy.notes[0]
    assert dict((r[0], r[1]) for r in energy.rows)["AQFP + cooling (x1000)"]


@pytest.mark.parametrize("option,value,message", [("aqfp_t", "1,x", "whole numbers"),
                                                  ("aqfp_seeds", "2,3", "one number"),
                                                  ("aqfp_energy", "heat=3", "one of")])
def test_bad_options_are_user_errors(run, option, value, message):
    with pytest.raises(CdslError, match=message):
        evaluate_run(run, options={option: value, "aqfp_groups": "none"})


def test_energy_overrides_that_leave_no_aqfp_energy_are_refused_or_shown_as_no_ratio(run, capsys):
    """e_jj=0 (or cooling=0) made `cdsl eval` divide by zero (a traceback): refused as bad input, exit 2; gates of
    0 junctions (still a valid model) leave the ratio undefined, shown as '-'."""
    assert main(["eval", str(run), "--aqfp-t", "1", "--aqfp-seeds", "1", "--aqfp-groups", "none",
                 "--aqfp-energy", "e_jj=0"]) == 2
    err = capsys.readouterr().err
    assert "--aqfp-energy: energy parameter 'e_jj' must be above 0" in err and "Traceback" not in err
    res = evaluate_run(run, options={"aqfp_t": "1", "aqfp_seeds": "1", "aqfp_groups": "none",
                                     "aqfp_energy": "jj_buffer=0,jj_splitter=0,jj_majority=0"})
    (energy,) = [s for s in res["sections"] if "against a CMOS estimate" in s.title]
    rows = dict((r[0], r[1]) for r in energy.rows)
    assert rows["CMOS / AQFP"] == "-" and rows["CMOS / (AQFP + cooling)"] == "-"


def test_cli_prints_the_sections(run, capsys):
    assert main(["eval", str(run), "--aqfp-t", "4", "--aqfp-seeds", "1", "--aqfp-groups", "none"]) == 0
    out = capsys.readouterr().out
    assert "against the bitstream length T" in out and "CMOS / (AQFP + cooling)" in out and "deterministic BNN" in out


CONV_BNN = """
model tiny_conv {
  input x: ufixed<8,4>[1, 8, 8]
  c = conv2d(x, channels=3, kernel=3, stride=2) @quant(w=8, a=8)
  s = sign(c)
  b = conv2d(s, channels=4, kernel=2) @binary @aqfp(group=2, T=4, seed=3)
  s2 = sign(b)
  f = flatten(s2)
  y = dense(f, units=10) @quant(w=8, a=8)
  output y
}
train { epochs = 1 }
"""


def test_group_sizes_beyond_a_convs_channels_are_skipped(tmp_path):
    """A conv's crossbar group holds input channels at one kernel position: b's 3 channels x 4 positions (fan-in
    12) take groups of at most 3, so the group table retrains 1 and 3 and skips 4 and 12 (which would only be
    groups of all 3 channels), and each row's groups/output is per position: 3 x 4 and 1 x 4."""
    folder = tmp_path / "run"
    save_run(train(parse(CONV_BNN), float_twin=False), folder, spec_text=CONV_BNN)
    res = evaluate_run(folder, options={"aqfp_t": "0", "aqfp_seeds": "1", "aqfp_groups": "1,3,4,12"})
    (groups,) = [s for s in res["sections"] if "crossbar group size" in s.title]
    assert [(row[0], row[1]) for row in groups.rows] == [(1, 12), (3, 4)]
    assert "skipped (larger than the 3 input channels" in groups.notes[-1] and groups.notes[-1].endswith("4, 12")
    assert [row[4] for row in groups.rows] == ["1", "1.12"]  # gray * (1 + atten * (n - 1)), defaults 1, 1/16
