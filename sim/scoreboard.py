"""Scoreboard: expected vs actual, per sample and element, with a report a human can act on.

Works in the cocotb test process and in the host process alike (no cocotb import):

    sb = Scoreboard(name="digits-mlp", seed=seed)
    for s, (exp, got) in enumerate(zip(golden, rtl)):
        sb.compare(exp, got, sample=s, port="fc2")      # records; returns True when equal
    sb.raise_if_failed()          # AssertionError with the first mismatch (sample, port, element, values, seed)
    print(sb.summary())           # "100/100 samples bit-exact" or the first mismatch

`compare` accepts any sequences of ints (lists, tuples, numpy arrays of any shape: they are
compared flattened, in C order, and the element index is reported flat and, for arrays, as an
index tuple). A length difference is a mismatch at the first missing element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["Scoreboard", "Mismatch", "ScoreboardError"]


class ScoreboardError(AssertionError):
    """Raised by `Scoreboard.raise_if_failed` / `check`; its message names the first mismatch."""


_MISSING = "<missing>"


@dataclass(frozen=True)
class Mismatch:
    sample: int
    port: str
    element: int
    index: tuple[int, ...] | None
    expected: Any
    actual: Any
    seed: int | None
    name: str = ""
    mismatching_elements: int = 1

    def __str__(self) -> str:
        where = f"[{self.element}]" if self.index is None else f"[{self.element}] (index {self.index})"
        head = f"{self.name}: " if self.name else ""
        return (f"{head}mismatch in sample {self.sample}, port {self.port!r}, element {where}: "
                f"expected {self.expected}, got {self.actual} "
                f"({self.mismatching_elements} element(s) differ in this sample; seed {self.seed})")


def _flatten(values) -> tuple[list, tuple[int, ...] | None]:
    shape = getattr(values, "shape", None)
    if shape is not None and hasattr(values, "ravel"):
        return [int(v) for v in values.ravel().tolist()], tuple(int(d) for d in shape)
    return [int(v) for v in values], None


def _unravel(flat: int, shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if not shape or len(shape) < 2:
        return None
    index = []
    for dim in reversed(shape):
        index.append(flat % dim)
        flat //= dim
    return tuple(reversed(index))


class Scoreboard:
    """Counts samples and keeps the first mismatches (up to `keep`)."""

    def __init__(self, *, name: str = "", seed: int | None = None, keep: int = 10):
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"Scoreboard: keep must be a positive integer, not {keep!r}")
        self.name = name
        self.seed = seed
        self.keep = keep
        self.samples = 0
        self.failed_samples = 0
        self.mismatches: list[Mismatch] = []

    def compare(self, expected: Sequence[int], actual: Sequence[int], *, sample: int, port: str = "o") -> bool:
        """Record one sample's comparison on `port`; True when every element is equal."""
        exp, shape = _flatten(expected)
        act, _ = _flatten(actual)
        self.samples += 1
        n = max(len(exp), len(act))
        bad = [k for k in range(n)
               if (exp[k] if k < len(exp) else _MISSING) != (act[k] if k < len(act) else _MISSING)]
        if not bad:
            return True
        self.failed_samples += 1
        if len(self.mismatches) < self.keep:
            k = bad[0]
            self.mismatches.append(Mismatch(
                sample=sample, port=port, element=k, index=_unravel(k, shape),
                expected=exp[k] if k < len(exp) else _MISSING,
                actual=act[k] if k < len(act) else _MISSING,
                seed=self.seed, name=self.name, mismatching_elements=len(bad)))
        return False

    def check(self, expected: Sequence[int], actual: Sequence[int], *, sample: int, port: str = "o") -> None:
        """`compare`, raising `ScoreboardError` at once on a mismatch."""
        if not self.compare(expected, actual, sample=sample, port=port):
            raise ScoreboardError(str(self.mismatches[-1]) if self.mismatches else "mismatch")

    @property
    def passed(self) -> bool:
        return self.failed_samples == 0

    @property
    def first_mismatch(self) -> Mismatch | None:
        return self.mismatches[0] if self.mismatches else None

    def summary(self) -> str:
        if self.passed:
            return f"{self.samples}/{self.samples} samples bit-exact"
        return (f"{self.samples - self.failed_samples}/{self.samples} samples bit-exact; "
                f"first: {self.first_mismatch}")

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise ScoreboardError(self.summary())
