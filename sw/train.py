"""Training with compression in the loop, and the run folder.

`train(spec)` trains two networks from the same seed and initial weights:
- the float twin: the same stages and learning-rate schedule with every annotation off;
  its test accuracy is the run's "float accuracy";
- the compressed network: each stage activates its `compress` annotations (quant, prune);
  quantization scales are calibrated on a fixed batch when quant first becomes active,
  pruning masks are recomputed at the start of every epoch in which prune is active.
Then the compressed network is exported (`cdsl.sw.export`) and the integer golden model is
evaluated on the test split.

Determinism: torch.manual_seed(seed) before each build, torch.use_deterministic_algorithms,
a seeded generator for the data order (one permutation per epoch), CPU only. Same seed, same
thread count -> the same checkpoint and IntModel.

Learning rate: the stage's lr (or the train section's), times a cosine decay over the whole
training, per step. Weight decay does not apply to quantization scales.

`epochs` overrides the train section's total; stages are then rescaled in proportion
(floor, the remainder to the last stage). Prune start/end are absolute epochs, clipped to
the total.

Run folder: spec.cdsl (the spec text), checkpoint.pt ({"net": state_dict, "float_net":
state_dict, "seed", "epochs"}), metrics.json, intmodel/ (IntModel.save).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.sw import data as data_mod
from cdsl.sw.build import Net, build
from cdsl.sw.export import export
from cdsl.contract.golden import argmax_lowest, golden, quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.sw.layers import Scales

CALIBRATION_SAMPLES = 512
SCALE_LR_FACTOR = 1.0  # learning-rate factor of the quantization scales


@dataclass(frozen=True)
class StagePlan:
    name: str
    epochs: int
    lr: float
    compress: tuple[str, ...] | None  # None: all annotations


@dataclass
class TrainResult:
    net: Net
    float_net: Net | None
    intmodel: IntModel | None
    data: data_mod.Dataset
    metrics: dict = field(default_factory=dict)


def plan_stages(train_cfg: ir.Train, epochs: int | None = None) -> list[StagePlan]:
    """The stages to run; `epochs` (if given) rescales them to that total."""
    if epochs is not None and epochs < 1:
        raise CdslError(f"--epochs must be at least 1, got {epochs!r}")
    stages = list(train_cfg.stages) or [ir.Stage("train", train_cfg.epochs)]
    plans = [StagePlan(s.name, s.epochs, s.lr if s.lr is not None else train_cfg.lr, s.compress) for s in stages]
    if epochs is None:
        return plans
    if epochs < len(plans):
        names = ", ".join(p.name for p in plans)
        raise CdslError(f"--epochs {epochs} is fewer than the {len(plans)} stages ({names}): every stage needs an epoch",
                        expected=f"--epochs {len(plans)} or more")
    total = sum(p.epochs for p in plans)
    scaled = [max(1, math.floor(p.epochs * epochs / total)) for p in plans]  # every stage keeps an epoch
    while sum(scaled) > epochs:  # the floors of 1 overshot: take from the longest stage
        scaled[scaled.index(max(scaled))] -= 1
    scaled[-1] += epochs - sum(scaled)
    return [StagePlan(p.name, e, p.lr, p.compress) for p, e in zip(plans, scaled)]


def check_prune_windows(model: ir.Model, epochs: int) -> None:
    """Every @prune start and end lies within the training's `epochs` (which --epochs may have changed)."""
    for lay in model.layers:
        p = lay.annotations.prune
        if p is not None and (p.start >= epochs or (p.end is not None and p.end > epochs)):
            raise CdslError(f"@prune(start={p.start}" + (f", end={p.end}" if p.end is not None else "")
                            + f") does not fit training of {epochs} epochs (set by --epochs)", span=p.span,
                            expected="a larger --epochs, or prune epochs within it")


def output_classes(model: ir.Model) -> int:
    """The class count: every output is a vector of scores for the same classes (several outputs are
    heads trained on the same labels, e.g. early exits; accuracy is reported per output)."""
    counts = set()
    for name in model.outputs:
        shape = model.shape_of(name)
        if len(shape) != 1:
            where = model.layer(name).span if any(lay.name == name for lay in model.layers) else model.span
            raise CdslError(f"the output {name!r} must be a vector of class scores, its shape is {list(shape)!r}",
                            span=where, expected=f"flatten({name}) as the output, or a dense layer after it")
        counts.add(shape[0])
    if len(counts) != 1:
        raise CdslError(f"the outputs of {model.name!r} score different numbers of classes ({sorted(counts)}); "
                        "training gives every output the same labels", span=model.span)
    if len(model.inputs) != 1:
        raise CdslError(f"training needs exactly one input, model {model.name!r} has {len(model.inputs)}",
                        span=model.span)
    return counts.pop()


def first_output(out) -> torch.Tensor:
    """The first output's scores (a model with several outputs returns a dict in output order)."""
    return next(iter(out.values())) if isinstance(out, dict) else out


def classification_loss(out, y: torch.Tensor) -> torch.Tensor:
    """Cross entropy, averaged over the outputs when there are several."""
    outs = list(out.values()) if isinstance(out, dict) else [out]
    return sum(F.cross_entropy(o, y) for o in outs) / len(outs)


def load_data(spec: ir.Spec, *, base: Path | None = None) -> data_mod.Dataset:
    classes = output_classes(spec.model)
    inp = spec.model.inputs[0]
    # errors point at the `data = ...` line; a spec without one (the bundled digits by default) has no such
    # line, and its data errors (the model's classes or input against the digits) point at the model
    span = spec.train.data_span if spec.train.data_span.line else spec.model.span
    return data_mod.load(spec.train.data, input_shape=tuple(inp.shape), classes=classes, base=base, dtype=inp.dtype,
                         span=span)


def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_fake(net, x) == y).double().mean())


@torch.no_grad()
def predict_fake(net: torch.nn.Module, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    was = net.training
    net.eval()
    preds = [argmax_lowest(first_output(net(x[i : i + batch]))) for i in range(0, len(x), batch)]
    net.train(was)
    return torch.cat(preds)


def _optimizer(net: Net, cfg: ir.Train) -> torch.optim.Optimizer:
    scales = [p for n, p in net.named_parameters() if n.endswith("scale") and p.requires_grad]
    others = [p for n, p in net.named_parameters() if not n.endswith("scale") and p.requires_grad]
    groups = [{"params": others, "weight_decay": cfg.weight_decay, "lr_factor": 1.0},
              {"params": scales, "weight_decay": 0.0, "lr_factor": SCALE_LR_FACTOR}]
    if cfg.optimizer is ir.Optimizer.ADAM:
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer is ir.Optimizer.ADAMW:
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9)


def fit(
    spec: ir.Spec, dataset: data_mod.Dataset, plans: list[StagePlan], *, seed: int, compress: bool,
    log: Callable[[str], None] | None = None, tag: str = "", scales: Scales = Scales(),
) -> tuple[Net, list[dict]]:
    """Build and train one network; compress=False makes the float twin."""
    torch.manual_seed(seed)
    net = build(spec, scales=scales)
    cfg = spec.train
    opt = _optimizer(net, cfg)
    gen = torch.Generator().manual_seed(seed)
    x_tr, y_tr = dataset.x_train, dataset.y_train
    n = len(x_tr)
    total_epochs = sum(p.epochs for p in plans)
    steps_per_epoch = math.ceil(n / cfg.batch)
    total_steps = total_epochs * steps_per_epoch
    history = []
    present = {k for lay in spec.model.layers for k in lay.annotations.present()}
    epoch = 0
    step = 0
    for plan in plans:
        net.set_compress(plan.compress if compress else ())
        if net.needs_calibration():
            net.calibrate(x_tr[:CALIBRATION_SAMPLES])
        for _ in range(plan.epochs):
            net.start_epoch(epoch, total_epochs)
            net.train()
            perm = torch.randperm(n, generator=gen)
            loss_sum, correct = 0.0, 0
            for i in range(0, n, cfg.batch):
                idx = perm[i : i + cfg.batch]
                lr = plan.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
                for g in opt.param_groups:
                    g["lr"] = lr * g["lr_factor"]
                loss, out = net.objective(x_tr[idx], y_tr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                net.apply_masks()
                step += 1
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((first_output(out).detach().argmax(dim=1) == y_tr[idx]).sum())
            rec = {
                "stage": plan.name, "epoch": epoch + 1, "loss": loss_sum / n, "train_acc": correct / n,
                "test_acc": accuracy(net, dataset.x_test, dataset.y_test), "compress": list(net.active),
            }
            notes = net.epoch_notes()
            if notes:
                rec["notes"] = notes
            history.append(rec)
            if log is not None:
                acting = [k for k in net.active if k in present]
                log(
                    f"{tag}epoch {epoch + 1:3d}/{total_epochs} [{plan.name}{' ' + '+'.join(acting) if acting else ''}]"
                    f"  loss {rec['loss']:.4f}  train {100 * rec['train_acc']:.2f}%  test {100 * rec['test_acc']:.2f}%"
                    + "".join(f"  {note}" for note in notes)
                )
            epoch += 1
    net.set_compress(None if compress else ())
    net.apply_masks()
    net.eval()
    return net, history


def golden_eval(intmodel: IntModel, net: Net, dataset: data_mod.Dataset) -> dict:
    """Golden accuracy (of the first output, and of each output), fake-quant accuracy, and golden/fake-quant
    prediction agreement on the test split."""
    x_int = quantize_input(intmodel, dataset.x_test)
    outs = golden(intmodel, x_int)
    outs = outs if isinstance(outs, dict) else {intmodel.outputs[0]: outs}
    y = dataset.y_test
    per_output = {name: float((argmax_lowest(o) == y).double().mean()) for name, o in outs.items()}
    gold = argmax_lowest(first_output(outs))
    fake = predict_fake(net, dataset.x_test)
    return {
        "golden_acc": per_output[intmodel.outputs[0]],
        "golden_acc_per_output": per_output,
        "compressed_acc": float((fake == y).double().mean()),
        "agreement": float((gold == fake).double().mean()),
    }


def sparsity(net: Net) -> dict[str, float]:
    """Share of exactly-zero weights per pruned layer (all its weight tensors together)."""
    from cdsl.sw.layers import WeightedParams

    out = {}
    for name, block in net.blocks.items():
        mods = [m for m in block.modules() if isinstance(m, WeightedParams) and m.prune is not None]
        if mods:
            zeros = sum(int((m.masked_weight().detach() == 0).sum()) for m in mods)
            out[name] = zeros / sum(m.weight.numel() for m in mods)
    return out


def train(
    spec: ir.Spec, *, epochs: int | None = None, seed: int | None = None, base: Path | None = None,
    float_twin: bool = True, log: Callable[[str], None] | None = None, scales: Scales = Scales(),
    threads: int | None = 1, dataset: data_mod.Dataset | None = None,
) -> TrainResult:
    """Train the float twin (optional) and the compressed network, export, evaluate.

    threads: torch CPU threads while training (restored after); None leaves torch's setting.
    One is the default: these models are too small to gain from more, and two threads on a busy
    two-core machine run about 3x slower.
    dataset: the spec's data set when the caller has loaded it already (`load_data`).
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(spec, epochs=epochs, seed=seed, base=base, float_twin=float_twin, log=log, scales=scales,
                      dataset=dataset)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(was_threads)


def _train(spec, *, epochs, seed, base, float_twin, log, scales, dataset) -> TrainResult:
    seed = spec.train.seed if seed is None else seed
    build(spec)  # reject unsupported annotations before loading data
    if dataset is None:
        dataset = load_data(spec, base=base)
    plans = plan_stages(spec.train, epochs)
    check_prune_windows(spec.model, sum(p.epochs for p in plans))
    metrics: dict = {
        "model": spec.model.name, "seed": seed, "epochs": sum(p.epochs for p in plans),
        "stages": [{"name": p.name, "epochs": p.epochs, "lr": p.lr, "compress": None if p.compress is None else list(p.compress)} for p in plans],
        "data": {"name": dataset.name, "train": len(dataset.y_train), "test": len(dataset.y_test)},
    }
    float_net = None
    if float_twin:
        t0 = time.perf_counter()
        float_net, fhist = fit(spec, dataset, plans, seed=seed, compress=False, log=log, tag="float      ", scales=scales)
        metrics["float"] = {"test_acc": accuracy(float_net, dataset.x_test, dataset.y_test),
                            "seconds": time.perf_counter() - t0, "history": fhist}
    t0 = time.perf_counter()
    net, hist = fit(spec, dataset, plans, seed=seed, compress=True, log=log, tag="compressed ", scales=scales)
    metrics["compressed"] = {"test_acc": accuracy(net, dataset.x_test, dataset.y_test),
                             "seconds": time.perf_counter() - t0, "history": hist, "sparsity": sparsity(net)}
    intmodel = None
    try:
        intmodel = export(net)
    except CdslError as err:
        metrics["export_error"] = err.message
    if intmodel is not None:
        metrics["golden"] = golden_eval(intmodel, net, dataset)
    return TrainResult(net, float_net, intmodel, dataset, metrics)


def save_run(result: TrainResult, run_dir: Path, *, spec_text: str) -> Path:
    """spec.cdsl, checkpoint.pt, intmodel/ and metrics.json, whose `run` entry seals the others: the
    digest of the spec's model section, the checkpoint's SHA-256 and the integer model's digest
    (`cdsl.sw.evaluate.load_run` and `load_checkpoint` refuse a folder whose files disagree with it)."""
    import hashlib

    from cdsl.dsl import model_digest, parse_source
    from cdsl.errors import Source

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.cdsl").write_text(spec_text)
    ckpt = {
        "net": result.net.state_dict(),
        "float_net": None if result.float_net is None else result.float_net.state_dict(),
        "seed": result.metrics["seed"],
        "epochs": result.metrics["epochs"],
    }
    torch.save(ckpt, run_dir / "checkpoint.pt")
    if result.intmodel is not None:
        result.intmodel.save(run_dir / "intmodel")
    metrics = dict(result.metrics)
    metrics["run"] = {
        "model_sha256": model_digest(parse_source(Source(str(run_dir / "spec.cdsl"), spec_text))),
        "checkpoint_sha256": hashlib.sha256((run_dir / "checkpoint.pt").read_bytes()).hexdigest(),
        "intmodel_digest": None if result.intmodel is None else result.intmodel.digest(),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return run_dir
