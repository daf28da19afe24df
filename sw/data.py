"""Training data: the bundled 8x8 digits or a user's `.npz`.

Digits: `sklearn.datasets.load_digits()` (no download), x = pixel / 16 (pixels are 0..16, so
`ufixed<8,4>` holds every value exactly), labels 0..9. The split is fixed: stratified,
25% test, `train_test_split(..., test_size=0.25, random_state=0, stratify=y)`, which gives
1347 training and 450 test samples. x is reshaped to the model input shape ([64] or [1, 8, 8]).

A `.npz` holds arrays `x` (float or integer, [N, *input shape]) and `y` (integer labels [N]
in 0..classes-1); it is split the same way (stratified when every class has at least two
samples). Optional arrays `x_test`, `y_test` give an explicit test set instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cdsl.errors import CdslError

TEST_SIZE = 0.25
SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    x_train: torch.Tensor  # float32 [N, *shape]
    y_train: torch.Tensor  # int64 [N]
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str


def load(data: str, *, input_shape: tuple[int, ...], classes: int, base: Path | None = None) -> Dataset:
    """`data` is "digits" or a path to an .npz (relative to `base`, the spec's folder)."""
    if data == "digits":
        return digits(input_shape=input_shape, classes=classes)
    path = Path(data)
    if not path.is_absolute() and base is not None:
        path = base / path
    return npz(path, input_shape=input_shape, classes=classes)


def digits(*, input_shape: tuple[int, ...], classes: int = 10) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    if math.prod(input_shape) != 64:
        raise CdslError(
            f"the digits data are 8x8 images, but the model input has shape {list(input_shape)!r}",
            expected="input shape [64] or [1, 8, 8]",
            name="digits",
        )
    if classes < 10:
        raise CdslError(f"the digits data have 10 classes, but the model output has {classes!r}", name="digits")
    x = x.reshape(-1, *input_shape)
    return _split(x, y, name="digits")


def npz(path: Path, *, input_shape: tuple[int, ...], classes: int) -> Dataset:
    where = str(path)
    if not path.is_file():
        raise CdslError(f"data file {where!r} does not exist", name=where, expected="an .npz with arrays x, y")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # not a zip / corrupt
        raise CdslError(f"cannot read {where!r} as .npz: {exc}", name=where) from None
    for key in ("x", "y"):
        if key not in arrays:
            have = ", ".join(sorted(arrays)) or "none"
            raise CdslError(f"array {key!r} is missing (arrays present: {have})", name=where, expected="arrays x, y")
    x, y = _check_xy(arrays["x"], arrays["y"], "x", "y", where, input_shape, classes)
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise CdslError("give both x_test and y_test, or neither", name=where)
    if "x_test" in arrays:
        xt, yt = _check_xy(arrays["x_test"], arrays["y_test"], "x_test", "y_test", where, input_shape, classes)
        return Dataset(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(xt), torch.from_numpy(yt), where)
    return _split(x, y, name=where)


def _check_xy(x, y, xname, yname, where, input_shape, classes):
    shape_txt = "[N, " + ", ".join(map(str, input_shape)) + "]"
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise CdslError(f"array {xname!r} has dtype {str(x.dtype)!r}", name=where, expected="a float or integer array")
    if tuple(x.shape[1:]) != tuple(input_shape) or x.ndim != len(input_shape) + 1:
        raise CdslError(
            f"array {xname!r} has shape {list(x.shape)!r}, the model input needs {shape_txt}", name=where,
            expected=f"{xname} of shape {shape_txt}",
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise CdslError(f"array {yname!r} has dtype {str(y.dtype)!r}", name=where, expected="integer class labels")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise CdslError(
            f"array {yname!r} has shape {list(y.shape)!r}, expected [{x.shape[0]}] (one label per row of {xname})",
            name=where,
        )
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise CdslError(
            f"labels in {yname!r} span {int(y.min())}..{int(y.max())}, the model has {classes} classes",
            name=where, expected=f"labels in 0..{classes - 1}",
        )
    if not np.all(np.isfinite(x)):
        raise CdslError(f"array {xname!r} holds NaN or infinite values", name=where)
    if x.shape[0] == 0:
        raise CdslError(f"array {xname!r} is empty", name=where)
    return x.astype(np.float32), y.astype(np.int64)


def _split(x: np.ndarray, y: np.ndarray, *, name: str) -> Dataset:
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    if len(y) < 4:
        raise CdslError(f"{len(y)} samples are too few to split into train and test", name=name)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=stratify)
    return Dataset(
        torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(np.ascontiguousarray(y_tr)),
        torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(np.ascontiguousarray(y_te)), name,
    )
