"""Issue 12's acceptance numbers, measured and printed: TruncQuant and MSQ on the digits MLP.

    .venv/bin/python benchmarks/bits.py [--seeds 0,1,2,3,4] [--out runs/bench-bits]

TruncQuant: for every seed, examples/trunc.cdsl (set [8, 6, 4, 2]), the same with the set [8, 6, 4],
and the conventional model (the spec without @trunc), integer golden accuracy at 8, 6, 4 and 2 bits
(every @trunc layer truncated, the whole test split); then the example at seed 0 through `cdsl run`
and `cdsl verify --precision h1=P --precision h2=P` for each P: bit-exactness and simulated cycles.

MSQ: for every seed, examples/msq.cdsl against plain QAT (the spec without @bitsparse): widths per
layer, average weight bits, golden accuracy. Each network of seed 0 is also trained (`fit`) in a fresh
process (spawned), which reports its wall and CPU time, trainable parameters and peak resident memory
(the high-water mark reset before training, so also the peak over the RSS of the interpreter, torch
and the data: Linux only); and both networks through `cdsl verify` for the simulated cycles.

Training is deterministic for one machine and thread count (one thread here), not across machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import re
import statistics
import time
from pathlib import Path

import torch

from cdsl.cli import main as cdsl
from cdsl.contract.golden import predict, quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.dsl import ir, parse_file
from cdsl.sw.evaluations._baseline import without
from cdsl.sw.build import build
from cdsl.sw.train import fit, load_data, plan_stages, train

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PRECISIONS = (8, 6, 4, 2)
MSQ_LAYERS = ("h1", "h2", "y")


def accuracy(intmodel: IntModel, data, settings=None) -> float:
    x = quantize_input(intmodel, data.x_test)
    return 100 * float((predict(intmodel, x, settings=settings) == data.y_test).double().mean())


def with_trunc_set(spec: ir.Spec, bits: tuple[int, ...]) -> ir.Spec:
    """`spec` with every @trunc set replaced by `bits`."""
    layers = tuple(lay if lay.annotations.trunc is None else dataclasses.replace(
        lay, annotations=dataclasses.replace(lay.annotations, trunc=ir.Trunc(bits))) for lay in spec.model.layers)
    return dataclasses.replace(spec, model=dataclasses.replace(spec.model, layers=layers))


def truncation_accuracies(intmodel: IntModel, data) -> dict[int, float]:
    return {p: accuracy(intmodel, data, {"h1": {"precision": p}, "h2": {"precision": p}}) for p in PRECISIONS}


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}")
    cells = [header] + [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)))


def bench_trunc(seeds: list[int], out: Path) -> None:
    spec = parse_file(EXAMPLES / "trunc.cdsl")
    variants = {"TruncQuant [8,6,4,2]": spec, "TruncQuant [8,6,4]": with_trunc_set(spec, (8, 6, 4)),
                "conventional": without(spec, "trunc")}
    data = load_data(spec)
    acc = {name: [] for name in variants}
    for seed in seeds:
        for name, s in variants.items():
            acc[name].append(truncation_accuracies(train(s, seed=seed, float_twin=False).intmodel, data))
    rows = [[name, stat] + [f(v[p] for v in acc[name]) for p in PRECISIONS]
            for name in variants for stat, f in (("mean", statistics.fmean), ("min", min))]
    table(f"TruncQuant: integer golden accuracy (%) at each runtime precision of h1 and h2, seeds {seeds}",
          ["model", "over seeds"] + [f"{p} bits" for p in PRECISIONS], rows)
    margins = [a[4] - b[4] for a, b in zip(acc["TruncQuant [8,6,4,2]"], acc["conventional"])]
    drops = [a[8] - a[4] for a in acc["TruncQuant [8,6,4,2]"]]
    print(f"  4-bit margin over conventional, per seed: {[round(m, 2) for m in margins]}; "
          f"own 8-bit minus 4-bit: {[round(d, 2) for d in drops]}")

    run = out / "trunc"
    assert cdsl(["run", str(EXAMPLES / "trunc.cdsl"), "-o", str(run)]) == 0
    rows = []
    for p in PRECISIONS:
        assert cdsl(["verify", str(run), "--precision", f"h1={p}", "--precision", f"h2={p}"]) == 0
        v = json.loads((run / "verify.json").read_text())
        rows.append([p, f"{v['bit_exact']}/{v['samples']}", int(v["cycles_simulated_mean"]), v["cycles_predicted"],
                     100 * v["rtl_accuracy"]])
    full = rows[0][2]
    table("TruncQuant RTL (examples/trunc.cdsl, seed 0), cdsl verify on the whole test split",
          ["precision", "bit-exact", "simulated cycles", "predicted", "RTL accuracy %"],
          rows + [["4 vs 8", "", f"{rows[2][2] / full:.3f}x", "", ""]])


def _status_kib(key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _train_in_fresh_process(spec_path: str, strip: str | None, seed: int, queue) -> None:
    """Child: train one network (`fit`, one thread) and report its time, its memory and what it reached.

    Memory: the resident set's high-water mark is reset just before training (Linux: "5" into
    /proc/self/clear_refs), so the peak is the training's, over the RSS of the interpreter, torch and data.
    """
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    spec = parse_file(spec_path)
    spec = without(spec, strip) if strip else spec
    dataset, plans = load_data(spec), plan_stages(spec.train)
    build(spec)  # imports every plug-in before the measurement
    Path("/proc/self/clear_refs").write_text("5")
    rss = _status_kib("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    net, _ = fit(spec, dataset, plans, seed=seed, compress=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_kib("VmHWM")
    queue.put({"wall": wall, "cpu": cpu, "peak_mib": peak / 1024, "growth_mib": (peak - rss) / 1024,
               "trainable": sum(p.numel() for p in net.parameters() if p.requires_grad)})


def measured_training(strip: str | None, seed: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_train_in_fresh_process, args=(str(EXAMPLES / "msq.cdsl"), strip, seed, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def bench_msq(seeds: list[int], out: Path) -> None:
    spec = parse_file(EXAMPLES / "msq.cdsl")
    plain = without(spec, "bitsparse")
    data = load_data(spec)
    rows = []
    for seed in seeds:
        im_msq, im_plain = (train(s, seed=seed, float_twin=False).intmodel for s in (spec, plain))
        pays = [im_msq.layer(n).payload for n in MSQ_LAYERS]
        average = sum(p.w_bits * p.weight.size for p in pays) / sum(p.weight.size for p in pays)
        a_msq, a_plain = accuracy(im_msq, data), accuracy(im_plain, data)
        rows.append([seed, " ".join(f"{n}:{p.w_bits}" for n, p in zip(MSQ_LAYERS, pays)), average, a_msq, a_plain,
                     a_msq - a_plain])
    table(f"MSQ: widths and integer golden accuracy against plain 8-bit QAT, seeds {seeds}",
          ["seed", "bits per layer", "average bits", "MSQ %", "plain QAT %", "difference"], rows)
    print(f"  mean: average bits {statistics.fmean(r[2] for r in rows):.2f}, "
          f"accuracy difference {statistics.fmean(r[5] for r in rows):+.2f} points")

    costs = {"MSQ": measured_training(None, seeds[0]), "plain QAT": measured_training("bitsparse", seeds[0])}
    table(f"MSQ training cost against plain QAT (seed {seeds[0]}, each in a fresh process, one thread)",
          ["", "trainable parameters", "wall s", "CPU s", "peak RSS MiB", "peak over RSS before MiB"],
          [[name, c["trainable"], c["wall"], c["cpu"], c["peak_mib"], c["growth_mib"]]
           for name, c in costs.items()])
    weights = sum(im_msq.layer(n).payload.weight.size for n in MSQ_LAYERS)
    print(f"  for contrast (analytic, not trained here): BSQ keeps 2 x 8 float bit planes per weight (yanghr/BSQ's "
          f"pweight/nweight), {16 * weights} parameters for these {weights} weights")

    run = out / "msq"
    assert cdsl(["run", str(EXAMPLES / "msq.cdsl"), "-o", str(run)]) == 0
    assert cdsl(["eval", str(run)]) == 0  # trains plain QAT into run/baselines/no-bitsparse
    rows = []
    for name, folder in (("MSQ", run), ("plain QAT (8 bit)", run / "baselines" / "no-bitsparse")):
        assert cdsl(["verify", str(folder)]) == 0
        v = json.loads((folder / "verify.json").read_text())
        manifest = json.loads((folder / "rtl" / "manifest.json").read_text())
        engines = manifest["cycles"]["engines"]
        im = IntModel.load(folder / "intmodel")
        rows.append([name, " ".join(f"{n}:{im.layer(n).payload.w_bits}" for n in MSQ_LAYERS),
                     f"{v['bit_exact']}/{v['samples']}", int(v["cycles_simulated_mean"]), v["cycles_predicted"],
                     engines["h1"]["mac_cycles"] + engines["h2"]["mac_cycles"], 100 * v["rtl_accuracy"]])
    table(f"MSQ RTL (examples/msq.cdsl, seed {seeds[0]}), cdsl verify on the whole test split",
          ["", "bits", "bit-exact", "simulated cycles", "predicted", "h1+h2 MAC cycles", "RTL accuracy %"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="training seeds (default 0,1,2,3,4)")
    parser.add_argument("--out", default="runs/bench-bits", help="folder for the run folders")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    torch.set_num_threads(1)
    bench_trunc(seeds, out)
    bench_msq(seeds, out)


if __name__ == "__main__":
    main()
