"""The checked intermediate representation of a `.cdsl` spec.

Frozen dataclasses only; every attribute is typed (enums, ints, tuples), never a
string to be parsed later. Source spans are kept for error messages but do not
take part in equality, so `parse(print(ir)) == ir` holds.

Conventions
- Shapes exclude the batch dimension: a vector is `(K,)`, an image `(C, H, W)`,
  a token sequence `(N, D)` (N includes the class token).
- `Layer.shape` is the inferred output shape, filled in by the checker.
- A layer's `inputs` are names of model inputs or of other layers.
- Bit widths: weights and activations are 1..16 bits (1 only through `binary`).
"""

from __future__ import annotations

import enum
import heapq
from dataclasses import dataclass, field
from typing import Union

from cdsl.errors import Span

_NO_SPAN = Span(0, 0, 0, 0)


def _span() -> Span:
    return field(default=_NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- types


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """(qmin, qmax) of a `bits`-wide two's-complement (signed) or unsigned integer."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


@dataclass(frozen=True)
class FixedType:
    """A fixed-point number: `bits` total, `frac` fractional bits; real = int / 2**frac."""

    bits: int
    frac: int = 0
    signed: bool = True

    @property
    def qmin(self) -> int:
        return int_range(self.bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        return int_range(self.bits, self.signed)[1]


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Dense:
    units: int
    bias: bool = True


@dataclass(frozen=True)
class Conv2d:
    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    bias: bool = True


@dataclass(frozen=True)
class ReLU:
    pass


class PoolKind(enum.Enum):
    MAX = "max"
    AVG = "avg"


@dataclass(frozen=True)
class Pool:
    kind: PoolKind
    kernel: int
    stride: int  # the checker fills stride = kernel when the user leaves it out


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Sign:
    """Binarize: x >= 0 -> +1, x < 0 -> -1."""


@dataclass(frozen=True)
class PatchEmbed:
    """(C, H, W) -> (H/patch * W/patch + 1, dim): linear patch projection, a class token, position embeddings."""

    patch: int
    dim: int


@dataclass(frozen=True)
class Encoder:
    """Pre-norm transformer encoder block: (N, D) -> (N, D)."""

    heads: int
    mlp: int


@dataclass(frozen=True)
class ClsHead:
    """(N, D) -> (classes,): norm of the class token, then a dense layer."""

    classes: int


Op = Union[Dense, Conv2d, ReLU, Pool, Flatten, Sign, PatchEmbed, Encoder, ClsHead]

# Operations that hold weights (and so can take weight annotations).
WEIGHTED_OPS = (Dense, Conv2d, PatchEmbed, Encoder, ClsHead)

# ---------------------------------------------------------------- annotations


class Granularity(enum.Enum):
    TENSOR = "tensor"
    CHANNEL = "channel"


@dataclass(frozen=True)
class Quant:
    """Uniform quantization: weights to `w` bits, the layer's output activations to `a` bits.

    `signed=None` means: unsigned when a ReLU follows the layer, signed otherwise.
    """

    w: int | None = None
    a: int | None = None
    per: Granularity = Granularity.TENSOR
    signed: bool | None = None
    span: Span = _span()


class PrunePattern(enum.Enum):
    UNSTRUCTURED = "unstructured"
    NM = "nm"
    BLOCK = "block"


@dataclass(frozen=True)
class Prune:
    """Weight pruning. UNSTRUCTURED/BLOCK use `sparsity`; NM keeps `n` of every `m` consecutive
    weights along the input dimension. The sparsity ramps from 0 at epoch `start` to its target
    at epoch `end` (end=None: the end of training)."""

    pattern: PrunePattern
    sparsity: float = 0.0
    n: int = 0
    m: int = 0
    block: tuple[int, int] = (0, 0)
    start: int = 0
    end: int | None = None
    span: Span = _span()


@dataclass(frozen=True)
class BitSparse:
    """MSQ-style bit-level sparsity: regularize weight bit-planes toward `target` average bits."""

    target: int
    strength: float = 1e-4
    span: Span = _span()


@dataclass(frozen=True)
class Trunc:
    """TruncQuant: the runtime weight precisions (bits, MSB-aligned truncation) the layer must tolerate."""

    bits: tuple[int, ...]
    span: Span = _span()


@dataclass(frozen=True)
class BitSerial:
    """Map to a bit-serial MAC with `lanes` parallel multiply lanes."""

    lanes: int
    span: Span = _span()


@dataclass(frozen=True)
class Cim:
    """Map to compute-in-memory crossbar tiles of rows x cols cells."""

    rows: int
    cols: int
    cell: int = 1  # bits per cell
    dac: int = 1  # input bits per cycle
    adc: int = 8  # ADC resolution
    scale: Granularity = Granularity.CHANNEL  # CHANNEL = per column (ColumnQuant), TENSOR = one step
    noise: float = 0.0  # relative std-dev of the analog partial sums during training
    span: Span = _span()


@dataclass(frozen=True)
class Binary:
    """Binary (+1/-1) weights; inputs must be binary too (a `sign` layer or binary input)."""

    span: Span = _span()


@dataclass(frozen=True)
class Aqfp:
    """SupeRBNN-style AQFP stochastic accumulation: crossbar groups of `group` inputs,
    bitstream length `T` cycles, LFSR `seed`."""

    group: int
    T: int
    seed: int = 1
    span: Span = _span()


@dataclass(frozen=True)
class Tokens:
    """HeatViT token selector in front of an encoder block."""

    keep: float
    heads: int = 1
    span: Span = _span()


@dataclass(frozen=True)
class Annotations:
    """At most one of each annotation; printed in this field order."""

    quant: Quant | None = None
    prune: Prune | None = None
    bitsparse: BitSparse | None = None
    trunc: Trunc | None = None
    bitserial: BitSerial | None = None
    cim: Cim | None = None
    binary: Binary | None = None
    aqfp: Aqfp | None = None
    tokens: Tokens | None = None

    def present(self) -> tuple[str, ...]:
        """Names of the annotations that are set, in canonical order."""
        return tuple(n for n in ANNOTATION_NAMES if getattr(self, n) is not None)


ANNOTATION_NAMES = ("quant", "prune", "bitsparse", "trunc", "bitserial", "cim", "binary", "aqfp", "tokens")

# ---------------------------------------------------------------- graph


@dataclass(frozen=True)
class Input:
    name: str
    dtype: FixedType
    shape: tuple[int, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Layer:
    name: str
    op: Op
    inputs: tuple[str, ...]
    annotations: Annotations = Annotations()
    shape: tuple[int, ...] = ()  # inferred output shape
    span: Span = _span()


@dataclass(frozen=True)
class Model:
    name: str
    inputs: tuple[Input, ...]
    layers: tuple[Layer, ...]  # in source order; the checker guarantees the graph is acyclic
    outputs: tuple[str, ...]
    span: Span = _span()

    def layer(self, name: str) -> Layer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    def shape_of(self, name: str) -> tuple[int, ...]:
        for inp in self.inputs:
            if inp.name == name:
                return inp.shape
        return self.layer(name).shape

    def consumers(self, name: str) -> tuple[Layer, ...]:
        return tuple(lay for lay in self.layers if name in lay.inputs)

    def topo_order(self) -> tuple[Layer, ...]:
        """Layers in an order where every layer comes after its inputs (source order among equals).

        Kahn's algorithm, linear in layers + edges.
        """
        known = {i.name for i in self.inputs}
        waiting = {lay.name: sum(1 for i in lay.inputs if i not in known) for lay in self.layers}
        users: dict[str, list[int]] = {}
        for idx, lay in enumerate(self.layers):
            for i in lay.inputs:
                if i not in known:
                    users.setdefault(i, []).append(idx)
        ready = [idx for idx, lay in enumerate(self.layers) if waiting[lay.name] == 0]
        heapq.heapify(ready)
        order: list[Layer] = []
        while ready:
            lay = self.layers[heapq.heappop(ready)]
            order.append(lay)
            for idx in users.get(lay.name, ()):
                user = self.layers[idx].name
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, idx)
        if len(order) != len(self.layers):
            raise ValueError("cycle in model graph")  # the checker reports this as a CdslError first
        return tuple(order)


# ---------------------------------------------------------------- training


class Optimizer(enum.Enum):
    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"


@dataclass(frozen=True)
class Stage:
    """A training stage: `epochs` epochs with only the `compress` annotations active
    (None: all of the layer's annotations; () : none, i.e. float training)."""

    name: str
    epochs: int
    lr: float | None = None  # None: the train section's lr
    compress: tuple[str, ...] | None = None
    span: Span = _span()


@dataclass(frozen=True)
class Train:
    data: str = "digits"  # "digits" (bundled 8x8 digits) or a path to an .npz with arrays x, y
    epochs: int = 30  # total; equals the sum of stage epochs when stages are given
    batch: int = 64
    optimizer: Optimizer = Optimizer.ADAM
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    stages: tuple[Stage, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class Spec:
    model: Model
    train: Train = Train()
