"""The checked intermediate representation of a `.cdsl` spec.

Frozen dataclasses only; every attribute is typed (enums, ints, tuples), never a
string to be parsed later. Source spans are kept for error messages but do not
take part in equality, so `parse(print(ir)) == ir` holds.

Conventions
- Shapes exclude the batch dimension: a vector is `(K,)`, an image `(C, H, W)`,
  a token sequence `(N, D)` (N includes the class token).
- `Layer.shape` is the inferred output shape, filled in by the checker.
- A layer's `inputs` are names of model inputs or of other layers, as many as its op's `arity`.
- Bit widths: weights and activations are 1..16 bits (1 only through `binary`).
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import ClassVar, TypeVar

from cdsl.errors import Span

from .param import Param, bool_param, int_param

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
#
# An op is a frozen dataclass whose fields are its parameters, subclassing `Op`: its class
# attributes and methods are everything the language layer knows about it (source names,
# parameter schema, arity, shape rule, weight matrices, MACs, which annotations apply, bit
# widths, printing). `@register` enters it in `OPS` under its source names; the checker, the
# printer and the analysis look ops up there and never name an op class. A new op is one class.

Shape = tuple[int, ...]


def shape_str(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


@dataclass(frozen=True)
class Operand:
    """One input of a layer as a shape rule sees it: the tensor's name (for messages) and shape."""

    name: str
    shape: Shape

    def described(self) -> str:
        return f"'{self.name}' has shape {shape_str(self.shape)}"


class ShapeError(Exception):
    """A shape rule's refusal: what is wrong, what was expected, and where the checker points:
    at the parameter `param`, else at the input number `operand`, else at the op's name."""

    def __init__(self, message: str, *, expected: str, param: str | None = None, operand: int | None = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.param = param
        self.operand = operand


class Op:
    """The rules of an operation. The defaults fit an op without weights or parameters that keeps
    its input's shape and width (relu); subclasses override what differs."""

    names: ClassVar[tuple[str, ...]]  # source names (two for Pool, whose `kind` is in the name)
    schema: ClassVar[tuple[Param, ...]] = ()  # keyword parameters, named like the fields
    arity: ClassVar[int] = 1  # input tensors, written first and positionally
    weighted: ClassVar[bool] = False  # holds weight matrices
    applies: ClassVar[frozenset[str]] = frozenset()  # the annotations this op takes
    # annotation -> the only parameters it takes on this op, where it does not take all of them
    only_params: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})

    @classmethod
    def build(cls, name: str, values: Mapping[str, object]) -> Op:
        """The op written as `name`, from its checked parameter values (absent: the field default)."""
        return cls(**values)

    @property
    def source_name(self) -> str:
        return self.names[0]

    def written_params(self) -> dict[str, object]:
        """The parameters as the canonical text writes them: schema order, defaults left out."""
        defaults = {f.name: f.default for f in fields(self)}
        values = {p.name: getattr(self, p.name) for p in self.schema}
        return {k: v for k, v in values.items() if v != defaults[k]}

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        """The output shape for inputs `ins` (as many as `arity`); a `ShapeError` if they do not fit."""
        return ins[0].shape

    def weight_matrices(self, ins: tuple[Shape, ...]) -> list[tuple[int, int]]:
        """The (outputs, inputs) shape of every weight matrix, as the hardware sees it."""
        return []

    def other_params(self, ins: tuple[Shape, ...], out: Shape) -> int:
        """Parameters outside the weight matrices: biases, norms, class token, embeddings."""
        return 0

    def macs(self, ins: tuple[Shape, ...], out: Shape, annotations: Annotations) -> int:
        """Multiply-accumulates per inference (`ins` as counted: fewer tokens after a `@tokens` selector
        upstream, `counted_out`)."""
        return 0

    def counted_out(self, ins: tuple[Shape, ...], out: Shape, annotations: Annotations) -> Shape:
        """The output shape the MAC estimate charges the layers that read this one, given its inputs as
        counted: `out`, or fewer tokens where a token stream stays shortened (an encoder after a selector)."""
        return out

    def out_bits(self, in_bits: tuple[int | None, ...], a: int | None) -> int | None:
        """The output activation width (None: float) from the input widths and `@quant(a=...)`:
        `a` if given, else the widest input's width (float if any input is float)."""
        if a is not None:
            return a
        return None if None in in_bits else max(in_bits)

    def binary_out(self, binary: tuple[bool, ...]) -> bool:
        """Whether the output is binary (+1/-1) given which inputs are: by default it is not."""
        return False


OPS: dict[str, type[Op]] = {}
_OpClass = TypeVar("_OpClass", bound=type[Op])


def register(cls: _OpClass) -> _OpClass:
    """Enter an op class in `OPS` under each of its source names (in definition order)."""
    for name in cls.names:
        assert name not in OPS, name
        OPS[name] = cls
    return cls


def _need_rank(op: Op, x: Operand, rank: int, form: str, hint: str = "") -> None:
    if len(x.shape) != rank:
        raise ShapeError(f"{op.source_name} needs a {form} input, but {x.described()}{hint}", expected=f"a {form} input")


def _window_out(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class WeightedOp(Op):
    """An op with weight matrices: it takes @quant and @prune, its output is float unless
    `@quant(a=...)` quantizes it, and by default it uses each weight once per inference."""

    weighted = True
    applies = frozenset({"quant", "prune"})

    def out_bits(self, in_bits: tuple[int | None, ...], a: int | None) -> int | None:
        return a

    def macs(self, ins: tuple[Shape, ...], out: Shape, annotations: Annotations) -> int:
        return sum(rows * cols for rows, cols in self.weight_matrices(ins))

    def max_lanes(self, ins: tuple[Shape, ...]) -> tuple[int, str]:
        """The most `@bitserial` lanes, and what they run over (for the error): a MAC engine's lanes run
        over input channels."""
        return ins[0][0], "input channels"


class LinearsOp(WeightedOp):
    """A weighted op planned as token linears (the ViT kinds): `@bitserial(lanes=L)` maps every one of its
    weight matrices to a bit-serial MAC with L lanes over that matrix's inputs."""

    applies = WeightedOp.applies | {"bitserial"}

    def max_lanes(self, ins: tuple[Shape, ...]) -> tuple[int, str]:
        return min(cols for _, cols in self.weight_matrices(ins)), "inputs of the narrowest linear sub-layer"


# Weighted ops that map to a MAC engine or a crossbar also take the hardware annotations.
_ENGINE_ANNOTATIONS = WeightedOp.applies | {"bitsparse", "trunc", "bitserial", "cim", "binary", "aqfp"}


@register
@dataclass(frozen=True)
class Dense(WeightedOp):
    """[K] -> [units]: a K x units matrix (K*units MACs) and a bias."""

    units: int
    bias: bool = True

    names = ("dense",)
    schema = (int_param("units", True, hint="units=N"), bool_param("bias"))
    applies = _ENGINE_ANNOTATIONS

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        (x,) = ins
        _need_rank(self, x, 1, "1-D [K]", "; flatten first" if len(x.shape) == 3 else "")
        return (self.units,)

    def weight_matrices(self, ins: tuple[Shape, ...]) -> list[tuple[int, int]]:
        return [(self.units, ins[0][0])]

    def other_params(self, ins: tuple[Shape, ...], out: Shape) -> int:
        return self.units if self.bias else 0


@register
@dataclass(frozen=True)
class Conv2d(WeightedOp):
    """[C, H, W] -> [channels, Ho, Wo]: a channels x (C*k*k) matrix (C*k*k*channels*Ho*Wo MACs)
    and a bias."""

    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    bias: bool = True

    names = ("conv2d",)
    schema = (
        int_param("channels", True, hint="channels=N"),
        int_param("kernel", True, hi=1024, hint="kernel=K"),
        int_param("stride", hi=1024),
        int_param("padding", lo=0, hi=1024),
        bool_param("bias"),
    )
    applies = _ENGINE_ANNOTATIONS

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        (x,) = ins
        _need_rank(self, x, 3, "[C, H, W]")
        _, h, w = x.shape
        k, s, p = self.kernel, self.stride, self.padding
        if k > h + 2 * p or k > w + 2 * p:
            raise ShapeError(
                f"conv2d kernel {k} does not fit the input: {x.described()}, padded by {p}",
                expected=f"a kernel of at most {min(h, w) + 2 * p}", param="kernel",
            )
        return (self.channels, _window_out(h, k, s, p), _window_out(w, k, s, p))

    def weight_matrices(self, ins: tuple[Shape, ...]) -> list[tuple[int, int]]:
        return [(self.channels, ins[0][0] * self.kernel * self.kernel)]

    def other_params(self, ins: tuple[Shape, ...], out: Shape) -> int:
        return self.channels if self.bias else 0

    def macs(self, ins: tuple[Shape, ...], out: Shape, annotations: Annotations) -> int:
        _, ho, wo = out
        return ins[0][0] * self.kernel * self.kernel * self.channels * ho * wo


@register
@dataclass(frozen=True)
class ReLU(Op):
    """max(x, 0): same shape and width; binary +1/-1 becomes +1/0, so not binary."""

    names = ("relu",)


@register
@dataclass(frozen=True)
class Sign(Op):
    """Binarize: x >= 0 -> +1, x < 0 -> -1."""

    names = ("sign",)

    def out_bits(self, in_bits: tuple[int | None, ...], a: int | None) -> int | None:
        return 1

    def binary_out(self, binary: tuple[bool, ...]) -> bool:
        return True


@register
@dataclass(frozen=True)
class Flatten(Op):
    """Any shape -> [product]; values pass through unchanged (binary ones stay binary)."""

    names = ("flatten",)

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        return (math.prod(ins[0].shape),)

    def binary_out(self, binary: tuple[bool, ...]) -> bool:
        return binary[0]


class PoolKind(enum.Enum):
    MAX = "max"
    AVG = "avg"


@register
@dataclass(frozen=True)
class Pool(Op):
    """[C, H, W] -> [C, Ho, Wo], written `maxpool` or `avgpool` (the `kind`). A max of binary
    values is binary; an average is not."""

    kind: PoolKind
    kernel: int
    stride: int  # `build` fills stride = kernel when the user leaves it out

    names = ("maxpool", "avgpool")
    schema = (int_param("kernel", True, hi=1024, hint="kernel=K"), int_param("stride", hi=1024))

    @classmethod
    def build(cls, name: str, values: Mapping[str, object]) -> Op:
        kernel = values["kernel"]
        return cls(PoolKind(name.removesuffix("pool")), kernel, values.get("stride", kernel))

    @property
    def source_name(self) -> str:
        return f"{self.kind.value}pool"

    def written_params(self) -> dict[str, object]:
        return {"kernel": self.kernel} | ({"stride": self.stride} if self.stride != self.kernel else {})

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        (x,) = ins
        _need_rank(self, x, 3, "[C, H, W]")
        c, h, w = x.shape
        k, s = self.kernel, self.stride
        if k > h or k > w:
            raise ShapeError(
                f"{self.source_name} kernel {k} is larger than the input: {x.described()}",
                expected=f"a kernel of at most {min(h, w)}",
            )
        return (c, _window_out(h, k, s), _window_out(w, k, s))

    def binary_out(self, binary: tuple[bool, ...]) -> bool:
        return self.kind is PoolKind.MAX and binary[0]


@register
@dataclass(frozen=True)
class PatchEmbed(LinearsOp):
    """(C, H, W) -> (H/patch * W/patch + 1, dim): linear patch projection, a class token, position
    embeddings. A dim x (C*patch*patch) matrix applied to every patch."""

    patch: int
    dim: int

    names = ("patch_embed",)
    schema = (int_param("patch", True, hi=1024, hint="patch=P"), int_param("dim", True, hint="dim=D"))

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        (x,) = ins
        _need_rank(self, x, 3, "[C, H, W]")
        _, h, w = x.shape
        if h % self.patch or w % self.patch:
            raise ShapeError(
                f"patch_embed: patch {self.patch} does not divide the image: {x.described()}",
                expected=f"a patch size dividing both {h} and {w}",
            )
        return ((h // self.patch) * (w // self.patch) + 1, self.dim)

    def weight_matrices(self, ins: tuple[Shape, ...]) -> list[tuple[int, int]]:
        return [(self.dim, ins[0][0] * self.patch * self.patch)]

    def other_params(self, ins: tuple[Shape, ...], out: Shape) -> int:
        return self.dim + self.dim + out[0] * self.dim  # bias, class token, position embeddings

    def macs(self, ins: tuple[Shape, ...], out: Shape, annotations: Annotations) -> int:
        patches = out[0] - 1
        return patches * ins[0][0] * self.patch * self.patch * self.dim


def _tokens_after(n: int, tokens: Tokens | None) -> int:
    """Tokens an encoder computes on after a `@tokens` selector: the class token, ceil(keep*(N-1))
    kept patch tokens and one package token for the rest, at most N."""
    if tokens is None:
        return n
    kept = math.ceil(tokens.keep * (n - 1))
    return min(n, 1 + kept + (1 if kept < n - 1 else 0))


@register
@dataclass(frozen=True)
class Encoder(LinearsOp):
    """Pre-norm transformer encoder block: (N, D) -> (N, D). Weights: qkv, attention out, mlp in,
    mlp out. MACs: N*(3D*D + D*D + 2*D*M) + 2*N*N*D (attention scores and weighted sum), N counted
    after a `@tokens` selector (whose own small scoring MLP is not counted), its own or an earlier
    block's (the kept tokens flow on: `counted_out`)."""

    heads: int
    mlp: int

    names = ("encoder",)
    schema = (int_param("heads", True, hi=1024, hint="heads=H"), int_param("mlp", True, hint="mlp=M"))
    applies = LinearsOp.applies | {"tokens"}

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        (x,) = ins
        _need_rank(self, x, 2, "[N, D] (tokens)", "; use patch_embed first" if len(x.shape) == 3 else "")
        if x.shape[1] % self.heads:
            raise ShapeError(
                f"encoder: the width {x.shape[1]} of {shape_str(x.shape)} (from '{x.name}') is not divisible by heads={self.heads}",
                expected=f"heads dividing {x.shape[1]}",
            )
        return x.shape

    def weight_matrices(self, ins: tuple[Shape, ...]) -> list[tuple[int, int]]:
        d = ins[0][1]
        return [(3 * d, d), (d, d), (self.mlp, d), (d, self.mlp)]

    def other_params(self, ins: tuple[Shape, ...], out: Shape) -> int:
        d = ins[0][1]
        return 2 * d + 3 * d + d + 2 * d + self.mlp + d  # ln1, qkv bias, proj bias, ln2, fc1 bias, fc2 bias

    def macs(self, ins: tuple[Shape, ...], out: Shape, annotations: Annotations) -> int:
        n, d = ins[0]
        n = _tokens_after(n, annotations.tokens)
        return n * (3 * d * d + d * d + 2 * d * self.mlp) + 2 * n * n * d

    def counted_out(self, ins: tuple[Shape, ...], out: Shape, annotations: Annotations) -> Shape:
        return (_tokens_after(ins[0][0], annotations.tokens), out[1])  # the kept tokens flow on


@register
@dataclass(frozen=True)
class ClsHead(LinearsOp):
    """(N, D) -> (classes,): norm of the class token, then a dense layer (D*classes MACs)."""

    classes: int

    names = ("cls_head",)
    schema = (int_param("classes", True, hint="classes=C"),)

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        _need_rank(self, ins[0], 2, "[N, D] (tokens)")
        return (self.classes,)

    def weight_matrices(self, ins: tuple[Shape, ...]) -> list[tuple[int, int]]:
        return [(self.classes, ins[0][1])]

    def other_params(self, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][1] + self.classes  # norm, bias


@register
@dataclass(frozen=True)
class Add(Op):
    """Elementwise sum of two tensors of one shape (a residual join). No weights, no parameters,
    no MACs (its additions are not counted). `@quant(a=N)` requantizes the sum to N bits; without
    it the sum is as wide as the wider input. A sum of binaries is not binary (-2, 0, 2)."""

    names = ("add",)
    arity = 2
    applies = frozenset({"quant"})
    only_params = MappingProxyType({"quant": ("a", "signed")})  # no weights: no w, no per

    def out_shape(self, ins: tuple[Operand, ...]) -> Shape:
        a, b = ins
        if a.shape != b.shape:
            raise ShapeError(
                f"add needs inputs of the same shape, but {a.described()} and {b.described()}",
                expected=f"a tensor of shape {shape_str(a.shape)}", operand=1,
            )
        return a.shape


# Operations that hold weights (and so can take weight annotations), for the passes after dsl/.
WEIGHTED_OPS: tuple[type[Op], ...] = tuple(dict.fromkeys(cls for cls in OPS.values() if cls.weighted))

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
    bitstream length `T` cycles, LFSR `seed`; `gray` (the buffer's gray-zone width, in units of one
    product's current) and `atten` (current attenuation per extra row of a group) are our model's
    parameters (README: AQFP stochastic binary layers)."""

    group: int
    T: int
    seed: int = 1
    gray: float = 1.0
    atten: float = 0.0625
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
    data_span: Span = _span()  # the `data = ...` setting (errors in the data file point at it)


@dataclass(frozen=True)
class Spec:
    model: Model
    train: Train = Train()
