"""Evaluate a run folder: float, fake-quant and integer golden accuracy, and their agreement.

Everything is recomputed from the folder (spec.cdsl, checkpoint.pt, intmodel/), not read
back from metrics.json: float accuracy is the float twin trained with the same seed and
schedule and every annotation off; compressed accuracy is the trained network with all its
annotations active (fake quantization, pruning masks); golden accuracy is the exported
IntModel run by `cdsl.sw.golden`; agreement is the share of test samples where the golden
prediction equals the fake-quant prediction.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from cdsl.errors import CdslError, Source
from cdsl.sw.build import build
from cdsl.sw.intmodel import IntModel
from cdsl.sw.train import accuracy, golden_eval, load_data


def evaluate_run(run_dir: str | Path) -> dict:
    """{"float_acc", "compressed_acc", "golden_acc", "agreement", "test_samples"} (None where absent)."""
    from cdsl.dsl import parse_source

    run = Path(run_dir)
    spec_path, ckpt_path, im_path = run / "spec.cdsl", run / "checkpoint.pt", run / "intmodel"
    for p in (spec_path, ckpt_path):
        if not p.is_file():
            raise CdslError(f"{str(p)!r} is missing: not a run folder made by `cdsl train`", name=str(run))
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
        net = build(spec)
    except CdslError as err:
        raise err.located(source) from None
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    net.load_state_dict(ckpt["net"])
    net.set_compress(None)
    net.eval()
    out = {"test_samples": len(dataset.y_test), "float_acc": None, "golden_acc": None, "agreement": None}
    if ckpt.get("float_net") is not None:
        fnet = build(spec)
        fnet.load_state_dict(ckpt["float_net"])
        fnet.set_compress(())
        out["float_acc"] = accuracy(fnet, dataset.x_test, dataset.y_test)
    out["compressed_acc"] = accuracy(net, dataset.x_test, dataset.y_test)
    if (im_path / "manifest.json").is_file():
        intmodel = IntModel.load(im_path)
        g = golden_eval(intmodel, net, dataset)
        out["golden_acc"], out["agreement"] = g["golden_acc"], g["agreement"]
    return out
