"""Back-to-back throughput of a trained model's network: the modelled initiation interval (II) against
the one measured in simulation, per folding, with the outputs checked against the golden model.

    .venv/bin/python benchmarks/throughput.py RUN_DIR [--target-ii 1024,512] [--target-cycles N] [-n 6]

RUN_DIR is a run folder (`cdsl train SPEC -o RUN_DIR`, e.g. of examples/mlp.cdsl). For the default
mapping and for each target, the IntModel is planned (as `cdsl gen` would), its Network is simulated
in Amaranth's simulator with N test samples streamed back to back (input valid always high, output
ready always high; `cdsl.sim.back_to_back`), and the table shows: each engine's (lanes, PE), the
single-inference latency (model; the first inference's measured end), the II (model; measured
between the ends of consecutive inferences after the first), the slowest engine's own cycles
(its `delay`, the issue's yardstick) and the II's ratio to it, the MAC lanes (sum of lanes x PE),
the frame memory (double-buffered frames and join FIFOs), and how many inferences were bit-exact.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--target-ii", default="", help="comma-separated II targets (besides the default mapping)")
    ap.add_argument("--target-cycles", default="", help="comma-separated latency targets")
    ap.add_argument("-n", type=int, default=6, help="inferences streamed back to back per design")
    args = ap.parse_args()

    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from cdsl.contract.golden import golden, quantize_input
    from cdsl.flow import load_intmodel
    from cdsl.hw.network import Network, input_port, output_port
    from cdsl.hw.plan import cycle_report, initiation_interval, network_cycles, plan_network
    from cdsl.sw.evaluate import load_run

    run_dir = Path(args.run_dir)
    intmodel = load_intmodel(run_dir / "intmodel")
    _, _, data = load_run(run_dir)
    x = quantize_input(intmodel, data.x_test[:args.n])
    xs = x if isinstance(x, dict) else {intmodel.inputs[0].name: x}
    want = golden(intmodel, {k: torch.as_tensor(v) for k, v in xs.items()})
    want = want if isinstance(want, dict) else {intmodel.outputs[0]: want}
    configs = [("default (--lanes 8)", {})]
    configs += [(f"--target-ii {t}", {"target_ii": int(t)}) for t in args.target_ii.split(",") if t]
    configs += [(f"--target-cycles {t}", {"target_cycles": int(t)}) for t in args.target_cycles.split(",") if t]

    from cdsl.sim.back_to_back import run_back_to_back

    console = Console(highlight=False, width=max(Console().width, 160))
    table = Table(title=f"{intmodel.name}: {args.n} test inferences back to back (Amaranth simulator)")
    for col in ("mapping", "(lanes, PE) per engine", "latency model/sim", "II model", "II sim", "slowest engine",
                "II / slowest", "MAC lanes", "frame bits", "bit-exact"):
        table.add_column(col, justify="left" if col in ("mapping", "(lanes, PE) per engine") else "right")
    for label, opts in configs:
        plan = plan_network(intmodel, **opts)
        feeds = {input_port(k): [np.asarray(v[s]).reshape(-1).tolist() for s in range(args.n)] for k, v in xs.items()}
        outs = {output_port(o): int(np.prod(intmodel.shape_of(o))) for o in intmodel.outputs}
        got, ends = run_back_to_back(Network(plan=plan), feeds, outs)
        exact = sum(all(got[output_port(o)][s] == want[o][s].reshape(-1).tolist() for o in intmodel.outputs)
                    for s in range(args.n))
        done = np.max([ends[output_port(o)] for o in intmodel.outputs], axis=0)  # an inference's last output word
        measured = sorted(set(np.diff(done).tolist()))
        ii, pace = initiation_interval(plan)
        rep = cycle_report(plan)
        slowest = max(f["delay"] for f in rep["engines"].values())
        folding = ", ".join(f"{n.name} ({n.lanes}, {n.pe})" for n in plan.nodes if hasattr(n, "pe"))
        lanes = sum(n.lanes * n.pe for n in plan.nodes if hasattr(n, "pe"))
        table.add_row(label, folding, f"{network_cycles(plan)}/{done[0] + 1}", f"{ii} ({pace})",
                      "/".join(map(str, measured)), str(slowest), f"{ii / slowest:.3f}", str(lanes),
                      f"{rep['memory_bits']['total']:,}", f"{exact}/{args.n}")
    console.print(table)


if __name__ == "__main__":
    main()
