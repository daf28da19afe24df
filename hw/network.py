"""Network top: the plan's engines joined as a graph of streams.

Ports (all Verilog names are these with Amaranth's `__payload`, `__valid`, `__ready` suffixes)
- `i_<input>` per model input: a stream of its activations, one per transfer, row-major, with
  `last` on the final word (`cdsl.hw.streams.frame_layout`);
- `o_<output>` per model output: a stream of its activations, `last` on the final word;
- `ctrl` (when the plan has runtime settings): register writes `{addr, data}`, before a run
  (`cdsl.hw.register_bank`); the manifest lists each register's address, engine and setting;
- `p_<engine>` per engine: an observation port (the engine's output payload and `fire`), for
  locating the first engine that differs from the golden model; pure wires, no logic.

Engines are connected with `wiring.connect`, so a width or signedness mismatch between two of them
is an elaboration error, never a silent truncation. A stream with several readers goes through a
lock-step `StreamFork`; a join's inputs go through the FIFOs the plan sized (`StreamFifo`).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw.plan import NetworkPlan
from cdsl.hw.register_bank import RegisterBank, ctrl_signature
from cdsl.hw.stream_fifo import StreamFifo
from cdsl.hw.stream_fork import StreamFork
from cdsl.hw.streams import frame_signature, probe_signature


def input_port(name: str) -> str:
    return f"i_{name}"


def output_port(name: str) -> str:
    return f"o_{name}"


def probe_port(engine: str) -> str:
    """The probe port of an engine; a sub-node name `<layer>.<part>` becomes `p_<layer>__<part>` (a port
    name must be an identifier)."""
    return "p_" + engine.replace(".", "__")


def network_signature(plan: NetworkPlan) -> wiring.Signature:
    """The ports of the network of `plan` (also what a harness uses to stand in for its Verilog)."""
    ports = {}
    for inp in plan.inputs:
        ports[input_port(inp.name)] = In(frame_signature(inp.type.bits, inp.type.signed))
    for out in plan.outputs:
        ports[output_port(out.name)] = Out(frame_signature(out.type.bits, out.type.signed))
    if plan.registers:
        ports["ctrl"] = In(ctrl_signature(len(plan.registers)))
    for n in plan.nodes:
        ports[probe_port(n.name)] = Out(probe_signature(n.out_type.bits, n.out_type.signed))
    return wiring.Signature(ports)


class Network(wiring.Component):
    def __init__(self, *, plan: NetworkPlan):
        if not isinstance(plan, NetworkPlan):
            raise TypeError(f"plan must be a NetworkPlan, not {plan!r}")
        self._plan = plan
        super().__init__(network_signature(plan))

    @property
    def plan(self) -> NetworkPlan:
        return self._plan

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        engines = {}
        for n in plan.nodes:
            engines[n.name] = m.submodules[n.name] = n.component()

        # Every stream's source, and the sinks that read it (engine inputs, network outputs).
        sources = {inp.name: wiring.flipped(getattr(self, input_port(inp.name))) for inp in plan.inputs}
        sources.update({name: e.o for name, e in engines.items()})
        sinks: dict[str, list] = {name: [] for name in sources}
        for n in plan.nodes:
            for k, stream_name in enumerate(n.inputs):
                sink = getattr(engines[n.name], n.in_port(k))
                buf = plan.buffer(n.name, k)
                if buf is not None:
                    fifo = m.submodules[f"{n.name}_buf{k}"] = StreamFifo(signature=sink.signature.flip(),
                                                                         depth=buf.depth)
                    wiring.connect(m, fifo.o, sink)
                    sink = fifo.i
                sinks[stream_name].append(sink)
        for out in plan.outputs:
            sinks[out.stream].append(wiring.flipped(getattr(self, output_port(out.name))))

        for stream_name, readers in sinks.items():
            source = sources[stream_name]
            if len(readers) == 1:
                wiring.connect(m, source, readers[0])
            elif len(readers) > 1:
                fork = m.submodules[f"{stream_name}_fork"] = StreamFork(signature=source.signature, n=len(readers))
                wiring.connect(m, source, fork.i)
                for branch, reader in zip(fork.outputs(), readers):
                    wiring.connect(m, branch, reader)

        for name, e in engines.items():
            probe = getattr(self, probe_port(name))
            m.d.comb += [probe.payload.eq(e.o.payload), probe.fire.eq(e.o.valid & e.o.ready)]

        if plan.registers:
            m.submodules.registers = bank = RegisterBank(
                widths=[r.width for r in plan.registers], resets=[r.setting.default for r in plan.registers])
            wiring.connect(m, wiring.flipped(self.ctrl), bank.ctrl)
            for k, r in enumerate(plan.registers):
                m.d.comb += getattr(engines[r.node], r.setting.name).eq(getattr(bank, f"r{k}"))
        return m
