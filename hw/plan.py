"""The hardware plan of an IntModel: one engine per compute layer, widths, lanes, cycle model.

Pure Python (no Amaranth): `cdsl.hw.network.Network` elaborates a plan, `cdsl gen` writes it
into the manifest, and the tests hold its cycle model against simulation.

Engines
- DENSE / CONV (`LayerEngine` with a `Mac` or a `BitSerialMac`): a dense layer is a conv
  over a 1x1 image with K channels and a 1x1 kernel. Lanes run over input channels: a step
  reads `lanes` channels at one kernel position, so steps = ceil(Ci / lanes) * k * k.
- MAXPOOL / AVGPOOL (`LayerEngine` with a `PoolReduce`): one element per cycle, k * k steps.
- RELU (`Relu`) only where the export leaves a ReLU that is not the identity (its input
  type is signed); otherwise the ReLU is fused (the layer's qmin = 0 already clamps).
- Flatten is free ((C, H, W) row-major order is the stream order).

Cycle model (single inference, inputs offered every cycle, outputs always taken): counting
from the cycle of the first input transfer to the cycle of the last output transfer,
inclusive, an inference takes `n_in + sum(engine_delay(e))` cycles, where n_in is the
number of input activations and `engine_delay` = cycles from an engine's last input
transfer to its last output transfer = mac_cycles + START + FETCH + reducer latency
(+ Requant.LATENCY unless max pooling). mac_cycles = outputs * steps for bit-parallel and
pooling engines; for bit-serial engines, sum over outputs of steps * max(1, active planes)
(`cdsl.contract.ref.bitserial_mac`).

Lanes: `bitserial(lanes=L)` fixes a layer's lanes. Other dense/conv layers get
`default_lanes`, or, given `target_cycles`, FINN-style folding: start every free layer at 1
lane and double the lanes of the free layer with the most MAC cycles until the predicted
cycles per inference meet the target or no free layer can grow (lanes never exceed Ci).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

import numpy as np

from cdsl.dsl import ir
from cdsl.hw._checks import check_int, signed_width
from cdsl.contract.ref import bitserial_mac as bs_ref
from cdsl.contract.ref.pool import avg_multiplier
from cdsl.contract.intmodel import IntLayer, IntModel

START = 1  # the cycle after the last input transfer: the engine pulses the window generator's start
FETCH = 1  # the cycle the first step is offered and read from the frame buffer / weight ROM
MAC_LATENCY = 1  # Mac, BitSerialMac and PoolReduce: result valid 1 cycle after the last step
REQUANT_LATENCY = 2  # Requant.LATENCY


# Annotations whose arithmetic the engines here do not implement (their own blocks will).
_NO_ENGINE_YET = ("cim", "binary", "aqfp", "tokens")


class UnsupportedModel(ValueError):
    """The IntModel uses something the hardware generator cannot build (yet)."""


class EngineKind(enum.Enum):
    DENSE = "dense"
    CONV = "conv"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    RELU = "relu"


@dataclass(frozen=True, eq=False)
class EngineConfig:
    """Everything one engine needs; shapes are (C, H, W) (dense: (K, 1, 1))."""

    name: str
    kind: EngineKind
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    in_bits: int
    in_signed: bool
    out_bits: int
    out_signed: bool
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    lanes: int = 1
    bitserial: bool = False
    w_bits: int | None = None
    weight: np.ndarray | None = None  # int64 [Co, Ci, k, k]
    bias: np.ndarray | None = None  # int64 [Co]
    multipliers: tuple[int, ...] = ()
    shifts: tuple[int, ...] = ()
    qmin: int = 0
    qmax: int = 0

    @property
    def weighted(self) -> bool:
        return self.kind in (EngineKind.DENSE, EngineKind.CONV)

    @property
    def pooling(self) -> bool:
        return self.kind in (EngineKind.MAXPOOL, EngineKind.AVGPOOL)

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def groups(self) -> int:
        """Lane groups of input channels per kernel position (1 for pooling: channel = output channel)."""
        return 1 if self.pooling else -(-self.in_shape[0] // self.lanes)

    @property
    def steps(self) -> int:
        """Steps (MAC transfers) per output."""
        return self.groups * self.kernel * self.kernel

    @property
    def frame_depth(self) -> int:
        """Words of the frame buffer (each word holds `lanes` activations)."""
        c, h, w = self.in_shape
        return (c if self.pooling else self.groups) * h * w

    @property
    def in_range(self) -> tuple[int, int]:
        return ir.int_range(self.in_bits, self.in_signed)

    @property
    def acc_range(self) -> tuple[int, int]:
        """Bounds of the accumulator (dot product + bias, or window sum) from bit growth."""
        xlo, xhi = self.in_range
        if self.pooling:
            n = self.kernel * self.kernel
            return (min(xlo, n * xlo), max(xhi, n * xhi))
        if not self.weighted:
            return (xlo, xhi)
        wlo, whi = ir.int_range(self.w_bits, True)
        corners = [xlo * wlo, xlo * whi, xhi * wlo, xhi * whi]
        k = self.in_shape[0] * self.kernel * self.kernel
        blo = min(0, int(self.bias.min())) if self.bias is not None and self.bias.size else 0
        bhi = max(0, int(self.bias.max())) if self.bias is not None and self.bias.size else 0
        return (k * min(corners) + blo, k * max(corners) + bhi)

    @property
    def acc_width(self) -> int:
        lo, hi = self.acc_range
        return signed_width(lo, hi)

    def masks(self) -> np.ndarray:
        """Per-output-channel plane masks (bit-serial engines)."""
        return bs_ref.plane_masks(self.weight.reshape(self.weight.shape[0], -1), self.w_bits)

    def manifest(self) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind.value,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
            "in_type": {"bits": self.in_bits, "signed": self.in_signed},
            "out_type": {"bits": self.out_bits, "signed": self.out_signed},
        }
        if self.kind is not EngineKind.RELU:
            out.update(kernel=self.kernel, stride=self.stride, padding=self.padding, lanes=self.lanes,
                       steps_per_output=self.steps, acc_width=self.acc_width, acc_range=list(self.acc_range),
                       frame_words=self.frame_depth)
        if self.weighted:
            out.update(bitserial=self.bitserial, w_bits=self.w_bits, weight_words=self.weight.shape[0] * self.steps)
            if self.bitserial:
                out["plane_masks"] = [int(v) for v in self.masks()]
        if self.multipliers:
            out["requant"] = {"multiplier": list(self.multipliers), "shift": list(self.shifts),
                              "qmin": self.qmin, "qmax": self.qmax}
        return out


@dataclass(frozen=True, eq=False)
class NetworkPlan:
    name: str
    in_name: str
    in_shape: tuple[int, ...]
    in_bits: int
    in_signed: bool
    engines: tuple[EngineConfig, ...]

    @property
    def out_bits(self) -> int:
        return self.engines[-1].out_bits

    @property
    def out_signed(self) -> bool:
        return self.engines[-1].out_signed

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return self.engines[-1].n_out

    def bitserial_engines(self) -> tuple[EngineConfig, ...]:
        return tuple(e for e in self.engines if e.bitserial)


# ---------------------------------------------------------------- cycle model


def _precision(cfg: EngineConfig, precisions: dict[str, int] | None) -> int:
    p = (precisions or {}).get(cfg.name, 0)
    return cfg.w_bits if p == 0 or p > cfg.w_bits else p


def mac_cycles(cfg: EngineConfig, *, precision: int = 0) -> int:
    """Cycles the engine's MAC/reducer is busy per inference (precision 0 = full)."""
    if cfg.kind is EngineKind.RELU:
        return 0
    pixels = cfg.out_shape[1] * cfg.out_shape[2]
    if cfg.pooling or not cfg.bitserial:
        return cfg.n_out * cfg.steps
    p = _precision(cfg, {cfg.name: precision})
    per_row = [cfg.steps * max(1, len(bs_ref.active_planes(int(m), cfg.w_bits, p))) for m in cfg.masks()]
    return pixels * sum(per_row)


def engine_delay(cfg: EngineConfig, *, precision: int = 0) -> int:
    """Cycles from the engine's last input transfer to its last output transfer (single inference)."""
    if cfg.kind is EngineKind.RELU:
        return 0  # combinational
    requant = 0 if cfg.kind is EngineKind.MAXPOOL else REQUANT_LATENCY
    return mac_cycles(cfg, precision=precision) + START + FETCH + MAC_LATENCY + requant


def network_cycles(plan: NetworkPlan, *, precisions: dict[str, int] | None = None) -> int:
    """Predicted cycles per inference: first input transfer to last output transfer, inclusive."""
    return plan.n_in + sum(engine_delay(e, precision=(precisions or {}).get(e.name, 0)) for e in plan.engines)


def cycle_report(plan: NetworkPlan, *, precisions: dict[str, int] | None = None) -> dict:
    return {
        "cycles_per_inference": network_cycles(plan, precisions=precisions),
        "input_words": plan.n_in,
        "engines": {
            e.name: {"mac_cycles": mac_cycles(e, precision=(precisions or {}).get(e.name, 0)),
                     "delay": engine_delay(e, precision=(precisions or {}).get(e.name, 0))}
            for e in plan.engines
        },
    }


# ---------------------------------------------------------------- planning


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 1:
        return (shape[0], 1, 1)
    if len(shape) == 3:
        return tuple(shape)  # type: ignore[return-value]
    raise UnsupportedModel(f"tensor shape {shape!r} is neither (K,) nor (C, H, W)")


def _weighted_config(lay: IntLayer, in_shape, lanes: int) -> EngineConfig:
    if lay.weight is None or lay.requant is None or lay.w_bits is None:
        raise UnsupportedModel(f"layer {lay.name!r} has no integer weights/requant in the IntModel")
    dense = isinstance(lay.op, ir.Dense)
    weight = np.asarray(lay.weight, dtype=np.int64)
    if dense:
        if in_shape[1:] != (1, 1) and in_shape[0] * in_shape[1] * in_shape[2] == weight.shape[1]:
            in_shape = (weight.shape[1], 1, 1)  # dense straight after a (C,H,W) tensor: row-major flatten
        weight = weight.reshape(weight.shape[0], weight.shape[1], 1, 1)
    qt = lay.out_type
    rq = lay.requant
    channels = weight.shape[0]
    mult = tuple(int(v) for v in np.asarray(rq.multiplier).reshape(-1))
    shift = tuple(int(v) for v in np.asarray(rq.shift).reshape(-1))
    if len(mult) not in (1, channels):
        raise UnsupportedModel(f"layer {lay.name!r}: {len(mult)} requant multipliers for {channels} channels")
    bitserial = lay.annotations.bitserial is not None
    ci = in_shape[0]
    return EngineConfig(
        name=lay.name,
        kind=EngineKind.DENSE if dense else EngineKind.CONV,
        in_shape=in_shape,
        out_shape=_chw(lay.out_shape),
        in_bits=lay.in_types[0].bits,
        in_signed=lay.in_types[0].signed,
        out_bits=qt.bits,
        out_signed=qt.signed,
        kernel=1 if dense else lay.op.kernel,
        stride=1 if dense else lay.op.stride,
        padding=0 if dense else lay.op.padding,
        lanes=max(1, min(lanes, ci)),
        bitserial=bitserial,
        w_bits=lay.w_bits,
        weight=weight,
        bias=None if lay.bias is None else np.asarray(lay.bias, dtype=np.int64).reshape(-1),
        multipliers=mult,
        shifts=shift,
        qmin=rq.qmin,
        qmax=rq.qmax,
    )


def _pool_config(lay: IntLayer, in_shape) -> EngineConfig:
    op = lay.op
    kind = EngineKind.MAXPOOL if op.kind is ir.PoolKind.MAX else EngineKind.AVGPOOL
    qt = lay.out_type
    cfg = dict(name=lay.name, kind=kind, in_shape=in_shape, out_shape=_chw(lay.out_shape),
               in_bits=lay.in_types[0].bits, in_signed=lay.in_types[0].signed,
               out_bits=qt.bits, out_signed=qt.signed, kernel=op.kernel, stride=op.stride)
    if kind is EngineKind.AVGPOOL:
        if lay.requant is not None:
            mult, shift = int(np.asarray(lay.requant.multiplier).reshape(-1)[0]), int(np.asarray(lay.requant.shift).reshape(-1)[0])
            qmin, qmax = lay.requant.qmin, lay.requant.qmax
        else:
            mult, shift = avg_multiplier(op.kernel)
            qmin, qmax = qt.qmin, qt.qmax
        cfg.update(multipliers=(mult,), shifts=(shift,), qmin=qmin, qmax=qmax)
    return EngineConfig(**cfg)


def plan_network(intmodel: IntModel, *, default_lanes: int = 8, target_cycles: int | None = None,
                 lanes: dict[str, int] | None = None) -> NetworkPlan:
    """The engines of `intmodel` (see the module docstring for lanes and folding).

    `lanes` overrides per layer name (beats the spec's bitserial(lanes=...)).
    """
    check_int("default_lanes", default_lanes, lo=1)
    if target_cycles is not None:
        check_int("target_cycles", target_cycles, lo=1)
    if len(intmodel.inputs) != 1 or len(intmodel.outputs) != 1:
        raise UnsupportedModel(f"the network generator needs one input and one output, got "
                               f"{len(intmodel.inputs)} inputs and {len(intmodel.outputs)} outputs")
    inp = intmodel.inputs[0]
    shape: tuple[int, ...] = _chw(tuple(inp.shape))
    current = inp.name
    overrides = dict(lanes or {})
    engines: list[EngineConfig] = []
    fixed: set[str] = set()
    for lay in intmodel.layers:
        if tuple(lay.inputs) != (current,):
            raise UnsupportedModel(f"layer {lay.name!r}: only a chain of layers is supported "
                                   f"(it reads {lay.inputs!r}, the chain is at {current!r})")
        op = lay.op
        unsupported = [n for n in _NO_ENGINE_YET if getattr(lay.annotations, n) is not None]
        if unsupported:
            raise UnsupportedModel(f"layer {lay.name!r}: @{unsupported[0]} has no hardware engine yet "
                                   f"(supported: quant, prune, bitsparse, trunc, bitserial)")
        if isinstance(op, (ir.Dense, ir.Conv2d)):
            spec_lanes = lay.annotations.bitserial.lanes if lay.annotations.bitserial is not None else None
            chosen = overrides.get(lay.name, spec_lanes)
            if chosen is not None:
                fixed.add(lay.name)
            start = chosen if chosen is not None else (1 if target_cycles is not None else default_lanes)
            cfg = _weighted_config(lay, shape, start)
            engines.append(cfg)
        elif isinstance(op, ir.Pool):
            engines.append(_pool_config(lay, shape))
        elif isinstance(op, ir.ReLU):
            in_type = lay.in_types[0]
            if in_type.signed:  # not fused: a signed input needs the clamp
                engines.append(EngineConfig(name=lay.name, kind=EngineKind.RELU, in_shape=shape, out_shape=shape,
                                            in_bits=in_type.bits, in_signed=True,
                                            out_bits=lay.out_type.bits, out_signed=lay.out_type.signed))
        elif isinstance(op, ir.Flatten):
            pass
        else:
            raise UnsupportedModel(f"layer {lay.name!r}: {type(op).__name__} has no hardware engine yet")
        shape = _chw(tuple(lay.out_shape))
        current = lay.name
    if current != intmodel.outputs[0]:
        raise UnsupportedModel(f"the output {intmodel.outputs[0]!r} is not the last layer of the chain")
    if not engines:
        raise UnsupportedModel("the model has no compute layer")
    plan = NetworkPlan(name=intmodel.name, in_name=inp.name, in_shape=tuple(inp.shape), in_bits=inp.qtype.bits,
                       in_signed=inp.qtype.signed, engines=tuple(engines))
    if target_cycles is not None:
        plan = fold(plan, target_cycles=target_cycles, fixed=fixed)
    return plan


def fold(plan: NetworkPlan, *, target_cycles: int, fixed: set[str] = frozenset()) -> NetworkPlan:
    """Double the lanes of the busiest free weighted engine until the target is met or nothing can grow."""
    engines = list(plan.engines)
    while network_cycles(replace(plan, engines=tuple(engines))) > target_cycles:
        free = [(mac_cycles(e), i) for i, e in enumerate(engines)
                if e.weighted and e.name not in fixed and e.lanes < e.in_shape[0]]
        if not free:
            break
        _, i = max(free)
        e = engines[i]
        engines[i] = replace(e, lanes=min(2 * e.lanes, e.in_shape[0]))
    return replace(plan, engines=tuple(engines))
