"""Shared input handling of the integer references: torch int64 in, torch int64 out.

numpy integer arrays are accepted too; the result then comes back as a numpy int64 array.
"""

from __future__ import annotations

import numpy as np
import torch


def as_int64(x, *, what: str) -> torch.Tensor:
    """`x` (torch or numpy, integer dtype) as a torch int64 tensor; floats are refused."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.integer) and x.dtype != np.bool_:
            raise TypeError(f"{what} must hold integers, got numpy dtype {x.dtype!r}")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() or x.is_complex():
            raise TypeError(f"{what} must hold integers, got torch dtype {x.dtype!r}")
        return x.to(torch.int64)
    raise TypeError(f"{what} must be a torch tensor or numpy array, got {type(x).__name__!r}")


def like_input(result: torch.Tensor, original):
    """Return numpy if the caller passed numpy, torch otherwise."""
    if isinstance(original, np.ndarray):
        return result.numpy()
    return result
