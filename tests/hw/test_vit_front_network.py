"""The token linear, patchify and first-token nodes inside a network plan (`cdsl.hw.plan`,
`cdsl.hw.network.Network`): image -> `t.patches` (patchify) -> `t` (token linear with the patch
embedding's table) -> `y.cls` (first token) -> `y` (token linear on one token, logits (K,)). The plan
survives the manifest's codec; the network's outputs equal the contract's patch embedding followed by
the head's linear map written out here (plain integers), and its cycles equal the plan's cycle model
(`network_cycles`), in Amaranth's simulator and (slow) in Verilator through the bulk-load harness.
The sub-nodes carry the design's `<layer>.<part>` names (their probe ports become `p_<layer>__<part>`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cdsl.contract.intmodel import Requant
from cdsl.contract.ref._vit import IntLinear
from cdsl.contract.ref.patch_embed import patch_embed
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.hw.kinds.first_token import plan_first_token
from cdsl.hw.kinds.patchify import embed_table, plan_patchify
from cdsl.hw.kinds.token_linear import bitserial_unit, plan_token_linear
from cdsl.hw.network import Network, input_port, output_port
from cdsl.hw.plan import NetworkPlan, PlanInput, PlanOutput, StreamType, network_cycles

CH, H, W, P, D, K = 1, 8, 8, 4, 8, 5


def build(seed, *, serial):
    rng = np.random.default_rng(seed)
    kp = CH * P * P
    n1 = (H // P) * (W // P) + 1
    m, s = quantize_multiplier(2.0 / (15 * 32 * kp))
    embed = IntLinear(rng.integers(-32, 32, (D, kp)), rng.integers(-400, 400, D),
                      Requant(np.array([m]), np.array([s]), -128, 127))
    cls, pos = rng.integers(-40000, 40000, D), rng.integers(-600, 600, (n1, D))
    ms = [quantize_multiplier(r) for r in rng.uniform(1.0, 3.0, K) / (8 * D)]
    head = IntLinear(rng.integers(-64, 64, (K, D)), rng.integers(-900, 900, K),
                     Requant(np.array([a for a, _ in ms]), np.array([b for _, b in ms]), -128, 127))
    img = StreamType(4, False, (CH, H, W))
    patches = plan_patchify("t.patches", "x", img, P)
    t = plan_token_linear("t", "t.patches", patches.out_type, embed, out_type=StreamType(8, True, (n1, D)), lanes=3,
                          unit=bitserial_unit(embed) if serial else None, table=embed_table(cls, embed.bias, pos))
    first = plan_first_token("y.cls", "t", t.out_type)
    y = plan_token_linear("y", "y.cls", first.out_type, head, out_type=StreamType(8, True, (K,)), lanes=8)
    plan = NetworkPlan("vit_front", (PlanInput("x", img),), (PlanOutput("y", "y", y.out_type),),
                       (patches, t, first, y), (), ())
    return plan, embed, cls, pos, head


def expected(img, embed, cls, pos, head):
    tokens = patch_embed(torch.tensor(img).reshape(1, CH, H, W), P, embed.weight, embed.bias, cls, pos, embed.requant)
    x0 = tokens[0, 0].tolist()
    out = []
    for o in range(K):
        acc = sum(int(a) * int(w) for a, w in zip(x0, head.weight[o])) + int(head.bias[o])
        mult, shift = int(head.requant.multiplier[o]), int(head.requant.shift[o])
        out.append(min(max((acc * mult + (1 << (shift - 1))) >> shift, -128), 127))
    return out


def images(seed, count):
    rng = np.random.default_rng(seed)
    return [np.full(CH * H * W, 15), np.zeros(CH * H * W, dtype=np.int64)] + [
        rng.integers(0, 16, CH * H * W) for _ in range(count)]


def test_plan_round_trips_through_the_manifest_codec():
    plan, *_ = build(1, serial=True)
    obj, arrays = plan.to_json()
    back = NetworkPlan.from_json(json.loads(json.dumps(obj)), arrays)
    assert back == plan
    assert network_cycles(back) == network_cycles(plan)


@pytest.mark.parametrize("serial", [False, True])
def test_network_in_pysim(serial):
    from tb.pysim import run_graph

    seed = 11 + serial
    plan, embed, cls, pos, head = build(seed, serial=serial)
    net = Network(plan=plan)
    for k, img in enumerate(images(seed, 2)):
        got, cycles = run_graph(net, {input_port("x"): img.tolist()}, {output_port("y"): K})
        assert got[output_port("y")] == expected(img, embed, cls, pos, head), f"image {k} (seed={seed})"
        assert cycles == network_cycles(plan), f"image {k}: {cycles} cycles, model {network_cycles(plan)} (seed={seed})"


@pytest.mark.slow
def test_network_in_verilator(tmp_path):
    from cdsl.hw.verilog_text import verilog_text
    from cdsl.sim.harness import Harness
    from cdsl.sim.runner import run_cocotb

    seed = 5
    plan, embed, cls, pos, head = build(seed, serial=True)
    imgs = images(seed, 6)
    harness = Harness(dut=Network(plan=plan), depths={input_port("x"): CH * H * W, output_port("y"): K},
                      samples=4)
    case, out = tmp_path / "case.npz", tmp_path / "out.npz"
    np.savez(case, config=np.zeros(0, dtype=np.int64), **{f"in:{input_port('x')}": np.stack(imgs)},
             **{f"expect:{output_port('y')}": np.int64(K)})
    result = run_cocotb(verilog=verilog_text(harness, name="vit_front_top"), toplevel="vit_front_top",
                        test_module="cdsl.sim.network_bench", test_dir=tmp_path / "sim",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_COSIM_CASE": str(case),
                                   "CDSL_COSIM_OUT": str(out)})
    assert result.passed, result.summary() + "\n" + result.log_text(tail=30)
    with np.load(out) as data:
        got, cycles = data[f"out:{output_port('y')}"], data["cycles"]
    for k, img in enumerate(imgs):
        assert got[k].tolist() == expected(img, embed, cls, pos, head), f"image {k} (seed={seed})"
    assert cycles.tolist() == [network_cycles(plan)] * len(imgs)


def test_folding_raises_the_token_linears_lanes():
    """`fold` treats token linears as foldable (lanes up to K, PE 1): at an unreachable latency target
    every one reaches K lanes, the network stays bit-exact and its cycles equal the model's."""
    from cdsl.hw.plan import fold, fold_report
    from tb.pysim import run_graph

    seed = 21
    plan, embed, cls, pos, head = build(seed, serial=False)
    folded = fold(plan, target_cycles=1)
    lanes = {n.name: n.lanes for n in folded.nodes if hasattr(n, "lanes")}
    assert lanes == {"t": CH * P * P, "y": D}
    assert network_cycles(folded) < network_cycles(plan)
    assert "out of reach" in fold_report(folded, target_cycles=1)[0]
    img = images(seed, 1)[-1]
    got, cycles = run_graph(Network(plan=folded), {input_port("x"): img.tolist()}, {output_port("y"): K})
    assert got[output_port("y")] == expected(img, embed, cls, pos, head), f"seed={seed}"
    assert cycles == network_cycles(folded)


def test_network_with_a_layer_named_t_passes_lint(tmp_path):
    """`cdsl gen --lint` on a ViT whose patch embedding is called `t` (as in examples/vit.cdsl): the token
    linear's token counter `t` shares the name of its instance in the network top (Verilator's
    VARHIDDEN), which `cdsl gen --lint` called undocumented (exit 1) on a correct design."""
    from cdsl.hw.verilog_text import verilog_text
    from cdsl.sim.lint import HARMLESS, lint

    plan, *_ = build(3, serial=False)
    src = tmp_path / "network.sv"
    src.write_text(verilog_text(Network(plan=plan), name="network"))
    res = lint(src)
    assert "VARHIDDEN" in res.counts, res.summary()  # the case this test is about
    assert res.clean and set(res.counts) <= set(HARMLESS), f"{res.counts}\n{res.output[-2000:]}"
