"""Evaluate a run folder: float, fake-quant and integer golden accuracy, and their agreement.

Everything is recomputed from the folder (spec.cdsl, checkpoint.pt, intmodel/), not read
back from metrics.json: float accuracy is the float twin trained with the same seed and
schedule and every annotation off; compressed accuracy is the trained network with all its
annotations active (fake quantization, pruning masks); golden accuracy is the exported
IntModel run by `cdsl.contract.golden`; agreement is the share of test samples where the golden
prediction equals the fake-quant prediction.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from cdsl.dsl import ir
from pydantic import BaseModel, ValidationError

from cdsl.contract.schema import first_error
from cdsl.errors import CdslError, Source
from cdsl.sw.data import Dataset
from cdsl.sw.evaluations import EvalContext, sections
from cdsl.sw.build import build
from cdsl.contract.intmodel import IntModel
from cdsl.sw.train import accuracy, golden_eval, load_data


def load_run(run_dir: str | Path, *, with_data: bool = True) -> tuple[Source, "ir.Spec", "Dataset | None"]:
    """The spec a run folder was trained from and its data set (the same split training used; None
    without `with_data`)."""
    from cdsl.dsl import load_source, parse_source

    run = Path(run_dir)
    spec_path = run / "spec.cdsl"
    if not spec_path.is_file():
        raise CdslError(f"{str(spec_path)!r} is missing: not a run folder made by `cdsl train`", name=str(run))
    source = load_source(str(spec_path))
    spec = parse_source(source)
    if not with_data:
        return source, spec, None
    data_path = None
    metrics_path = run / "metrics.json"
    if spec.train.data != "digits" and metrics_path.is_file():
        # the data path as training resolved it (the spec copy in the run folder has moved)
        data_path = read_metrics(metrics_path).data.name
    try:
        if data_path is not None:
            spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, data=data_path))
        dataset = load_data(spec, base=run)
    except CdslError as err:
        raise err.located(source) from None
    return source, spec, dataset


class _MetricsData(BaseModel):
    name: str


class _Metrics(BaseModel):
    """What cdsl reads back from metrics.json (the rest is for people and scripts)."""

    data: _MetricsData


def read_metrics(path: Path) -> _Metrics:
    try:
        return _Metrics.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as err:
        detail = first_error(err) if isinstance(err, ValidationError) else str(err)
        raise CdslError(f"{path}: {detail}", name=str(path), expected="metrics.json as `cdsl train` writes it") from None


def intmodel_mismatch(spec: "ir.Spec", intmodel: IntModel) -> str | None:
    """Why the integer model was not exported from this spec (names, inputs, shapes), or None."""
    model = spec.model
    if [(i.name, tuple(i.shape)) for i in model.inputs] != [(i.name, tuple(i.shape)) for i in intmodel.inputs]:
        return "its inputs differ from the spec's"
    if tuple(model.outputs) != tuple(intmodel.outputs):
        return f"its outputs {list(intmodel.outputs)} differ from the spec's {list(model.outputs)}"
    theirs = {lay.name: (tuple(lay.inputs), tuple(lay.out_shape)) for lay in intmodel.layers}
    for lay in model.layers:
        if lay.name not in theirs:
            return f"it has no layer {lay.name!r}"
        if theirs[lay.name] != (tuple(lay.inputs), tuple(lay.shape)):
            return f"its layer {lay.name!r} reads other inputs or has another shape than in the spec"
    if len(theirs) != len(model.layers):
        return "it has layers the spec does not have"
    return None


def load_checkpoint(path: Path, spec: "ir.Spec") -> dict:
    """checkpoint.pt as `cdsl train` writes it, matching the spec's networks; CdslError naming the file otherwise."""
    import pickle
    import zipfile

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise CdslError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0][:120]})", name=str(path),
                        expected="checkpoint.pt as `cdsl train` writes it (train again)") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("net"), dict):
        raise CdslError(f"{path}: net: expected the trained network's state", name=str(path))
    return ckpt


def _load_state(net, state: dict, path: Path, what: str) -> None:
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as err:
        first = str(err).splitlines()[0][:160]
        raise CdslError(f"{path}: {what}: does not match spec.cdsl ({first}); was the spec edited after training?",
                        name=str(path)) from None


def evaluate_run(run_dir: str | Path, *, options: dict[str, str | None] | None = None) -> dict:
    """{"float_acc", "compressed_acc", "golden_acc", "agreement", "test_samples"} (None where absent),
    and "sections": the evaluation sections of the spec's annotations (`cdsl.sw.evaluations`), given
    their `options`."""
    run = Path(run_dir)
    ckpt_path, im_path = run / "checkpoint.pt", run / "intmodel"
    source, spec, dataset = load_run(run)
    if not ckpt_path.is_file():
        raise CdslError(f"{str(ckpt_path)!r} is missing: not a run folder made by `cdsl train`", name=str(run))
    try:
        net = build(spec)
    except CdslError as err:
        raise err.located(source) from None
    ckpt = load_checkpoint(ckpt_path, spec)
    _load_state(net, ckpt["net"], ckpt_path, "net")
    net.set_compress(None)
    net.eval()
    out = {"test_samples": len(dataset.y_test), "float_acc": None, "golden_acc": None, "agreement": None}
    fnet = None
    if ckpt.get("float_net") is not None:
        fnet = build(spec)
        _load_state(fnet, ckpt["float_net"], ckpt_path, "float_net")
        fnet.set_compress(())
        out["float_acc"] = accuracy(fnet, dataset.x_test, dataset.y_test)
    out["compressed_acc"] = accuracy(net, dataset.x_test, dataset.y_test)
    intmodel = None
    if (im_path / "manifest.json").is_file():
        intmodel = IntModel.load(im_path)
        mismatch = intmodel_mismatch(spec, intmodel)
        if mismatch:
            raise CdslError(f"{im_path}: {mismatch}: it was not exported from spec.cdsl", name=str(im_path))
        g = golden_eval(intmodel, net, dataset)
        out["golden_acc"], out["agreement"] = g["golden_acc"], g["agreement"]
    ctx = EvalContext(run_dir=run, spec=spec, net=net, float_net=fnet,
                      intmodel=intmodel, dataset=dataset, options=dict(options or {}))
    out["sections"] = sections(ctx)
    return out
