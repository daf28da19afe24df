"""Evaluate a run folder: float, fake-quant and integer golden accuracy, and their agreement.

Everything is recomputed from the folder (spec.cdsl, checkpoint.pt, intmodel/), not read
back from metrics.json, whose `run` entry only seals which model section, checkpoint and integer
model belong together (a folder whose files disagree with it is refused): float accuracy is the float twin trained with the same seed and
schedule and every annotation off; compressed accuracy is the trained network with all its
annotations active (fake quantization, pruning masks); golden accuracy is the exported
IntModel run by `cdsl.contract.golden`; agreement is the share of test samples where the golden
prediction equals the fake-quant prediction.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from typing import Annotated, Callable

import torch
from pydantic import BaseModel, StringConstraints, ValidationError

from cdsl.dsl import ir

from cdsl.contract.schema import first_error
from cdsl.errors import CdslError, Source
from cdsl.sw.data import Dataset
from cdsl.sw.evaluations import EvalContext, check_options, sections
from cdsl.sw.build import build
from cdsl.contract.intmodel import IntModel
from cdsl.sw.train import accuracy, golden_eval, load_data


def load_run(run_dir: str | Path, *, with_data: bool = True) -> tuple[Source, "ir.Spec", "Dataset | None"]:
    """The spec a run folder was trained from (its model section as metrics.json sealed it) and its
    data set (the same split training used; None without `with_data`)."""
    from cdsl.dsl import load_source, model_digest, parse_source

    run = Path(run_dir)
    spec_path = run / "spec.cdsl"
    if not spec_path.is_file():
        raise CdslError(f"{str(spec_path)!r} is missing: not a run folder made by `cdsl train`", name=str(run))
    source = load_source(str(spec_path))
    spec = parse_source(source)
    metrics = read_metrics(run / "metrics.json")
    if model_digest(spec) != metrics.run.model_sha256:
        raise CdslError(f"{spec_path}: the model was edited after training (its canonical form is not the one "
                        "metrics.json recorded)", name=str(spec_path),
                        expected="the spec this run was trained from (train the edited spec into a new run folder)")
    if not with_data:
        return source, spec, None
    try:
        if spec.train.data != "digits":
            # the data path as training resolved it (the spec copy in the run folder has moved)
            spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, data=metrics.data.name))
        dataset = load_data(spec, base=run)
    except CdslError as err:
        raise err.located(source) from None
    return source, spec, dataset


Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class _MetricsData(BaseModel):
    name: str


class _RunSeal(BaseModel):
    model_sha256: Sha256
    checkpoint_sha256: Sha256
    intmodel_digest: Sha256 | None


class _Metrics(BaseModel):
    """What cdsl reads back from metrics.json (the rest is for people and scripts)."""

    data: _MetricsData
    run: _RunSeal


def read_metrics(path: Path) -> _Metrics:
    if not path.is_file():
        raise CdslError(f"{path}: missing: not a complete run folder (train again)", name=str(path))
    try:
        return _Metrics.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as err:
        detail = first_error(err) if isinstance(err, ValidationError) else str(err)
        raise CdslError(f"{path}: {detail}", name=str(path), expected="metrics.json as `cdsl train` writes it") from None


def check_run_intmodel(run_dir: Path, intmodel: IntModel) -> None:
    """The run folder's intmodel/ is the one its training exported (metrics.json's seal)."""
    sealed = read_metrics(Path(run_dir) / "metrics.json").run.intmodel_digest
    if sealed != intmodel.digest():
        path = Path(run_dir) / "intmodel"
        raise CdslError(f"{path}: not the integer model this run exported (its digest is not the one metrics.json "
                        "recorded)", name=str(path), expected="the intmodel/ `cdsl train` wrote into this folder")


def load_checkpoint(path: Path, spec: "ir.Spec") -> dict:
    """checkpoint.pt as `cdsl train` wrote it (its SHA-256 sealed in metrics.json beside it), matching
    the spec's networks; CdslError naming the file otherwise."""
    import hashlib

    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CdslError(f"{path}: cannot be read ({err.strerror})", name=str(path)) from None
    if hashlib.sha256(raw).hexdigest() != read_metrics(path.parent / "metrics.json").run.checkpoint_sha256:
        raise CdslError(f"{path}: changed after training (its SHA-256 is not the one metrics.json recorded)",
                        name=str(path), expected="checkpoint.pt as `cdsl train` wrote it (train again)")
    try:
        ckpt = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises anything on a damaged file
        raise CdslError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0][:120] if str(err) else type(err).__name__})",
                        name=str(path), expected="checkpoint.pt as `cdsl train` writes it (train again)") from None
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


def evaluate_run(run_dir: str | Path, *, options: dict[str, str | None] | None = None,
                 log: Callable[[str], None] | None = None) -> dict:
    """{"float_acc", "compressed_acc", "golden_acc", "agreement", "test_samples"} (None where absent;
    accuracies of the first output), "golden_acc_per_output" (with an integer model: {output: accuracy}),
    and "sections": the evaluation sections of the spec's annotations (`cdsl.sw.evaluations`), given
    their `options`."""
    run = Path(run_dir)
    ckpt_path, im_path = run / "checkpoint.pt", run / "intmodel"
    source, spec, dataset = load_run(run)
    if not ckpt_path.is_file():
        raise CdslError(f"{str(ckpt_path)!r} is missing: not a run folder made by `cdsl train`", name=str(run))
    check_options(spec, dict(options or {}))  # before any work
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
        check_run_intmodel(run, intmodel)
        g = golden_eval(intmodel, net, dataset)
        out["golden_acc"], out["agreement"] = g["golden_acc"], g["agreement"]
        out["golden_acc_per_output"] = g["golden_acc_per_output"]
    ctx = EvalContext(run_dir=run, spec=spec, net=net, float_net=fnet,
                      intmodel=intmodel, dataset=dataset, options=dict(options or {}), log=log)
    out["sections"] = sections(ctx)
    return out
