"""The plan node of a token-wise linear map (the ViT's projections, MLP layers, patch embedding and
head) on a `TokenLinear` engine (`cdsl.hw.token_linear`), and `plan_token_linear`, which makes it.

For each token t of a frame of n tokens (1 <= n <= N, n may change per inference downstream of a
token selector), with K inputs and O outputs per token:

    y[t] = requantize(x[t] @ W.T + b[t])       b[t] = bias, or table[t] (a per-token table [N, O])

(`cdsl.contract.ref._vit.IntLinear`; the table is the patch embedding's class token and positions).

The engine reuses the MAC engine's parts: a token linear is, to the MAC unit, a dense layer over a
1x1 image of K channels (`dense_view`: a `MacEngineNode` the `MacUnit` APIs accept), run once per
token. Lanes (SIMD) fold as in the MAC engine; PE stays 1 (one output channel at a time). A MAC
unit's runtime settings (the bit-serial precision) are not exposed: they stay at their defaults
(`fixed_settings`).

Cycle model (`delay_tokens`): the engine loads the whole frame (always ready while loading), and
computes after its last word, so from the last input transfer to the last output transfer, with the
output always ready and whatever the spacing of the input words:

    n * busy(1 token) + START + FETCH + unit latency + REQUANT_LATENCY

busy(1 token) is the unit's busy cycles of the dense view (O * ceil(K / lanes) for a bit-parallel
MAC; for a bit-serial one the sum over output channels of ceil(K / lanes) * max(1, active planes)).
The steps of consecutive tokens follow each other without a gap.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cdsl.contract import codec
from cdsl.contract.intmodel import Setting
from cdsl.contract.ref._vit import IntLinear
from cdsl.hw._engine import FETCH, START
from cdsl.hw.kinds._mac import MacEngineNode, MacUnit
from cdsl.hw.plan import Foldable, Node, StreamType
from cdsl.hw.requant_unit import LATENCY as REQUANT_LATENCY
from cdsl.hw.widths import signed_width

__all__ = ["TokenLinearNode", "plan_token_linear", "linear_w_bits", "bitserial_unit"]


def linear_w_bits(linear: IntLinear) -> int:
    """The weight width of an `IntLinear` (it carries none): the narrowest signed width holding its
    weights, at least 2."""
    w = np.asarray(linear.weight, dtype=np.int64)
    return max(2, signed_width(int(w.min()), int(w.max()))) if w.size else 2


def bitserial_unit(linear: IntLinear) -> MacUnit:
    """A bit-serial MAC unit for `linear` (its per-output-channel plane masks)."""
    from cdsl.contract.ref.bitserial_mac import plane_masks
    from cdsl.hw.cores.bitserial import BitSerialUnit

    w_bits = linear_w_bits(linear)
    return BitSerialUnit(masks=tuple(int(v) for v in plane_masks(np.asarray(linear.weight, dtype=np.int64), w_bits)))


@codec.serializable("token_linear")
@dataclass(frozen=True, eq=False)
class TokenLinearNode(Node, Foldable):
    """A token-wise linear map on a `TokenLinear` engine (see the module docstring)."""

    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]  # tokens [N, K]
    out_type: StreamType  # tokens [N, O] (or (O,) when N == 1: a head's logits)
    tokens: int  # N
    lanes: int
    lanes_fixed: bool
    pe: int  # always 1
    w_bits: int
    weight: np.ndarray  # int64 [O, K]
    bias: np.ndarray | None  # int64 [O] (None with a table)
    table: np.ndarray | None  # int64 [N, O], a per-token bias
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    qmin: int
    qmax: int
    unit: MacUnit

    # ---- geometry
    @property
    def k(self) -> int:
        return int(self.weight.shape[1])

    @property
    def o(self) -> int:
        return int(self.weight.shape[0])

    @property
    def groups(self) -> int:
        """Steps per output: lane groups of the K inputs."""
        return -(-self.k // self.lanes)

    @property
    def max_lanes(self) -> int:
        return self.k

    @property
    def bias_values(self) -> np.ndarray:
        """The bias ROM: bias [O], or the table flattened [N * O] (token-major)."""
        if self.table is not None:
            return np.asarray(self.table, dtype=np.int64).reshape(-1)
        if self.bias is not None:
            return np.asarray(self.bias, dtype=np.int64).reshape(-1)
        return np.zeros(self.o, dtype=np.int64)

    def dense_view(self) -> MacEngineNode:
        """The token linear as the MAC unit sees one token of it: a dense layer over a (K, 1, 1) input
        (no bias: the engine adds the bias or the table after the reducer)."""
        in_type = self.in_types[0]
        return MacEngineNode(
            name=self.name, inputs=self.inputs, in_types=(StreamType(in_type.bits, in_type.signed, (self.k,)),),
            out_type=StreamType(self.out_type.bits, self.out_type.signed, (self.o,)),
            in_shape=(self.k, 1, 1), out_shape=(self.o, 1, 1), kernel=1, stride=1, padding=0, lanes=self.lanes,
            lanes_fixed=self.lanes_fixed, pe=1, w_bits=self.w_bits, weight=self.weight.reshape(self.o, self.k, 1, 1),
            bias=None, multipliers=self.multipliers, shifts=self.shifts, qmin=self.qmin, qmax=self.qmax,
            unit=self.unit)

    def fixed_settings(self) -> dict[str, int]:
        """The unit's runtime settings, at their defaults (not exposed inside a token linear)."""
        return {s.name: s.default for s in self.unit.settings(self.dense_view())}

    def fixed_ports(self):
        """What `MacUnit.wire` reads as the engine's setting ports: constants at the defaults."""
        from amaranth.hdl import Const

        dense = self.dense_view()
        return types.SimpleNamespace(**{s.name: Const(s.default, range(s.hi + 1)) for s in self.unit.settings(dense)})

    @property
    def acc_range(self) -> tuple[int, int]:
        """The reducer's range (the unit's, for K inputs) plus the bias or table's."""
        lo, hi = self.unit.acc_range(self.dense_view())
        b = self.bias_values
        return lo + min(0, int(b.min())), hi + max(0, int(b.max()))

    @property
    def acc_width(self) -> int:
        return signed_width(*self.acc_range)

    def token_cycles(self) -> int:
        """The unit's busy cycles for one token."""
        return self.unit.busy_cycles(self.dense_view(), self.fixed_settings())

    # ---- Node
    def component(self):
        from cdsl.hw.token_linear import TokenLinear

        return TokenLinear(node=self)

    def settings(self) -> tuple[Setting, ...]:
        return ()

    def busy_cycles(self, settings: Mapping[str, int]) -> int:
        return self.tokens * self.token_cycles()

    def delay_tokens(self, settings, tokens, kept=None) -> int:
        if not 1 <= tokens <= self.tokens:
            raise ValueError(f"{self.name}: tokens must be in 1..{self.tokens}, got {tokens!r}")
        return tokens * self.token_cycles() + START + FETCH + self.unit.latency + REQUANT_LATENCY

    def delay(self, settings) -> int:
        return self.delay_tokens(settings, self.tokens)

    interval_exact = False  # a bound: load, then compute (the next frame loads during the tail)

    def interval(self, settings) -> int:
        """A bound back to back: the whole frame loaded (one word per cycle), then computed, plus one
        cycle to return to loading."""
        return self.in_types[0].words + self.delay(settings) + 1

    def memory_bits(self) -> int:
        """The token buffer: N tokens of ceil(K / lanes) words of `lanes` activations."""
        return self.tokens * self.groups * self.lanes * self.in_types[0].bits

    def rom_bits(self) -> dict[str, int]:
        """The weight ROM (one word of `lanes` weights per step) and the bias/table ROM."""
        return {"weight_rom": self.o * self.groups * self.lanes * self.w_bits,
                "bias_rom": int(self.bias_values.size) * self.acc_width}

    def describe(self) -> str:
        table = ", per-token table" if self.table is not None else ""
        return (f"token linear ({self.unit.describe()}) {self.tokens} x {self.k} -> {self.o}{table}, "
                f"{self.lanes} lanes{' (fixed)' if self.lanes_fixed else ''}")

    def figures(self, settings) -> dict:
        return {"delay": self.delay(settings), "cycles_per_token": self.token_cycles(), "lanes": self.lanes,
                "pe": 1, "steps_per_output": self.groups, "acc_width": self.acc_width,
                "acc_range": list(self.acc_range), "interval": self.interval(settings),
                "token_buffer_bits": self.memory_bits(), **{f"{k}_bits": v for k, v in self.rom_bits().items()},
                **self.unit.figures(self.dense_view())}


def plan_token_linear(name: str, input: str, in_type: StreamType, linear: IntLinear, *, out_type: StreamType,
                      lanes: int, lanes_fixed: bool = False, unit: MacUnit | None = None,
                      table: np.ndarray | None = None) -> TokenLinearNode:
    """The node of `linear` applied to every token of the stream `input` (tokens [N, K], `in_type`),
    giving `out_type` ([N, O], or (O,) for one token). `unit`: the MAC unit (None: bit-parallel; a
    bit-serial one from `bitserial_unit(linear)`). `table` [N, O]: a per-token bias replacing
    `linear.bias`."""
    from cdsl.hw.cores.parallel import ParallelUnit

    if len(in_type.shape) != 2:
        raise ValueError(f"token linear {name!r}: expected a stream of tokens [N, K], found shape {list(in_type.shape)}")
    n, k = in_type.shape
    weight = np.asarray(linear.weight, dtype=np.int64)
    if weight.ndim != 2 or weight.shape[1] != k:
        raise ValueError(f"token linear {name!r}: weight {list(weight.shape)} does not take tokens of {k}")
    o = weight.shape[0]
    if out_type.words != n * o or out_type.shape[-1] != o:
        raise ValueError(f"token linear {name!r}: out_type {list(out_type.shape)} is not {n} tokens of {o}")
    if table is not None:
        table = np.asarray(table, dtype=np.int64)
        if table.shape != (n, o):
            raise ValueError(f"token linear {name!r}: table {list(table.shape)}, expected {[n, o]}")
    unit = ParallelUnit() if unit is None else unit
    masks = getattr(unit, "masks", None)
    if masks is not None and len(masks) != o:
        raise ValueError(f"token linear {name!r}: the unit has {len(masks)} plane masks for {o} outputs")
    rq = linear.requant
    mult = tuple(int(v) for v in np.asarray(rq.multiplier).reshape(-1))
    shift = tuple(int(v) for v in np.asarray(rq.shift).reshape(-1))
    if len(mult) not in (1, o):
        raise ValueError(f"token linear {name!r}: {len(mult)} requantization multipliers for {o} outputs")
    return TokenLinearNode(
        name=name, inputs=(input,), in_types=(in_type,), out_type=out_type, tokens=n,
        lanes=max(1, min(int(lanes), k)), lanes_fixed=lanes_fixed, pe=1, w_bits=linear_w_bits(linear), weight=weight,
        bias=None if table is not None else np.asarray(linear.bias, dtype=np.int64).reshape(-1), table=table,
        multipliers=mult, shifts=shift, qmin=int(rq.qmin), qmax=int(rq.qmax), unit=unit)
