"""cocotb-side drivers: bulk runs through the `Harness`, and plain stream drivers for block tests.

Two ways to move data, pick by what the test needs:

1. `HarnessDriver` (fast, for whole networks and long block runs). The DUT is a
   `cdsl.sim.harness.Harness`; words are written into its memories through simulator handles
   (no clock edge), `start` is pulsed, and Python sleeps until `done` rises: one Python wake-up
   per run instead of one per clock edge. Hundreds of thousands of simulated cycles per second.

       import cocotb
       from cdsl.sim.drivers import HarnessDriver

       @cocotb.test()
       async def my_test(dut):
           drv = HarnessDriver.from_env(dut)        # reads the manifest in $CDSL_HARNESS
           await drv.reset()
           run = await drv.run([1, 2, -3, 4], expect=1)           # one run, the only ports
           run.words, run.cycles
           run = await drv.run({"i_a": xa, "i_b": xb}, config=cfg) # named ports, register writes
           run.outputs["o_y"], run.probes["p_h1"]
           batch = await drv.run_samples(samples, n_out=10)       # many samples, one run each
           batch.outputs[s], batch.cycles[s]

2. `StreamDriver` / `StreamMonitor` (block level, valid/ready with random stalls). They act once
   per clock, at the falling edge: the driver offers a word with probability `valid_prob` (and
   keeps it until accepted, as `amaranth.lib.stream` requires), the monitor raises `ready` with
   probability `ready_prob`; both then wait for `ReadOnly` to see the settled handshake that the
   next rising edge will perform. The DUT's stream ports are the Verilog ports
   `<name>__payload`, `<name>__valid`, `<name>__ready` that Amaranth emits.

       clock = await start_clock(dut)
       await reset(dut)
       drv = StreamDriver(dut, "i", valid_prob=0.7, rng=rng)
       mon = StreamMonitor(dut, "o", signed=True, ready_prob=0.6, rng=rng)
       send = cocotb.start_soon(drv.send(words))
       got = await mon.receive(len(expected))
       await send

Values: inputs are Python ints, negative ones are written in two's complement of the port width;
outputs are read back unsigned, or signed when told (`signed=True`, or the harness manifest).
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from typing import Sequence

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

__all__ = [
    "HarnessDriver",
    "HarnessRun",
    "BatchRun",
    "StreamDriver",
    "StreamMonitor",
    "start_clock",
    "reset",
    "to_signed",
    "to_unsigned",
    "CLOCK_PERIOD_NS",
    "SIM_CLOCK_VAR",
    "write_results",
    "tb_seed",
]

CLOCK_PERIOD_NS = 10
# Set (to the period in ns) when the simulator drives `clk` itself (a `BuildOptions(sim_clock=True)`
# build, see cdsl.sim.verilator_main.cpp): then no cocotb clock is started.
SIM_CLOCK_VAR = "CDSL_SIM_CLOCK_NS"


def to_unsigned(value: int, width: int) -> int:
    """Two's-complement bits of `value` in `width` bits; raises if it does not fit."""
    lo, hi = -(1 << (width - 1)), (1 << width) - 1
    if not lo <= value <= hi:
        raise ValueError(f"value {value!r} does not fit in {width!r} bits")
    return value & ((1 << width) - 1)


def to_signed(value: int, width: int) -> int:
    """Interpret the unsigned `value` of `width` bits as two's complement."""
    return value - (1 << width) if value >> (width - 1) & 1 else value


def _read(handle) -> int:
    value = handle.value
    to_uint = getattr(value, "to_unsigned", None)
    return to_uint() if to_uint is not None else int(value)


async def start_clock(dut, *, period_ns: int = CLOCK_PERIOD_NS) -> Clock | None:
    """Start the C++ (gpi) clock on `dut.clk` and return it; None when the simulator drives `clk`
    itself (`$CDSL_SIM_CLOCK_NS` set; its period must be `period_ns`)."""
    given = os.environ.get(SIM_CLOCK_VAR)
    if given:
        if float(given) != period_ns:
            raise RuntimeError(f"the simulator's clock has a period of {given} ns, the testbench wants {period_ns} ns")
        return None
    clock = Clock(dut.clk, period_ns, unit="ns")
    clock.start()
    return clock


async def reset(dut, *, cycles: int = 2) -> None:
    """Hold `dut.rst` high for `cycles` rising edges, then release it at a falling edge."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


@dataclass(frozen=True)
class HarnessRun:
    outputs: dict[str, list[int]]  # per output port, the words captured (signed where the port is)
    cycles: int
    probes: dict[str, list[int]]  # per probe port (harness built with probes=True)

    @property
    def words(self) -> list[int]:
        """The words of the only output port."""
        if len(self.outputs) != 1:
            raise ValueError(f"the design has {len(self.outputs)} outputs: use .outputs[port]")
        return next(iter(self.outputs.values()))


@dataclass(frozen=True)
class BatchRun:
    outputs: list[list[int]]     # per sample (the only output port)
    cycles: list[int]            # per run (a run holds `samples_per_run` samples)
    samples_per_run: int

    @property
    def total_cycles(self) -> int:
        return sum(self.cycles)


@dataclass(frozen=True)
class _Port:
    name: str
    role: str
    width: int
    signed: bool
    frame: bool
    depth: int


class HarnessDriver:
    """Drives a `Harness` top level: bulk-load its memories, pulse `start`, await `done`, read back.

    Built from the harness manifest (`Harness.manifest()`, passed by the host in `$CDSL_HARNESS`).
    """

    def __init__(self, dut, manifest: dict, *, max_cycles: int = 10_000_000, period_ns: int = CLOCK_PERIOD_NS):
        self.dut = dut
        self.max_cycles = max_cycles   # a run that takes longer raises TimeoutError (a hung design)
        self.period_ns = period_ns
        self.ports = {p["name"]: _Port(**p) for p in manifest["ports"]}
        self.throttle = manifest.get("throttle", False)
        self.samples = int(manifest.get("samples", 1))  # samples a batch run holds (`run_batch`)
        self._handles: dict[str, list] = {}
        self.clock: Clock | None = None
        # Wall seconds spent writing inputs, simulating (start..done) and reading outputs.
        self.stats = {"load_s": 0.0, "sim_s": 0.0, "read_s": 0.0, "runs": 0}

    @classmethod
    def from_env(cls, dut, *, var: str = "CDSL_HARNESS", **kwargs) -> "HarnessDriver":
        """Build from the JSON `Harness.manifest_json()` the host put in environment variable `var`."""
        text = os.environ.get(var)
        if not text:
            raise RuntimeError(f"HarnessDriver.from_env: environment variable {var!r} is not set; "
                               f"pass extra_env={{{var!r}: harness.manifest_json()}} to run_cocotb")
        return cls(dut, json.loads(text), **kwargs)

    def _role(self, role: str) -> list[_Port]:
        return [p for p in self.ports.values() if p.role == role]

    def _only(self, role: str) -> str:
        ports = self._role(role)
        if len(ports) != 1:
            raise ValueError(f"the design has {len(ports)} {role} ports ({', '.join(p.name for p in ports)}): "
                             f"name them")
        return ports[0].name

    def _memory(self, name: str, *, memory: str | None = None, depth: int | None = None) -> list:
        """Handles of the words of memory `mem_<name>` (or `memory`), created once."""
        key = memory or name
        if key not in self._handles:
            mem = getattr(self.dut, memory or f"mem_{name}")
            if depth is None:
                p = self.ports[name]
                depth = p.depth * (1 if p.role == "ctrl" else self.samples)
            self._handles[key] = [mem[k] for k in range(depth)]
        return self._handles[key]

    async def reset(self, *, start_clock_: bool = True) -> None:
        """Start the clock (unless already running), idle the controls and reset the design."""
        if start_clock_ and self.clock is None:
            self.clock = await start_clock(self.dut, period_ns=self.period_ns)
        self.dut.start.value = 0
        for p in self.ports.values():
            if p.role in ("input", "ctrl"):
                getattr(self.dut, f"len_{p.name}").value = 0
            if p.role == "output":
                getattr(self.dut, f"expect_{p.name}").value = 0
        if self.throttle:
            self.dut.seed.value = 0      # 0: no throttling
        if self.samples > 1:
            self.dut.n_samples.value = 1
        await reset(self.dut)

    def load(self, port: str, words: Sequence[int]) -> None:
        """Write `words` into the memory of input (or ctrl) port `port` (no simulated time passes)."""
        t0 = time.perf_counter()
        p = self.ports[port]
        if len(words) > p.depth:
            raise ValueError(f"{len(words)!r} words exceed the harness depth {p.depth!r} of {port!r}")
        mem = self._memory(port)
        for k, word in enumerate(words):
            mem[k].value = to_unsigned(int(word), p.width)
        getattr(self.dut, f"len_{port}").value = len(words)
        self.stats["load_s"] += time.perf_counter() - t0

    def read(self, port: str) -> list[int]:
        """The words captured on output or probe port `port` in the last run."""
        t0 = time.perf_counter()
        p = self.ports[port]
        count = min(_read(getattr(self.dut, f"count_{port}")), p.depth)
        mem = self._memory(port)
        raw = [_read(mem[k]) for k in range(count)]
        self.stats["read_s"] += time.perf_counter() - t0
        return [to_signed(v, p.width) for v in raw] if p.signed else raw

    async def start_and_wait(self, *, seed: int | None = None) -> int:
        """Pulse `start`, await `done`; return the run's cycles. Must be called where writes are allowed
        (not in a ReadOnly phase); returns at a falling edge, where the next `load()` may follow."""
        t0 = time.perf_counter()
        dut = self.dut
        if seed is not None:
            dut.seed.value = seed & 0xFFFF
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        try:
            await with_timeout(RisingEdge(dut.done), self.max_cycles * self.period_ns, "ns")
        except SimTimeoutError:
            counts = {p.name: _read(getattr(dut, f"count_{p.name}")) for p in self._role("output")}
            raise TimeoutError(f"harness: `done` not raised within {self.max_cycles!r} cycles (outputs so far: "
                               f"{counts}; the design produced fewer outputs or hung)") from None
        await ReadOnly()
        cycles = _read(dut.cycles)
        await FallingEdge(dut.clk)
        self.stats["sim_s"] += time.perf_counter() - t0
        self.stats["runs"] += 1
        return cycles

    async def run(self, inputs, *, expect=None, config: Sequence[int] = (), seed: int | None = None) -> HarnessRun:
        """One run. `inputs`: {input port: words}, or a list of words for the only input port.
        `expect`: {output port: words} (a missing frame port: until `last`), or an int for the only
        output port. `config`: words for `ctrl` (packed {addr, data} payloads)."""
        if not isinstance(inputs, dict):
            inputs = {self._only("input"): inputs}
        for p in self._role("input"):
            self.load(p.name, inputs.get(p.name, ()))
        for p in self._role("ctrl"):
            self.load(p.name, config)
        self._expect(expect)
        if self.samples > 1:
            self.dut.n_samples.value = 1  # a batch harness: this one sample
        cycles = await self.start_and_wait(seed=seed)
        outputs = {p.name: self.read(p.name) for p in self._role("output")}
        probes = {p.name: self.read(p.name) for p in self._role("probe")}
        return HarnessRun(outputs, cycles, probes)

    def _expect(self, expect) -> None:
        """Set each output's expected word count (`expect`: a dict port -> words, one count for a
        one-output design, or None; 0 or missing: until the word with `last`)."""
        if expect is not None and not isinstance(expect, dict):
            expect = {self._only("output"): expect}
        expect = dict(expect or {})
        for p in self._role("output"):
            want = expect.get(p.name, 0)
            if want == 0 and not p.frame:
                raise ValueError(f"output {p.name!r} has no `last` flag: give its word count in expect")
            getattr(self.dut, f"expect_{p.name}").value = want

    async def run_batch(self, inputs: Sequence[dict], *, expect=None, config: Sequence[int] = ()) -> list[HarnessRun]:
        """Up to `self.samples` samples in one run (a harness built with `samples=K`): sample s's words
        go to `s * depth` of each input memory, the harness runs the samples one after another with
        the config words before each (each exactly as `run` would: same cycles), and Python wakes once.
        `inputs`: per sample {input port: words} (every sample the same number of words per port).
        Returns a `HarnessRun` per sample (its cycles read from `mem_cycles`)."""
        count = len(inputs)
        if not 1 <= count <= self.samples:
            raise ValueError(f"run_batch: {count!r} samples; the harness holds 1..{self.samples!r}")
        if self.samples == 1:
            return [await self.run(inputs[0], expect=expect, config=config)]
        t0 = time.perf_counter()
        for p in self._role("input"):
            rows = [sample.get(p.name, ()) for sample in inputs]
            length = len(rows[0])
            if any(len(r) != length for r in rows) or length > p.depth:
                raise ValueError(f"run_batch: every sample needs the same number (<= {p.depth!r}) of words "
                                 f"for {p.name!r}, not {sorted({len(r) for r in rows})!r}")
            mem = self._memory(p.name)
            mask = (1 << p.width) - 1
            flat = [int(w) for row in rows for w in row]
            if flat:
                to_unsigned(min(flat), p.width), to_unsigned(max(flat), p.width)  # raises if out of range
            for s, row in enumerate(rows):
                base = s * p.depth
                for k, word in enumerate(row):
                    mem[base + k].value = int(word) & mask
            getattr(self.dut, f"len_{p.name}").value = length
        self.stats["load_s"] += time.perf_counter() - t0
        for p in self._role("ctrl"):
            self.load(p.name, config)
        self._expect(expect)
        self.dut.n_samples.value = count
        await self.start_and_wait()
        t0 = time.perf_counter()
        cyc = self._memory("", memory="mem_cycles", depth=self.samples)
        cycles = [_read(cyc[s]) for s in range(count)]
        captured: dict[str, list[list[int]]] = {}
        for p in self._role("output") + self._role("probe"):
            counts = self._memory(p.name, memory=f"mem_counts_{p.name}", depth=self.samples)
            mem = self._memory(p.name)
            rows = []
            for s in range(count):
                n = min(_read(counts[s]), p.depth)
                raw = [_read(mem[s * p.depth + k]) for k in range(n)]
                rows.append([to_signed(v, p.width) for v in raw] if p.signed else raw)
            captured[p.name] = rows
        self.stats["read_s"] += time.perf_counter() - t0
        outs, probes = self._role("output"), self._role("probe")
        return [HarnessRun({p.name: captured[p.name][s] for p in outs}, cycles[s],
                           {p.name: captured[p.name][s] for p in probes}) for s in range(count)]

    async def run_samples(self, samples: Sequence[Sequence[int]], *, n_out: int,
                          samples_per_run: int = 1, seed: int | None = None) -> BatchRun:
        """Run many samples through the only input and output ports: `samples_per_run` samples are
        loaded back to back per run. With `samples_per_run=1` each entry of `cycles` is one sample's
        latency; with more, the design may overlap samples and `cycles` counts the whole run."""
        if samples_per_run < 1:
            raise ValueError(f"samples_per_run must be >= 1, not {samples_per_run!r}")
        outputs: list[list[int]] = []
        cycles: list[int] = []
        for first in range(0, len(samples), samples_per_run):
            group = samples[first:first + samples_per_run]
            words = [w for sample in group for w in sample]
            # A nonzero seed gives every run its own nonzero LFSR seed; 0 (no throttling) stays 0.
            run_seed = seed if not seed else (seed + first - 1) % 0xFFFF + 1
            run = await self.run(words, expect=n_out * len(group), seed=run_seed)
            got = run.words
            outputs += [got[k * n_out:(k + 1) * n_out] for k in range(len(group))]
            cycles.append(run.cycles)
        return BatchRun(outputs, cycles, samples_per_run)


class StreamDriver:
    """Drives the input stream `<name>__payload/valid/ready` of a DUT, one word per transfer."""

    def __init__(self, dut, name: str = "i", *, valid_prob: float = 1.0, rng: random.Random | None = None):
        if not 0.0 < valid_prob <= 1.0:
            raise ValueError(f"valid_prob must be in (0, 1], not {valid_prob!r}")
        self.dut = dut
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.width = len(self.payload)
        self.valid_prob = valid_prob
        self.rng = rng or random.Random(0)
        self.valid.value = 0

    async def send(self, words: Sequence[int], *, timeout_cycles: int | None = None) -> int:
        """Send every word; returns the number of clock cycles it took. Leaves valid low.

        Raises TimeoutError after `timeout_cycles` cycles if given (a DUT that never takes input)."""
        cycles = 0
        k = 0
        offering = False
        while k < len(words):
            await FallingEdge(self.dut.clk)
            cycles += 1
            if timeout_cycles is not None and cycles > timeout_cycles:
                raise TimeoutError(f"stream driver: {k!r} of {len(words)!r} words sent after {timeout_cycles!r} cycles")
            if not offering and self.rng.random() < self.valid_prob:
                offering = True
                self.payload.value = to_unsigned(int(words[k]), self.width)
            self.valid.value = int(offering)
            await ReadOnly()
            if offering and _read(self.ready):
                offering = False
                k += 1
        await FallingEdge(self.dut.clk)
        self.valid.value = 0
        return cycles


class StreamMonitor:
    """Receives the output stream `<name>__payload/valid/ready`, raising ready with `ready_prob`."""

    def __init__(self, dut, name: str = "o", *, signed: bool = False, ready_prob: float = 1.0,
                 rng: random.Random | None = None):
        if not 0.0 < ready_prob <= 1.0:
            raise ValueError(f"ready_prob must be in (0, 1], not {ready_prob!r}")
        self.dut = dut
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.width = len(self.payload)
        self.signed = signed
        self.ready_prob = ready_prob
        self.rng = rng or random.Random(1)
        self.ready.value = 0

    async def receive(self, count: int, *, timeout_cycles: int | None = None) -> list[int]:
        """Collect `count` words (raises TimeoutError after `timeout_cycles` cycles if given)."""
        got: list[int] = []
        cycles = 0
        while len(got) < count:
            await FallingEdge(self.dut.clk)
            cycles += 1
            if timeout_cycles is not None and cycles > timeout_cycles:
                raise TimeoutError(f"stream monitor: {len(got)!r} of {count!r} words after {timeout_cycles!r} cycles")
            ready = self.rng.random() < self.ready_prob
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and _read(self.valid):
                raw = _read(self.payload)
                got.append(to_signed(raw, self.width) if self.signed else raw)
        await FallingEdge(self.dut.clk)
        self.ready.value = 0
        return got


def tb_seed() -> int:
    """The run's seed: `$COCOTB_RANDOM_SEED` (run_cocotb always sets it), else cocotb's test seed.

    cocotb reseeds `random` per test with this seed plus a hash of the test's name; testbenches
    should make their own `random.Random(tb_seed() + k)` so that failures print one short seed.
    """
    value = os.environ.get("COCOTB_RANDOM_SEED")
    return int(value) if value else int(cocotb.RANDOM_SEED)


def write_results(data: dict, *, var: str = "CDSL_RESULTS") -> None:
    """Write `data` as JSON to the path the host passed in `$CDSL_RESULTS` (see `run_cocotb`)."""
    path = os.environ.get(var)
    if not path:
        raise RuntimeError(f"write_results: environment variable {var!r} is not set (run through run_cocotb)")
    with open(path, "w") as f:
        json.dump(data, f)
