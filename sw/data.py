"""Training data: the bundled 8x8 digits or a user's `.npz`.

Digits: `sklearn.datasets.load_digits()` (no download), x = pixel / 16 (pixels are 0..16, so
`ufixed<8,4>` holds every value exactly), labels 0..9. The split is fixed: stratified,
25% test, `train_test_split(..., test_size=0.25, random_state=0, stratify=y)`, which gives
1347 training and 450 test samples. x is reshaped to the model input shape ([64] or [1, 8, 8]).

A `.npz` holds arrays `x` (float or integer, [N, *input shape]) and `y` (integer labels [N]
in 0..classes-1); a relative path is relative to the spec's folder. It is split the same way
(stratified, so every class needs at least two samples). Optional arrays `x_test`, `y_test` give an
explicit test set instead. Checked, with errors at the spec's `data = ...` line: the file exists
and is an .npz of at most MAX_DATA_BYTES (uncompressed, checked before inflating), no pickled
objects, the arrays' dtypes and shapes, finite values, labels in range, every value of x within the
range of the model input's type (a value outside would be clipped: an error, with the share and the
range), and enough samples per class for the split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cdsl.dsl.ir import FixedType
from cdsl.errors import CdslError, Span

TEST_SIZE = 0.25
SPLIT_SEED = 0
MAX_DATA_BYTES = 2 << 30


@dataclass(frozen=True)
class Dataset:
    x_train: torch.Tensor  # float32 [N, *shape]
    y_train: torch.Tensor  # int64 [N]
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str


def load(data: str, *, input_shape: tuple[int, ...], classes: int, base: Path | None = None,
         dtype: FixedType | None = None, span: Span | None = None) -> Dataset:
    """`data` is "digits" or a path to an .npz (relative to `base`, the spec's folder). `dtype`: the
    model input's type (values outside its range are an error); `span`: where errors point (the
    spec's `data = ...`)."""
    try:
        if data == "digits":
            dataset = digits(input_shape=input_shape, classes=classes)
        else:
            path = Path(data)
            if not path.is_absolute() and base is not None:
                path = base / path
            dataset = npz(path, input_shape=input_shape, classes=classes)
        if dtype is not None:
            for name, x in (("x", dataset.x_train), ("x_test", dataset.x_test)):
                check_range(x.numpy(), dtype, name=name, where=dataset.name)
    except CdslError as err:
        if span is None or err.span is not None:
            raise
        raise CdslError(f"{err.name}: {err.message}" if err.name else err.message, span=span,
                        expected=err.expected) from None
    return dataset


def check_range(x: np.ndarray, dtype: FixedType, *, name: str, where: str) -> None:
    """Every value of x is representable by `dtype` after rounding to its grid (nothing would be clipped)."""
    step = 2.0 ** -dtype.frac
    lo, hi = (dtype.qmin - 0.5) * step, (dtype.qmax + 0.5) * step
    outside = (x < lo) | (x >= hi)
    if outside.any():
        kind = "fixed" if dtype.signed else "ufixed"
        raise CdslError(
            f"{100 * outside.mean():.3g}% of the values of {name!r} lie outside the range of the input type "
            f"{kind}<{dtype.bits},{dtype.frac}> ({dtype.qmin * step:g}..{dtype.qmax * step:g}; found "
            f"{float(x.min()):g}..{float(x.max()):g}): they would be clipped", name=where,
            expected="data scaled into the input type's range, or a wider input type")


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
    import zipfile

    where = str(path)
    if not path.is_file():
        raise CdslError(f"data file {where!r} does not exist", name=where, expected="an .npz with arrays x, y")
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(info.file_size for info in zf.infolist())
        if total > MAX_DATA_BYTES:
            raise CdslError(f"{where!r} holds {total / 2**30:.1f} GiB uncompressed, more than the "
                            f"{MAX_DATA_BYTES / 2**30:.0f} GiB a data file may hold", name=where)
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except CdslError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # not a zip, corrupt, pickled
        raise CdslError(f"cannot read {where!r} as .npz: {exc}", name=where, expected="an .npz with arrays x, y") from None
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
    present = counts[counts > 0]
    n_test = int(np.ceil(TEST_SIZE * len(y)))
    if present.min() < 2:
        rare = int(np.flatnonzero(counts == present.min())[0])
        raise CdslError(f"class {rare} has {present.min()} sample: the stratified split needs at least 2 per class",
                        name=name, expected="at least 2 samples of every class present, or x_test/y_test arrays")
    if n_test < len(present) or len(y) - n_test < len(present):
        raise CdslError(f"{len(y)} samples are too few to split into train and test with each of the "
                        f"{len(present)} classes on both sides", name=name,
                        expected=f"at least {int(np.ceil(len(present) / TEST_SIZE))} samples, or x_test/y_test arrays")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    return Dataset(
        torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(np.ascontiguousarray(y_tr)),
        torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(np.ascontiguousarray(y_te)), name,
    )
