"""Measured numbers of the CIM layers (issue 9), printed; nothing here is asserted.

    .venv/bin/python benchmarks/cim.py all            # everything below (about 15 minutes on 2 cores)
    .venv/bin/python benchmarks/cim.py accuracy       # ADC vs no ADC, and NeuroSim-/aihwkit-like tiles
    .venv/bin/python benchmarks/cim.py scaling        # column-wise vs tensor-wise ADC steps, 4- and 3-bit ADC
    .venv/bin/python benchmarks/cim.py rescale        # the steps' gradient scaling against an ablation
    .venv/bin/python benchmarks/cim.py noise          # noise-aware vs plain training under variation
    .venv/bin/python benchmarks/cim.py mapping        # kernel duplication: utilization and cycles, verified

The network is the digits CNN of examples/cnn.cdsl with its second conv (8 -> 16 channels, 3x3, a
72-input fan-in) on CIM tiles: by default 4-bit weights, 2-bit cells, 1-bit DAC, 5-bit ADC, 64x64
tiles. Every training is `cdsl train`'s (30 epochs, 5 of them float warm-up), one per seed; accuracies
are the integer golden model's on the 450-sample test split, mean +- standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from cdsl.contract.golden import predict, quantize_input
from cdsl.dsl import parse
from cdsl.sw.cores.cim import CimTwin, without_adc
from cdsl.sw.export import export
from cdsl.sw.evaluations.cim import noise_accuracies
from cdsl.sw.train import train

SPEC = """
model digits_cim {{
  input x: ufixed<8,4>[1, 8, 8]
  c1 = conv2d(x, channels=8, kernel=3, padding=1) @quant(w=8, a=8, per=channel)
  r1 = relu(c1)
  p1 = maxpool(r1, kernel=2)
  c2 = conv2d(p1, channels=16, kernel=3, padding=1) @quant(w=4, a=8) {cim}
  r2 = relu(c2)
  p2 = avgpool(r2, kernel=2)
  f = flatten(p2)
  y = dense(f, units=10) @quant(w=8, a=8)
  output y
}}
train {{
  epochs = 30
  lr = 0.01
  seed = {seed}
  stage warmup(epochs=5, compress=none)
  stage qat(epochs=25)
}}
"""

BASE = dict(rows=64, cols=64, cell=2, dac=1, adc=5, scale="channel", noise=0)


def cim(**changes) -> str:
    params = {**BASE, **changes}
    return "@cim(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"


def trained(cim_text: str, seed: int, *, compress: str = ""):
    text = SPEC.format(cim=cim_text, seed=seed)
    if compress:
        text = text.replace("stage qat(epochs=25)", f"stage qat(epochs=25, compress={compress})")
    return train(parse(text, "bench.cdsl"), float_twin=False)


def deployed_accuracy(cim_text: str, seed: int) -> float:
    """PIM-QAT's baseline: a network trained with quantization but without the tiles in the loop, put
    on the tiles afterwards with every ADC step calibrated to its column's largest partial sum over 512
    training samples (no clipping), as the twin's calibration does."""
    res = trained(cim_text, seed, compress="[quant]")
    net = res.net
    net.set_compress(None)
    net.eval()
    twins = [m for m in net.modules() if isinstance(m, CimTwin)]
    for twin in twins:
        twin.train()  # only the twins: their first training-mode pass calibrates the steps
    with torch.no_grad():
        net(res.data.x_train[:512])
    for twin in twins:
        twin.eval()
    return golden_accuracy(export(net), res.data)


def golden_accuracy(intmodel, data) -> float:
    x = quantize_input(intmodel, data.x_test)
    return float((predict(intmodel, x) == data.y_test).double().mean())


def ms(values) -> str:
    """mean +- std in percent."""
    mean = 100 * statistics.mean(values)
    spread = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:6.2f} +- {spread:4.2f}"


def table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for r in [header, *rows]:
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)))


def accuracy(seeds: list[int]) -> None:
    """Golden accuracy with ADCs, of the same integers without ADCs, and of the network trained without
    @cim; and tiles configured like NeuroSim (128x128, 1-bit cells, 5-bit ADC) and aihwkit (7-bit DAC,
    9-bit ADC)."""
    configs = [("4-bit w, 2-bit cells, 5-bit ADC, 64x64 (issue)", cim()),
               ("NeuroSim-like: 128x128, 1-bit cells, 1-bit DAC, 5-bit ADC",
                cim(rows=128, cols=128, cell=1, dac=1, adc=5)),
               ("aihwkit-like: 7-bit DAC, 9-bit ADC, 64x64, 2-bit cells", cim(dac=7, adc=9))]
    rows = []
    for label, text in configs:
        with_adc, digital, agree = [], [], []
        for seed in seeds:
            res = trained(text, seed)
            with_adc.append(res.metrics["golden"]["golden_acc"])
            digital.append(golden_accuracy(without_adc(res.intmodel), res.data))
            agree.append(res.metrics["golden"]["agreement"])
        rows.append((label, ms(with_adc), ms(digital), ms(agree)))
    plain = [trained("", seed).metrics["golden"]["golden_acc"] for seed in seeds]
    rows.append(("same network trained without @cim (digital)", "-", ms(plain), "-"))
    table(f"Accuracy, integer golden model, test split, {len(seeds)} seeds (mean +- std, %)",
          ("configuration", "with ADCs", "same integers, no ADC", "golden = fake-quant"), rows)


def scaling(seeds: list[int]) -> None:
    """Column-wise vs tensor-wise ADC steps, trained with the tiles in the loop; and column-wise steps
    on a network trained without them (`deployed_accuracy`)."""
    rows = []
    for adc in (5, 4, 3):
        for scale in ("channel", "tensor"):
            accs, digital = [], []
            for seed in seeds:
                res = trained(cim(adc=adc, scale=scale), seed)
                accs.append(res.metrics["golden"]["golden_acc"])
                digital.append(golden_accuracy(without_adc(res.intmodel), res.data))
            label = "column-wise (scale=channel)" if scale == "channel" else "tensor-wise (scale=tensor)"
            rows.append((f"{adc}-bit", label, ms(accs), ms(digital)))
        rows.append((f"{adc}-bit", "column-wise, tiles not in training", ms([deployed_accuracy(cim(adc=adc), seed)
                                                                           for seed in seeds]), "-"))
    table(f"ADC step granularity, 64x64 tiles, 2-bit cells, {len(seeds)} seeds (golden accuracy, mean +- std, %)",
          ("ADC", "steps", "with ADCs", "same integers, no ADC"), rows)


def rescale(seeds: list[int]) -> None:
    """Our version of PIM-QAT's rescaling (sw/cores/cim.py) against an ablation: the same training with
    the ADC steps' gradients not scaled by 1 / sqrt(conversions per step * largest code)."""
    import cdsl.sw.cores.cim as twin

    rows = []
    for adc in (5, 3):
        for label, scaled in (("steps' gradients scaled (default)", True), ("raw step gradients (ablation)", False)):
            accs = []
            for seed in seeds:
                saved = twin.grad_scale
                if not scaled:
                    twin.grad_scale = lambda s, g: s
                try:
                    accs.append(trained(cim(adc=adc), seed).metrics["golden"]["golden_acc"])
                finally:
                    twin.grad_scale = saved
            rows.append((f"{adc}-bit", label, ms(accs)))
    table(f"Step-gradient rescaling, {len(seeds)} seeds (golden accuracy, mean +- std, %)",
          ("ADC", "training", "accuracy"), rows)


def noise(seeds: list[int], sigmas: list[float], draws: int) -> None:
    """Plain (noise=0) and noise-aware (noise=sigma) training of the same seeds, each evaluated under
    `draws` fixed draws at sigma and 2 sigma; the last column is noise-aware minus plain, per seed
    (mean over its draws), mean +- std over seeds."""
    rows = []
    for sigma in sigmas:
        results = {}
        for label, trained_noise in (("plain (noise=0)", 0), (f"noise-aware (noise={sigma:g})", sigma)):
            per_seed = []
            for seed in seeds:
                res = trained(cim(noise=trained_noise), seed)
                x, y = res.data.x_test, res.data.y_test
                per_seed.append((res.metrics["golden"]["golden_acc"],
                                 noise_accuracies(res.net, x, y, {"c2": sigma}, draws=draws),
                                 noise_accuracies(res.net, x, y, {"c2": 2 * sigma}, draws=draws)))
            results[label] = per_seed
        plain = list(results.values())[0]
        for label, per_seed in results.items():
            gain = [statistics.mean(a[1]) - statistics.mean(p[1]) for a, p in zip(per_seed, plain)]
            gain2 = [statistics.mean(a[2]) - statistics.mean(p[2]) for a, p in zip(per_seed, plain)]
            rows.append((f"{sigma:g}", label, ms([r[0] for r in per_seed]), ms([v for r in per_seed for v in r[1]]),
                         ms([v for r in per_seed for v in r[2]]),
                         "-" if per_seed is plain else f"{ms(gain)} / {ms(gain2)}"))
    table(f"Conductance variation, {len(seeds)} seeds x {draws} draws (mean +- std over all of them, %)",
          ("sigma", "training", "no variation", "at sigma", "at 2 sigma", "gain over plain at sigma / 2 sigma"),
          rows)


def mapping(samples: int, seed: int = 0) -> None:
    """The issue's configuration (16 outputs x 2 slices fill 32 of 64 columns): the plain mapping vs two
    kernel copies, for the same integer model. The default design comes from `generate` (what `cdsl gen`
    writes); the plain one from the same plan with c2 re-planned with one copy. Both are simulated in
    Verilator on test samples against the golden model."""
    import dataclasses
    import hashlib

    from cdsl.hw.cores.cim import plan_cim_layer
    from cdsl.hw.generate import generate, manifest, verilog_text
    from cdsl.hw.network import Network
    from cdsl.hw.plan import PlanContext, network_cycles
    from cdsl.sim.cosim import verify
    from cdsl.sim.design import Design

    res = trained(cim(), seed)
    im = res.intmodel
    x = quantize_input(im, res.data.x_test[:samples])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        generated = Design.load(generate(im, Path(tmp) / "rtl").manifest_path.parent)
        plan = generated.plan
        node = plan.node("c2")
        ctx = PlanContext(in_streams=node.inputs, in_types=node.in_types, lanes={"c2": node.lanes})
        plain_node = plan_cim_layer(im.layer("c2"), ctx, duplicate=1)
        plain = dataclasses.replace(plan, nodes=tuple(plain_node if n.name == "c2" else n for n in plan.nodes))
        network = Network(plan=plain)
        text = verilog_text(network)
        plain_design = Design(Path(tmp) / "plain", manifest(im, plain, network, text, {}), plain, text,
                              hashlib.sha256(text.encode()).hexdigest())
        for label, design, n in (("plain (one output per activation)", plain_design, plain_node),
                                 (f"kernels duplicated x{node.duplicate} (default)", generated, node)):
            f = n.figures({})
            report = verify(im, design, x, work_dir=Path(tmp) / f"sim-{n.duplicate}")
            simulated = ",".join(map(str, sorted(set(report.run.cycles))))
            array = f["activations"] * max(f["gather_steps"], f["input_steps"])
            rows.append((label, f["tiles"], f"{100 * f['utilization']:.1f}%", f["activations"], f["adc_conversions"],
                         array, f["delay"], network_cycles(design.plan), simulated, f"{report.exact}/{len(x)}"))
    table("Mapping of c2 (8x3x3 -> 16, 4-bit weights in 2 slices) on 64x64 tiles; array cycles = activations x "
          "max(gather steps, input steps), c2 cycles add the read-out of its 256 outputs",
          ("mapping", "tiles", "utilization", "activations", "ADC conv.", "array cycles", "c2 cycles",
           "network cycles", "simulated", "bit-exact"), rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["accuracy", "scaling", "rescale", "noise", "mapping", "all"])
    p.add_argument("--seeds", type=int, default=3, help="trainings per configuration (seeds 0, 1, ...)")
    p.add_argument("--sigma", type=float, action="append", help="variation levels for `noise` (default 0.1, 0.2, 0.3)")
    p.add_argument("--draws", type=int, default=5, help="noise draws per trained network")
    p.add_argument("--samples", type=int, default=100, help="test samples simulated per design in `mapping`")
    args = p.parse_args()
    seeds = list(range(args.seeds))
    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.what in ("accuracy", "all"):
        accuracy(seeds)
    if args.what in ("scaling", "all"):
        scaling(seeds)
    if args.what in ("rescale", "all"):
        rescale(seeds)
    if args.what in ("noise", "all"):
        noise(seeds, args.sigma or [0.1, 0.2, 0.3], args.draws)
    if args.what in ("mapping", "all"):
        mapping(args.samples)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
