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
from cdsl.errors import CdslError, Source
from cdsl.sw.data import Dataset
from cdsl.sw.evaluations import EvalContext, sections
from cdsl.sw.build import build
from cdsl.contract.intmodel import IntModel
from cdsl.sw.train import accuracy, golden_eval, load_data


def load_run(run_dir: str | Path) -> tuple[Source, "ir.Spec", "Dataset"]:
    """The spec a run folder was trained from and its data set (the same split training used)."""
    from cdsl.dsl import parse_source

    run = Path(run_dir)
    spec_path = run / "spec.cdsl"
    if not spec_path.is_file():
        raise CdslError(f"{str(spec_path)!r} is missing: not a run folder made by `cdsl train`", name=str(run))
    source = Source(str(spec_path), spec_path.read_text(encoding="utf-8"))
    spec = parse_source(source)
    data_path = None
    metrics_path = run / "metrics.json"
    if spec.train.data != "digits" and metrics_path.is_file():
        # the data path as training resolved it (the spec copy in the run folder has moved)
        data_path = json.loads(metrics_path.read_text()).get("data", {}).get("name")
    try:
        if data_path is not None:
            spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, data=data_path))
        dataset = load_data(spec, base=run)
    except CdslError as err:
        raise err.located(source) from None
    return source, spec, dataset


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
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    net.load_state_dict(ckpt["net"])
    net.set_compress(None)
    net.eval()
    out = {"test_samples": len(dataset.y_test), "float_acc": None, "golden_acc": None, "agreement": None}
    fnet = None
    if ckpt.get("float_net") is not None:
        fnet = build(spec)
        fnet.load_state_dict(ckpt["float_net"])
        fnet.set_compress(())
        out["float_acc"] = accuracy(fnet, dataset.x_test, dataset.y_test)
    out["compressed_acc"] = accuracy(net, dataset.x_test, dataset.y_test)
    intmodel = None
    if (im_path / "manifest.json").is_file():
        intmodel = IntModel.load(im_path)
        g = golden_eval(intmodel, net, dataset)
        out["golden_acc"], out["agreement"] = g["golden_acc"], g["agreement"]
    ctx = EvalContext(run_dir=run, spec=spec, net=net, float_net=fnet,
                      intmodel=intmodel, dataset=dataset, options=dict(options or {}))
    out["sections"] = sections(ctx)
    return out
