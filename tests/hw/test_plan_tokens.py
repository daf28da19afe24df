"""The plan's machinery for layers built of several engines and for token streams whose length the data
decides: sub-graph checks, Verilog-safe names, settings routed from a layer to its engine, and the cycle
model's token counts (`tokens=`, `sample_cycles`), against hand-computed figures."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from cdsl.contract.intmodel import Setting
from cdsl.hw.plan import (Node, NetworkPlan, PlanContext, PlanInput, PlanOutput, StreamType, UnsupportedModel,
                          _check_group, _check_instance_names, instance_name, network_cycles, sample_cycles,
                          token_nodes)

N, D = 6, 4
TOK = StreamType(8, True, (N, D))


@dataclass(frozen=True, eq=False)
class PerToken(Node):
    """A toy engine: `cost` cycles per input token after its last input word."""

    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType
    cost: int = 3

    def delay(self, settings):
        return self.cost * self.in_types[0].shape[0]

    def delay_tokens(self, settings, tokens, kept=None):
        return self.cost * tokens


@dataclass(frozen=True, eq=False)
class Chooser(Node):
    """A toy selector: its output count is the data's; delay 100 + 10 per kept token (N when unknown)."""

    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType

    def settings(self):
        return (Setting("threshold", 0, 9, 4, "toy"),)

    def delay(self, settings):
        return 100 + 10 * N

    def delay_tokens(self, settings, tokens, kept=None):
        return 100 + 10 * (tokens if kept is None else kept) + settings["threshold"]

    def out_tokens(self, tokens):
        return None


@dataclass(frozen=True, eq=False)
class Head(Node):
    """Token stream in, a vector out: 7 cycles, whatever the count."""

    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType

    def delay(self, settings):
        return 7


def toy_plan() -> NetworkPlan:
    a = PerToken("a", ("x",), (TOK,), TOK)
    s = Chooser("e.select", ("a",), (TOK,), TOK)
    b = PerToken("e", ("e.select",), (TOK,), TOK, cost=5)
    y = Head("y", ("e",), (TOK,), StreamType(8, True, (3,)))
    return NetworkPlan("toy", (PlanInput("x", TOK),), (PlanOutput("y", "y", y.out_type),), (a, s, b, y), (), ())


def test_token_counts_follow_the_data_dependent_engine():
    plan = toy_plan()
    words = N * D
    assert token_nodes(plan) == ("e.select",)
    for kept in range(1, N + 1):
        # x's last word at words - 1; a: 3 per token of N; the chooser: 100 + 10 kept + threshold 4; e: 5 per kept
        want = (words - 1) + 3 * N + (100 + 10 * kept + 4) + 5 * kept + 7 + 1
        assert network_cycles(plan, tokens={"e.select": kept}) == want, kept
    full = (words - 1) + 3 * N + (100 + 10 * N + 4) + 5 * N + 7 + 1
    assert network_cycles(plan) == full  # no count given: the full one
    assert network_cycles(plan, settings={"e": {"threshold": 0}}, tokens={"e.select": 2}) == full - 4 - 15 * (N - 2)


def test_sample_cycles_per_sample_and_bad_counts():
    plan = toy_plan()
    counts = np.array([1, 6, 3, 3, 1])
    got = sample_cycles(plan, {"e.select": counts}, samples=5)
    assert got.tolist() == [network_cycles(plan, tokens={"e.select": int(c)}) for c in counts]
    assert len(set(got.tolist())) == 3
    with pytest.raises(ValueError, match="must be in 1..6"):
        network_cycles(plan, tokens={"e.select": 7})
    with pytest.raises(ValueError, match="not an engine whose output count"):
        network_cycles(plan, tokens={"a": 2})
    with pytest.raises(ValueError, match="no token counts for engine 'e.select'"):
        sample_cycles(plan, {}, samples=1)


def test_layer_settings_reach_the_engine_that_declares_them():
    plan = toy_plan()
    assert plan.node_settings({"e": {"threshold": 7}})["e.select"] == {"threshold": 7}
    assert plan.node_settings({"e.select": {"threshold": 2}})["e.select"] == {"threshold": 2}
    with pytest.raises(ValueError, match="no runtime setting 'precision'"):
        plan.node_settings({"e": {"precision": 2}})
    with pytest.raises(ValueError, match=r"layer 'e': threshold must be an integer in 0\.\.9, got 10"):
        plan.node_settings({"e": {"threshold": 10}})  # named as the user set it, not as engine e.select


def test_sub_graph_checks():
    layer = SimpleNamespace(name="e", kind="encoder")
    ctx = PlanContext(in_streams=("x",), in_types=(TOK,))
    good = (PerToken("e.a", ("x",), (TOK,), TOK), PerToken("e", ("e.a",), (TOK,), TOK))
    _check_group(layer, good, ctx)
    bad = {
        "last node must be named 'e'": (PerToken("e.a", ("x",), (TOK,), TOK),),
        "is not named 'e.<part>'": (PerToken("f", ("x",), (TOK,), TOK), PerToken("e", ("f",), (TOK,), TOK)),
        "reads \\['y'\\]": (PerToken("e.a", ("x",), (TOK,), TOK), PerToken("e", ("y",), (TOK,), TOK)),
        "of the types it states": (PerToken("e", ("x",), (StreamType(4, True, (N, D)),), TOK),),
        "not streams before it": (PerToken("e.a", ("e",), (TOK,), TOK), PerToken("e", ("e.a",), (TOK,), TOK)),
        "no node reads 'x'": (Head("e.a", (), (), TOK), PerToken("e", ("e.a",), (TOK,), TOK)),
    }
    for message, group in bad.items():
        with pytest.raises(AssertionError, match=message):
            _check_group(layer, group, ctx)


def test_instance_names_are_verilog_safe_and_unique():
    assert instance_name("e1.qkv") == "e1__qkv" and instance_name("h1") == "h1"
    nodes = [PerToken("e1.qkv", ("x",), (TOK,), TOK), PerToken("e1__qkv", ("e1.qkv",), (TOK,), TOK)]
    with pytest.raises(UnsupportedModel, match="share the hardware name 'e1__qkv'"):
        _check_instance_names((PlanInput("x", TOK),), nodes)
