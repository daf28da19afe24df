"""Back to back in Verilator: the generated network.sv (as `cdsl gen` writes it) driven on its stream ports
by a cocotb test (tb.back_to_back_bench), many inferences with input valid and output ready always high.
Outputs equal golden, the first inference ends at the single-inference model, every interval between
inferences equals the modelled initiation interval. The digits-MLP-shaped network folded for
--target-ii 512 (double-buffered frames, PE 8 on the bit-serial layer) and a CNN with pooling and a join
folded for --target-ii 300 (its first conv at PE 4, reordered through its output buffer)."""

import json

import numpy as np
import pytest
import torch

from tb.random_models import digits_mlp, pooled_join_cnn

from cdsl.contract.golden import golden
from cdsl.hw.generate import generate
from cdsl.hw.network import input_port, output_port
from cdsl.hw.plan import initiation_interval, network_cycles, output_cycles
from cdsl.sim.runner import run_cocotb

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name, make, options", [
    ("digits_mlp_ii512", lambda: digits_mlp(7), {"target_ii": 512}),
    ("pooled_join_cnn_ii300", lambda: pooled_join_cnn(5), {"target_ii": 300}),  # c1 at PE 4: the output buffer
])
def test_back_to_back_in_verilator(tmp_path, name, make, options):
    seed, frames = 17, 6
    im = make()
    gen = generate(im, tmp_path / "rtl", **options)
    plan = gen.plan
    rng = np.random.default_rng(seed)
    xs = {i.name: rng.integers(i.qtype.qmin, i.qtype.qmax + 1, size=(frames, *i.shape)) for i in im.inputs}
    for x, inp in zip(xs.values(), im.inputs):
        x[1], x[2] = inp.qtype.qmax, inp.qtype.qmin
    want = golden(im, {k: torch.tensor(v) for k, v in xs.items()})
    want = want if isinstance(want, dict) else {im.outputs[0]: want}
    case = {"frames": frames,
            "inputs": {input_port(i.name): {"bits": i.qtype.bits, "frames": xs[i.name].reshape(frames, -1).tolist()}
                       for i in im.inputs},
            "outputs": {output_port(o.name): {"bits": o.type.bits, "signed": o.type.signed, "words": o.type.words}
                        for o in plan.outputs}}
    res = run_cocotb(verilog=gen.verilog_path.read_text(), toplevel="network", test_module="tb.back_to_back_bench",
                     extra_env={"CDSL_B2B": json.dumps(case)}, seed=seed, test_dir=tmp_path / "sim")
    assert res.passed, res.log_text()[-3000:]
    ii, _ = initiation_interval(plan)
    assert ii == gen.manifest["cycles"]["initiation_interval"]
    for o in im.outputs:
        port = output_port(o)
        assert res.data["outputs"][port] == [want[o][s].reshape(-1).tolist() for s in range(frames)], f"seed={seed}"
        assert res.data["ends"][port][0] + 1 == output_cycles(plan)[o]
    done = np.max([res.data["ends"][output_port(o)] for o in im.outputs], axis=0)
    assert done[0] + 1 == network_cycles(plan) == gen.manifest["cycles"]["cycles_per_inference"]
    assert np.diff(done).tolist() == [ii] * (frames - 1), f"seed={seed}: measured {np.diff(done)}, II {ii}"
    print(name, "latency", done[0] + 1, "II", ii)
