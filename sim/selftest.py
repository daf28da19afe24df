"""The simulation flow's self-test (`cdsl doctor --smoke`): `MacStream`, a streaming multiply-accumulate,
built in Verilator inside the bulk-load harness and checked through cocotb (`cdsl.sim.selftest_bench`).

Input stream `i`: payload `{a: signed(width), b: signed(width)}` (a `lib.data.StructLayout`, so the
harness's flattening of layouts is exercised). Every `k` input words it emits one output word on
stream `o`: `sum(a[j] * b[j] for j in range(k))` as `signed(2*width + ceil(log2(k)))`, wide enough
that no sum of `k` products can wrap. While an output word waits for `o.ready`, `i.ready` is low.

Reference: `mac_stream_ref(pairs, k)` below (plain Python integers). `run_selftest()` builds
(cached) and runs it: (passed, one-line summary).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MacStream", "mac_stream_ref", "mac_layout", "acc_width", "run_selftest", "selftest_harness"]


def mac_layout(width: int) -> data.StructLayout:
    return data.StructLayout({"a": signed(width), "b": signed(width)})


def acc_width(*, k: int, width: int) -> int:
    return 2 * width + max(1, (k - 1).bit_length())


def mac_stream_ref(pairs: list[tuple[int, int]], k: int) -> list[int]:
    """Dot product of every group of `k` consecutive (a, b) pairs."""
    if len(pairs) % k:
        raise ValueError(f"mac_stream_ref: {len(pairs)!r} pairs is not a multiple of k={k!r}")
    return [sum(a * b for a, b in pairs[g:g + k]) for g in range(0, len(pairs), k)]


class MacStream(wiring.Component):
    def __init__(self, *, k: int, width: int = 8):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"MacStream: k must be a positive integer, not {k!r}")
        if not isinstance(width, int) or isinstance(width, bool) or not 2 <= width <= 32:
            raise ValueError(f"MacStream: width must be an integer in 2..32, not {width!r}")
        self._k = k
        self._width = width
        super().__init__({
            "i": In(stream.Signature(mac_layout(width))),
            "o": Out(stream.Signature(signed(acc_width(k=k, width=width)))),
        })

    def elaborate(self, platform):
        m = Module()
        k = self._k
        acc = Signal(signed(acc_width(k=k, width=self._width)))
        count = Signal(range(k))
        out_valid = Signal()

        product = self.i.payload.a * self.i.payload.b
        in_fire = self.i.valid & self.i.ready
        last = count == k - 1

        m.d.comb += [
            self.i.ready.eq(~out_valid),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(acc),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(in_fire):
            with m.If(count == 0):
                m.d.sync += acc.eq(product)
            with m.Else():
                m.d.sync += acc.eq(acc + product)
            with m.If(last):
                m.d.sync += [count.eq(0), out_valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m


def selftest_harness(*, k: int = 8, width: int = 8):
    """The harness around a MacStream that the self-test runs (4 samples per run at most, throttled)."""
    from cdsl.sim.harness import Harness

    return Harness(dut=MacStream(k=k, width=width), depths={"i": 4 * k, "o": 4}, throttle=True)


def selftest_env(harness, *, k: int, width: int, samples: int) -> dict:
    return {"CDSL_HARNESS": harness.manifest_json(), "CDSL_SMOKE_K": str(k), "CDSL_SMOKE_WIDTH": str(width),
            "CDSL_SMOKE_SAMPLES": str(samples)}


def run_selftest(*, k: int = 8, width: int = 8, samples: int = 200) -> tuple[bool, str]:
    """Build (cached) and run the self-test; (passed, one-line summary)."""
    from cdsl.hw.verilog_text import verilog_text

    from cdsl.sim.runner import run_cocotb

    harness = selftest_harness(k=k, width=width)
    text = verilog_text(harness, name="cdsl_smoke_top")
    result = run_cocotb(verilog=text, toplevel="cdsl_smoke_top", test_module="cdsl.sim.selftest_bench",
                        extra_env=selftest_env(harness, k=k, width=width, samples=samples))
    build = f"build {'cached' if result.build.hit else 'compiled'} in {result.build.seconds:.1f} s"
    if not result.passed:
        return False, f"{result.summary()}; {build}; log {result.log}"
    return True, f"{result.summary()}; {build}; simulation {result.seconds - result.build.seconds:.1f} s"
