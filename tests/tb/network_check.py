"""A whole IntModel's generated network in amaranth.sim against the golden model, samples and cycles."""

from __future__ import annotations

import numpy as np
import torch

from cdsl.contract.golden import golden
from cdsl.hw.network import Network, input_port, output_port
from cdsl.hw.plan import network_cycles, plan_network
from tb.pysim import run_graph


def config_words(plan, settings):
    """Register writes (addr, value) for node settings {node: {setting: value}}."""
    return [(r.addr, settings[r.node][r.setting.name]) for r in plan.registers
            if r.setting.name in settings.get(r.node, {})]


def check_network(intmodel, *, seed, samples=2, settings=None, backpressure=False, **plan_kwargs):
    plan = plan_network(intmodel, **plan_kwargs)
    net = Network(plan=plan)
    rng = np.random.default_rng(seed)
    xs = {}
    for inp in intmodel.inputs:
        x = rng.integers(inp.qtype.qmin, inp.qtype.qmax + 1, size=(samples, *inp.shape))
        x[0] = inp.qtype.qmax  # all max
        xs[inp.name] = x
    want = golden(intmodel, {k: torch.tensor(v) for k, v in xs.items()}, settings=settings)
    want = want if isinstance(want, dict) else {intmodel.outputs[0]: want}
    outputs = {output_port(o): int(np.prod(intmodel.shape_of(o))) for o in intmodel.outputs}
    config = config_words(plan, settings or {})
    for s in range(samples):
        feeds = {input_port(k): v[s].reshape(-1).tolist() for k, v in xs.items()}
        got, cycles = run_graph(net, feeds, outputs, config=config)
        for o in intmodel.outputs:
            assert got[output_port(o)] == want[o][s].reshape(-1).tolist(), f"seed={seed} sample={s} {settings}"
        assert cycles == network_cycles(plan, settings=settings), f"seed={seed}"
    if backpressure:
        got, _ = run_graph(net, feeds, outputs, config=config, seed=seed, in_stall=0.3, out_stall=0.4)
        for o in intmodel.outputs:
            assert got[output_port(o)] == want[o][-1].reshape(-1).tolist(), f"seed={seed} {settings} (backpressure)"
    return plan
