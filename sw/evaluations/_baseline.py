"""The conventionally trained baseline of a run, for evaluation sections that compare a method against it.

The baseline of annotation A is the run's spec with every `@A` removed (and A dropped from the stages'
`compress` lists), trained with the run's seed and epochs. It is a run folder of its own,
`RUN/baselines/no-A/` (spec.cdsl, checkpoint.pt, metrics.json, intmodel/), so `cdsl gen` and
`cdsl verify` work on it too. It is reused when that folder holds the same spec text, seed and epochs;
otherwise it is trained (and the folder replaced). `Baseline.how` says which.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from cdsl.contract.intmodel import IntModel
from cdsl.dsl import ir, print_spec
from cdsl.errors import CdslError
from cdsl.sw.evaluations import EvalContext
from cdsl.sw.train import save_run, train


@dataclasses.dataclass(frozen=True)
class Baseline:
    run_dir: Path
    spec: ir.Spec
    intmodel: IntModel
    metrics: dict
    how: str


def without(spec: ir.Spec, annotation: str) -> ir.Spec:
    """`spec` with `@annotation` removed from every layer and from the stages' compress lists."""
    layers = tuple(dataclasses.replace(lay, annotations=dataclasses.replace(lay.annotations, **{annotation: None}))
                   for lay in spec.model.layers)
    stages = tuple(st if st.compress is None else dataclasses.replace(
        st, compress=tuple(n for n in st.compress if n != annotation)) for st in spec.train.stages)
    return ir.Spec(dataclasses.replace(spec.model, layers=layers), dataclasses.replace(spec.train, stages=stages))


def run_settings(run_dir: Path, spec: ir.Spec) -> tuple[int, int | None]:
    """(seed, epochs) the run was trained with (its metrics.json; the spec's seed otherwise)."""
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    return int(metrics.get("seed", spec.train.seed)), metrics.get("epochs")


def baseline(ctx: EvalContext, annotation: str) -> Baseline:
    """The baseline without `@annotation` of the run in `ctx`: found in its folder, or trained there."""
    spec = without(ctx.spec, annotation)
    text = print_spec(spec)
    seed, epochs = run_settings(ctx.run_dir, ctx.spec)
    folder = ctx.run_dir / "baselines" / f"no-{annotation}"
    found = (folder / "spec.cdsl").is_file() and (folder / "intmodel" / "manifest.json").is_file() \
        and (folder / "spec.cdsl").read_text() == text \
        and run_settings(folder, spec) == (seed, epochs)
    if found:
        how = f"found in {folder} (the spec without @{annotation}, seed {seed}, {epochs} epochs)"
    else:
        t0 = time.perf_counter()
        shutil.rmtree(folder, ignore_errors=True)  # an older baseline's rtl/ would not match the new model
        if ctx.log is not None:
            ctx.log(f"training the baseline without @{annotation} into {folder} (seed {seed}, {epochs} epochs)")
        result = train(spec, epochs=epochs, seed=seed, base=ctx.run_dir, float_twin=False, log=ctx.log)
        if result.intmodel is None:
            raise CdslError(f"the baseline without @{annotation} has no integer model: "
                            f"{result.metrics.get('export_error')}", name=str(folder))
        save_run(result, folder, spec_text=text)
        how = (f"trained now into {folder}: the spec without @{annotation}, seed {seed}, {epochs} epochs, "
               f"{time.perf_counter() - t0:.1f} s")
    return Baseline(run_dir=folder, spec=spec, intmodel=IntModel.load(folder / "intmodel"),
                    metrics=json.loads((folder / "metrics.json").read_text()), how=how)
