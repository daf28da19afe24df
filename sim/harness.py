"""`Harness`: a simulation wrapper that moves data in bulk instead of per clock edge from Python.

It wraps a design (an Amaranth component, or a black box standing for a Verilog module that is
compiled beside the harness, `BlackBox`) and finds its ports from its signature:
- every `In` stream except `ctrl` is an *input*: the harness has a memory `mem_<port>` that the
  testbench fills through its simulator handle (`dut.mem_i_x[k].value = word`, no clock needed) and
  `len_<port>`, the words to stream in;
- every `Out` stream is an *output*: memory `mem_<port>` captures each word, `count_<port>` says how
  many, and `expect_<port>` how many to wait for (0: until a word with `last`);
- an `In` stream named `ctrl` (register writes) is fed from `mem_ctrl` (`len_ctrl` words) before
  the inputs start: settings are in place when the first input is offered;
- every `Out` observation port with members `payload` and `fire` is a *probe* (built with
  `probes=True`): memory `mem_<port>` captures each payload in the cycle it fires, `count_<port>`;
- every other `In` member is passed through as a harness input of the same name (set by handle).

Frame streams (payload `{data, last}`, `cdsl.hw.streams.frame_layout`) are handled by the harness:
memories hold `data` only; an input's last word gets `last`; an output with `expect_ == 0` ends on
`last`. Plain payloads (a `lib.data` layout or a shape) are stored as their flat bits.

Ports (one run): set the lengths and expectations, fill the memories, hold `start` high for one
cycle; the harness writes the config words, then streams every input (all at once, each as fast as
it is accepted), keeps every output ready and records; when every output has finished it raises
`done` (held until the next `start`) and freezes `cycles`: clock cycles from the first cycle an
input is offered to the cycle that captured the last output word, inclusive. `busy` is high during
a run.

Batches (`samples=K`, K > 1): every input, output and probe memory holds K samples, sample s at
`s * depth`; an input `n_samples` says how many the run holds (0 counts as 1). The harness runs
them one after another with no Python in between, each exactly as a run of its own (the config
words first, then its inputs; `cycles` counted from its first input offered), and stores each
sample's cycles in `mem_cycles[s]` and each output's (and probe's) word count in
`mem_counts_<port>[s]`; `done` rises after the last. `HarnessDriver.run_batch` drives it. With
K = 1 (the default) the harness has none of these ports and memories.

Optional back-pressure (`throttle=True`): a 16-bit LFSR, seeded from the `seed` input at `start`,
drops each input's valid and each output's ready on pseudo-random cycles (about `throttle_num`/16
of them); a run started with `seed == 0` is not throttled.

The cocotb side is `cdsl.sim.drivers.HarnessDriver` (it reads `Harness.manifest()` from
`$CDSL_HARNESS`). Measured: a 64 -> 10 serial dense layer (714 cycles per sample) runs at
0.5-0.8 M simulated cycles/s this way with cocotb's clock (`python -m cdsl.sim.speed --cocotb-clock`);
the digits MLP in batches of 64 with the clock in C++ at about half the speed of a bare C++ loop
(`cdsl bench --speed`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from amaranth.hdl import ClockSignal, Const, Instance, Module, Mux, ResetSignal, Shape, Signal, Value
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Harness", "BlackBox", "HarnessPort", "CYCLES_WIDTH", "CYCLES_MEMORY", "COUNTS_MEMORY"]

CYCLES_WIDTH = 48
CYCLES_MEMORY = "mem_cycles"  # a batch harness: each sample's cycles
COUNTS_MEMORY = "mem_counts_"  # + port: each sample's words captured
_LFSR_TAPS = 0xB400  # x^16 + x^14 + x^13 + x^11 + 1, maximal length


@dataclass(frozen=True)
class HarnessPort:
    """One memory-backed port of the harness (what the cocotb driver needs to know)."""

    name: str  # the DUT's port
    role: str  # "input", "output", "ctrl", "probe"
    width: int  # bits of a memory word (the data of a frame, the flat payload otherwise)
    signed: bool
    frame: bool  # the payload is {data, last}
    depth: int


def _is_frame(shape) -> bool:
    return isinstance(shape, data.StructLayout) and set(shape.members) == {"data", "last"}


def _word_shape(payload_shape) -> tuple[int, bool, bool]:
    """(width, signed, frame) of the memory word for a stream payload shape."""
    if _is_frame(payload_shape):
        data_shape = Shape.cast(payload_shape.members["data"])
        return data_shape.width, data_shape.signed, True
    if isinstance(payload_shape, data.Layout):
        return Shape.cast(payload_shape).width, False, False
    shape = Shape.cast(payload_shape)
    return shape.width, shape.signed, False


def _is_probe(member) -> bool:
    return member.is_signature and set(member.signature.members) == {"payload", "fire"}


class BlackBox(wiring.Component):
    """Stands for the Verilog module `module` (compiled beside the harness) with this signature: the
    flattened members become the Verilog ports `<port>__<member>` Amaranth gives them, plus `clk`
    and `rst`."""

    def __init__(self, *, module: str, signature: wiring.Signature):
        self._module = module
        super().__init__(signature)

    def elaborate(self, platform):
        m = Module()
        conns = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        for path, member, value in self.signature.flatten(self):
            prefix = "i" if member.flow == In else "o"
            conns[f"{prefix}_{'__'.join(str(p) for p in path)}"] = value
        m.submodules.dut = Instance(self._module, **conns)
        return m


class Harness(wiring.Component):
    """Bulk-load simulation wrapper (see the module docstring).

    Keyword-only: `dut` (a component, or a `BlackBox`), `depths` (memory words per port name; every
    input, output, ctrl and probe port needs one), `probes` (capture the probe ports), `throttle`,
    `throttle_num` (0..15).
    """

    def __init__(self, *, dut: wiring.Component, depths: dict[str, int], probes: bool = False,
                 throttle: bool = False, throttle_num: int = 6, samples: int = 1):
        if not isinstance(dut, wiring.Component):
            raise TypeError(f"harness: dut must be an amaranth wiring.Component, not {dut!r}")
        if not isinstance(throttle, bool) or not isinstance(probes, bool):
            raise TypeError(f"harness: throttle and probes must be bools, not {throttle!r}, {probes!r}")
        if not isinstance(throttle_num, int) or not 0 <= throttle_num <= 15:
            raise ValueError(f"harness: throttle_num must be an integer in 0..15, not {throttle_num!r}")
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise ValueError(f"harness: samples must be an integer >= 1, not {samples!r}")
        self._dut = dut
        self._throttle, self._throttle_num = throttle, throttle_num
        self._samples = samples
        ports: list[HarnessPort] = []
        self._passthrough: list[tuple[str, object]] = []
        for name, member in dut.signature.members.items():
            if member.is_signature and isinstance(member.signature, stream.Signature):
                role = ("ctrl" if name == "ctrl" else "input") if member.flow == In else "output"
                width, signed, frame = _word_shape(member.signature.members["payload"].shape)
            elif _is_probe(member) and member.flow == Out:
                if not probes:
                    continue
                role = "probe"
                width, signed, frame = _word_shape(member.signature.members["payload"].shape)
            elif not member.is_signature and member.flow == In:
                self._passthrough.append((name, member.shape))
                continue
            else:
                continue
            depth = depths.get(name)
            if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
                raise ValueError(f"harness: port {name!r} needs a memory depth >= 1 in depths, got {depth!r}")
            ports.append(HarnessPort(name, role, width, signed, frame, depth))
        unknown = sorted(set(depths) - {p.name for p in ports})
        if unknown:
            raise ValueError(f"harness: depths names {unknown[0]!r}, not a port of the design "
                             f"(ports: {', '.join(p.name for p in ports)})")
        if not any(p.role == "output" for p in ports):
            raise TypeError("harness: the design has no output stream")
        self._ports = tuple(ports)
        members = {"start": In(1), "done": Out(1), "busy": Out(1), "cycles": Out(CYCLES_WIDTH)}
        for p in ports:
            if p.role in ("input", "ctrl"):
                members[f"len_{p.name}"] = In(range(p.depth + 1))
            if p.role == "output":
                members[f"expect_{p.name}"] = In(range(p.depth + 1))
            if p.role in ("output", "probe"):
                members[f"count_{p.name}"] = Out(32)
        if throttle:
            members["seed"] = In(16)
        if samples > 1:
            members["n_samples"] = In(range(samples + 1))
        for name, shape in self._passthrough:
            if name in members:  # a device input would silently merge with the harness's own port
                raise ValueError(f"harness: the design's input {name!r} has the name of a harness port; "
                                 f"rename it (harness ports: {', '.join(sorted(members))})")
            members[name] = In(shape)
        super().__init__(members)

    @property
    def ports(self) -> tuple[HarnessPort, ...]:
        return self._ports

    @property
    def samples(self) -> int:
        return self._samples

    def memory_names(self) -> tuple[str, ...]:
        names = tuple(f"mem_{p.name}" for p in self._ports)
        if self._samples > 1:
            names += (CYCLES_MEMORY,) + tuple(f"{COUNTS_MEMORY}{p.name}" for p in self._ports
                                              if p.role in ("output", "probe"))
        if len(set(names)) != len(names):
            raise ValueError(f"harness: two memories share a name in {names!r}; rename the design's port")
        return names

    def manifest(self) -> dict:
        """What a testbench needs to know (pass it as JSON in `CDSL_HARNESS`)."""
        return {"ports": [asdict(p) for p in self._ports], "throttle": self._throttle,
                "cycles_width": CYCLES_WIDTH, "passthrough": [name for name, _ in self._passthrough],
                "samples": self._samples}

    def manifest_json(self) -> str:
        return json.dumps(self.manifest(), sort_keys=True)

    def elaborate(self, platform):
        m = Module()
        dut = self._dut
        m.submodules.dut = dut
        for name, _ in self._passthrough:
            m.d.comb += getattr(dut, name).eq(getattr(self, name))
        self.memory_names()  # refuses clashing names
        batch = self._samples

        busy, running, done = Signal(), Signal(), Signal()  # running: the inputs phase (after config)
        cycles = Signal(CYCLES_WIDTH)
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.cycles.eq(cycles)]
        stall_in, stall_out = self._throttling(m, busy)
        begin = self.start & ~busy

        # Batches: `n_samples` samples (0 counts as 1) run one after another, each exactly as a run of
        # its own (config words, then its inputs; cycles counted from its first input offered). A
        # sample's words sit at `sample * depth` in each memory; its cycles and output counts are
        # stored at `sample` in `mem_cycles` and `mem_counts_<port>`.
        sample = Signal(range(batch), name="sample")
        if batch > 1:
            last_sample = (sample + 1 >= self.n_samples)
            cyc_mem = m.submodules[CYCLES_MEMORY] = memory.Memory(shape=Shape(CYCLES_WIDTH), depth=batch, init=[])
            cyc_wr = cyc_mem.write_port()
            m.d.comb += [cyc_wr.addr.eq(sample), cyc_wr.data.eq(cycles + 1)]
        else:
            last_sample = Const(1)
        sample_finished = Signal()  # the cycle a sample's last output is taken
        next_sample = sample_finished & ~last_sample
        restart = begin | next_sample  # the per-sample state starts over

        finished = []
        ctrl_done = Const(1)  # without a ctrl port the inputs start right away
        for p in self._ports:
            words = p.depth * (1 if p.role == "ctrl" else batch)  # the same register writes before every sample
            mem = m.submodules[f"mem_{p.name}"] = memory.Memory(shape=Shape(p.width), depth=words, init=[])
            port = getattr(dut, p.name)
            base = Signal(range(words), name=f"base_{p.name}")
            if batch > 1 and p.role != "ctrl":
                with m.If(begin):
                    m.d.sync += base.eq(0)
                with m.Elif(next_sample):
                    m.d.sync += base.eq(base + p.depth)
            if p.role in ("input", "ctrl"):
                rd = mem.read_port(domain="comb")
                addr = Signal(range(p.depth + 1), name=f"addr_{p.name}")
                length = getattr(self, f"len_{p.name}")
                phase = running if p.role == "input" else (busy & ~running)
                offer = phase & (addr < length) & (~stall_in if p.role == "input" else 1)
                m.d.comb += [rd.addr.eq(base + addr), port.valid.eq(offer)]
                if p.frame:
                    m.d.comb += [port.payload.data.eq(rd.data), port.payload.last.eq(addr == length - 1)]
                else:
                    m.d.comb += port.payload.eq(rd.data)
                with m.If(restart):
                    m.d.sync += addr.eq(0)
                with m.Elif(offer & port.ready):
                    m.d.sync += addr.eq(addr + 1)
                if p.role == "ctrl":
                    ctrl_done = addr >= length
            else:
                wr = mem.write_port()
                count = Signal(32, name=f"n_{p.name}")
                m.d.comb += getattr(self, f"count_{p.name}").eq(count)
                if p.role == "output":
                    ready = running & ~stall_out
                    fire = ready & port.valid
                    m.d.comb += port.ready.eq(ready)
                else:
                    fire = running & port.fire
                value = Value.cast(port.payload)
                word = port.payload.data if p.frame else value
                m.d.comb += [wr.addr.eq(base + count), wr.data.eq(word), wr.en.eq(fire & (count < p.depth))]
                with m.If(restart):
                    m.d.sync += count.eq(0)
                with m.Elif(fire):
                    m.d.sync += count.eq(count + 1)
                if batch > 1:
                    cnt_mem = m.submodules[f"{COUNTS_MEMORY}{p.name}"] = memory.Memory(shape=Shape(32), depth=batch,
                                                                                      init=[])
                    cnt_wr = cnt_mem.write_port()
                    m.d.comb += [cnt_wr.addr.eq(sample), cnt_wr.data.eq(count + fire),
                                 cnt_wr.en.eq(sample_finished)]
                if p.role == "output":
                    expect = getattr(self, f"expect_{p.name}")
                    seen_last = Signal(name=f"last_{p.name}")
                    if p.frame:
                        with m.If(restart):
                            m.d.sync += seen_last.eq(0)
                        with m.Elif(fire & port.payload.last):
                            m.d.sync += seen_last.eq(1)
                    by_count = (expect != 0) & (count + fire >= expect)
                    by_last = (expect == 0) & (seen_last | (fire & (port.payload.last if p.frame else 0)))
                    finished.append(by_count | by_last)

        all_finished = Const(1)
        for f in finished:
            all_finished = all_finished & f
        m.d.comb += sample_finished.eq(running & all_finished)
        if batch > 1:
            m.d.comb += cyc_wr.en.eq(sample_finished)
        with m.If(begin):
            m.d.sync += [busy.eq(1), running.eq(0), done.eq(0), cycles.eq(0), sample.eq(0)]
        with m.Elif(busy & ~running):
            with m.If(ctrl_done):
                m.d.sync += [running.eq(1), cycles.eq(0)]
        with m.Elif(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(sample_finished):
                m.d.sync += running.eq(0)
                with m.If(last_sample):
                    m.d.sync += [busy.eq(0), done.eq(1)]
                with m.Else():
                    m.d.sync += sample.eq(sample + 1)
        return m

    def _throttling(self, m: Module, busy: Value) -> tuple[Value, Value]:
        if not self._throttle:
            return Const(0), Const(0)
        lfsr = Signal(16, init=1)
        throttling = Signal()
        shifted = lfsr >> 1
        m.d.sync += lfsr.eq(Mux(lfsr[0], shifted ^ _LFSR_TAPS, shifted))
        with m.If(self.start & ~busy):
            # seed 0 turns throttling off for this run (and would lock the LFSR anyway).
            m.d.sync += [lfsr.eq(self.seed | (self.seed == 0)), throttling.eq(self.seed != 0)]
        return throttling & (lfsr[0:4] < self._throttle_num), throttling & (lfsr[4:8] < self._throttle_num)
