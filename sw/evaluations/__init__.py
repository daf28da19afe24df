"""Evaluation sections: what `cdsl eval` reports for an annotation beyond the accuracy table.

A block whose evaluation needs more (accuracy under CIM noise draws, against the bitstream length
of an AQFP layer, at each runtime precision of a truncation-ready layer, MACs with and without a
token selector, ...) registers, in its own module of this package:

    @register_evaluation("trunc", options={"precisions": "runtime precisions to evaluate, e.g. 8,6,4,2"})
    def truncation(ctx: EvalContext) -> list[Section]:
        ...

It runs when some layer of the run's spec carries the annotation. `options` become `cdsl eval`
options (`--precisions 8,6,4,2`); their values (strings, None when not given) are in `ctx.options`.
Every module here is imported on first use.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.plugins import import_all


@dataclass(frozen=True)
class Section:
    """One table of `cdsl eval`: rows of plain values (str, int, float), notes printed under it."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalContext:
    run_dir: Path
    spec: ir.Spec
    net: Any  # the trained compressed network (cdsl.sw.build.Net), all annotations active, eval mode
    float_net: Any | None  # the float twin, when the run has one
    intmodel: Any | None  # the exported IntModel, when there is one
    dataset: Any  # cdsl.sw.data.Dataset (the run's split)
    options: dict[str, str | None] = field(default_factory=dict)
    log: Callable[[str], None] | None = None  # progress of long work (a baseline's training)


@dataclass(frozen=True)
class _Evaluation:
    annotation: str
    fn: Callable[[EvalContext], list[Section]]
    options: dict[str, str]


_EVALUATIONS: list[_Evaluation] = []


def register_evaluation(annotation: str, *, options: dict[str, str] | None = None) -> Callable:
    def add(fn: Callable[[EvalContext], list[Section]]) -> Callable:
        if annotation not in ir.ANNOTATION_NAMES:
            raise ValueError(f"no annotation @{annotation}")
        if not any(e.fn.__qualname__ == fn.__qualname__ and e.annotation == annotation for e in _EVALUATIONS):
            _EVALUATIONS.append(_Evaluation(annotation, fn, dict(options or {})))
        return fn

    return add


def evaluations() -> list[_Evaluation]:
    import_all(sys.modules[__name__])
    return list(_EVALUATIONS)


def cli_options() -> dict[str, str]:
    """Every option an evaluation declares: name -> help."""
    return {name: help_ for e in evaluations() for name, help_ in e.options.items()}


def _present(spec: ir.Spec) -> set[str]:
    """The annotations some layer of the spec carries."""
    return {n for lay in spec.model.layers for n in lay.annotations.present()}


def check_options(spec: ir.Spec, options: dict[str, str | None]) -> None:
    """An option given for an evaluation whose annotation no layer of the spec carries is refused (it
    would be ignored): CdslError naming the option and the annotation."""
    present = _present(spec)
    for e in evaluations():
        given = [name for name in e.options if options.get(name) is not None]
        if given and e.annotation not in present:
            raise CdslError(f"--{given[0].replace('_', '-')} does not apply: no layer of the model has @{e.annotation}",
                            name="cdsl eval")


def sections(ctx: EvalContext) -> list[Section]:
    """The sections of every evaluation whose annotation some layer of the spec carries."""
    check_options(ctx.spec, ctx.options)
    present = _present(ctx.spec)
    out: list[Section] = []
    for e in evaluations():
        if e.annotation in present:
            out += e.fn(ctx)
    return out
