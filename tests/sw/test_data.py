"""Data loading: the digits split and .npz checks."""

import re

import numpy as np
import pytest

from cdsl.errors import CdslError
from cdsl.sw import data


def test_digits_split_fixed_and_exact():
    d = data.digits(input_shape=(64,))
    assert (len(d.y_train), len(d.y_test)) == (1347, 450)
    # stratified: every class is 10% +- 1 sample of the test split
    counts = np.bincount(d.y_test.numpy(), minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46
    # x = pixel / 16: every value is k/16 with k in 0..16 (exact in ufixed<8,4>)
    k = d.x_train.numpy() * 16
    assert np.array_equal(k, np.round(k)) and k.min() == 0 and k.max() == 16
    d2 = data.digits(input_shape=(1, 8, 8))
    assert np.array_equal(d2.x_test.numpy().reshape(450, 64), d.x_test.numpy())
    assert np.array_equal(d2.y_test.numpy(), d.y_test.numpy())


def test_digits_wrong_shape():
    with pytest.raises(CdslError, match="8x8 images"):
        data.digits(input_shape=(32,))


def _save(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_npz_good_and_split(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 3, 4, 4)).astype(np.float32)
    y = np.repeat(np.arange(4), 10)
    d = data.load("d.npz", input_shape=(3, 4, 4), classes=4, base=_save(tmp_path, x=x, y=y).parent)
    assert (len(d.y_train), len(d.y_test)) == (30, 10)
    assert sorted(np.bincount(d.y_test.numpy()).tolist()) == [2, 2, 3, 3]


def test_npz_explicit_test_set(tmp_path):
    x = np.zeros((8, 5), dtype=np.int16)
    y = np.arange(8) % 2
    d = data.npz(_save(tmp_path, x=x, y=y, x_test=x[:3], y_test=y[:3]), input_shape=(5,), classes=2)
    assert len(d.y_test) == 3 and d.x_train.dtype.is_floating_point


@pytest.mark.parametrize(
    "arrays,match",
    [
        (dict(y=np.zeros(4, dtype=np.int64)), "array 'x' is missing"),
        (dict(x=np.zeros((4, 5))), "array 'y' is missing"),
        (dict(x=np.zeros((4, 6)), y=np.zeros(4, dtype=np.int64)), r"shape \[4, 6\], the model input needs \[N, 5\]"),
        (dict(x=np.zeros((4, 1, 5)), y=np.zeros(4, dtype=np.int64)), "the model input needs"),
        (dict(x=np.array([["a"] * 5] * 4), y=np.zeros(4, dtype=np.int64)), "has dtype '<U1'"),
        (dict(x=np.zeros((4, 5)), y=np.zeros(4)), "array 'y' has dtype 'float64'"),
        (dict(x=np.zeros((4, 5)), y=np.zeros(3, dtype=np.int64)), "expected \\[4\\]"),
        (dict(x=np.zeros((4, 5)), y=np.array([0, 1, 2, 3])), r"labels in 'y' span 0..3, the model has 3 classes"),
        (dict(x=np.zeros((4, 5)), y=np.array([0, -1, 2, 1])), "span -1..2"),
        (dict(x=np.full((4, 5), np.nan), y=np.array([0, 1, 2, 1])), "NaN"),
        (dict(x=np.zeros((4, 5)), y=np.array([0, 1, 2, 1]), x_test=np.zeros((2, 5))), "both x_test and y_test"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = _save(tmp_path, **arrays)
    with pytest.raises(CdslError, match=match) as info:
        data.npz(path, input_shape=(5,), classes=3)
    assert str(path) in str(info.value)


def test_npz_missing_file_and_not_npz(tmp_path):
    with pytest.raises(CdslError, match="does not exist"):
        data.npz(tmp_path / "nope.npz", input_shape=(5,), classes=3)
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(CdslError, match="cannot read"):
        data.npz(bad, input_shape=(5,), classes=3)


def _spec_with_data(tmp_path, path: str, input_type: str = "ufixed<8,4>[5]") -> str:
    spec = tmp_path / "m.cdsl"
    spec.write_text(f"model m {{\n  input x: {input_type}\n  y = dense(x, units=3) @quant(w=8, a=8)\n  output y\n}}\n"
                    f"train {{\n  epochs = 1\n  data = \"{path}\"\n}}\n")
    return str(spec)


@pytest.mark.parametrize("arrays,match", [
    (dict(x=np.full((12, 5), 20.0), y=np.arange(12) % 3), r"100% of the values of 'x' lie outside the range of the input"),
    (dict(x=np.zeros((12, 5)), y=np.r_[np.zeros(11, np.int64), 1]), "class 1 has 1 sample"),
    (dict(x=np.zeros((6, 5)), y=np.arange(6) % 3), "too few to split"),
])
def test_data_errors_point_at_the_data_line(tmp_path, capsys, arrays, match):
    from cdsl.cli import main

    _save(tmp_path, **arrays)
    spec = _spec_with_data(tmp_path, "d.npz")
    assert main(["train", spec, "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:8:3: error:" in err and "d.npz" in err and "Traceback" not in err, err
    assert re.search(match, err), err
    assert not (tmp_path / "run").exists()


def test_a_zip_bomb_is_refused_before_inflating(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_DATA_BYTES", 1000)
    path = _save(tmp_path, x=np.zeros((100, 5)), y=np.zeros(100, dtype=np.int64))
    with pytest.raises(CdslError, match="uncompressed, more than"):
        data.npz(path, input_shape=(5,), classes=3)


def test_pickled_objects_are_refused(tmp_path):
    path = _save(tmp_path, x=np.array([object()] * 5, dtype=object), y=np.zeros(5, dtype=np.int64))
    with pytest.raises(CdslError, match="cannot read"):
        data.npz(path, input_shape=(5,), classes=3)
