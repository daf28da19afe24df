"""Network top: one engine per layer of an IntModel, chained by streams.

Ports
- `i`: stream of input activations, one per transfer, row-major (C, H, W) order, the input
  QType's width and signedness;
- `o`: stream of output activations (the logits of a classifier), one per transfer;
- `precision_<layer>` for every bit-serial layer: the runtime weight precision p in planes
  (1..w_bits); 0 (an undriven port) means full precision.

Build it from a plan (`cdsl.hw.plan.plan_network`) or straight from an IntModel with
`Network.from_intmodel(intmodel, default_lanes=8, target_cycles=None, lanes=None)`.
Predicted cycles per inference: `cdsl.hw.plan.network_cycles(network.plan)`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw.layer_engine import LayerEngine
from cdsl.hw.plan import EngineKind, NetworkPlan, plan_network
from cdsl.hw.relu import Relu
from cdsl.contract.intmodel import IntModel


def precision_port(layer_name: str) -> str:
    return f"precision_{layer_name}"


class Network(wiring.Component):
    def __init__(self, *, plan: NetworkPlan):
        if not isinstance(plan, NetworkPlan):
            raise TypeError(f"plan must be a NetworkPlan, not {plan!r}")
        self._plan = plan
        ports = {
            "i": In(stream.Signature(Shape(plan.in_bits, plan.in_signed))),
            "o": Out(stream.Signature(Shape(plan.out_bits, plan.out_signed))),
        }
        for e in plan.bitserial_engines():
            ports[precision_port(e.name)] = In(range(e.w_bits + 1))
        super().__init__(ports)

    @classmethod
    def from_intmodel(cls, intmodel: IntModel, *, default_lanes: int = 8, target_cycles: int | None = None,
                      lanes: dict[str, int] | None = None) -> "Network":
        if not isinstance(intmodel, IntModel):
            raise TypeError(f"intmodel must be an IntModel, not {intmodel!r}")
        return cls(plan=plan_network(intmodel, default_lanes=default_lanes, target_cycles=target_cycles, lanes=lanes))

    @property
    def plan(self) -> NetworkPlan:
        return self._plan

    def elaborate(self, platform):
        m = Module()
        upstream = self.i  # the stream feeding the next engine (our own input, flipped below)
        first = True
        for cfg in self._plan.engines:
            if cfg.kind is EngineKind.RELU:
                stage = Relu(in_bits=cfg.in_bits, out_bits=cfg.out_bits, out_signed=cfg.out_signed)
            else:
                stage = LayerEngine(config=cfg)
                if cfg.bitserial:
                    m.d.comb += stage.precision.eq(getattr(self, precision_port(cfg.name)))
            m.submodules[cfg.name] = stage
            if first:
                m.d.comb += [stage.i.valid.eq(self.i.valid), stage.i.payload.eq(self.i.payload),
                             self.i.ready.eq(stage.i.ready)]
                first = False
            else:
                m.d.comb += [stage.i.valid.eq(upstream.valid), stage.i.payload.eq(upstream.payload),
                             upstream.ready.eq(stage.i.ready)]
            upstream = stage.o
        m.d.comb += [self.o.valid.eq(upstream.valid), self.o.payload.eq(upstream.payload),
                     upstream.ready.eq(self.o.ready)]
        return m
