"""Training-time layers: fake quantization and pruning in the forward pass.

Quantization (uniform, round-clamp, straight-through):
    q = clamp(floor(x / s + 0.5), qmin, qmax); x_hat = q * s
i.e. round half up, exactly the rounding of the integer requantization contract, so that the
fake-quant forward mirrors the integer model: the input is quantized with its fixed-point type,
a weighted layer accumulates integer-valued weights times integer-valued inputs, the bias is
rounded to accumulator units (in_scale * w_scale), and the output is rounded to the
activation scale. Gradients pass straight through the rounding. Scales (see `Scales`): weight
scales are LSQ-style learned parameters (gradient scaled by 1/sqrt(numel * qmax), max-abs
init) or max-abs at every step; activation scales are an exponential moving average of the
batch range (calibrated on a fixed batch when quantization starts, updated while training,
frozen in eval) or LSQ-learned from that calibration.

Pruning: a `mask` buffer of the weight's shape (1 = kept). Masks are recomputed at the start of
each epoch in which pruning is active (`update_mask`); once computed, a mask stays applied
(also in later stages without pruning), and `apply_mask` zeroes the pruned weights in place
after every optimizer step, so pruned weights are exactly zero after training and in export.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cdsl.contract.intmodel import round_half_up
from cdsl.contract.ref._weighted import BIAS_BITS
from cdsl.dsl import ir
from cdsl.sw.registry import LayerModule

__all__ = ["round_half_up"]  # re-exported: the contract's rounding, used by every fake quantizer

# ---------------------------------------------------------------- quantization primitives


def round_half_up_ste(v: torch.Tensor) -> torch.Tensor:
    """round_half_up(v) forward (exactly), identity backward."""
    return round_half_up(v).detach() + (v - v.detach())


def grad_scale(s: torch.Tensor, g: float) -> torch.Tensor:
    """s forward (exactly), gradient multiplied by g backward (LSQ)."""
    sg = s * g
    return s.detach() + (sg - sg.detach())


def quantize_codes(x: torch.Tensor, scale: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """The integer codes (as float, straight-through): clamp(floor(x / s + 0.5), qmin, qmax)."""
    return round_half_up_ste((x / scale).clamp(qmin, qmax))


def fake_quant(x: torch.Tensor, scale: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    return quantize_codes(x, scale, qmin, qmax) * scale


@dataclass(frozen=True)
class Scales:
    """How quantization scales are found.

    weight: "lsq" (learned, LSQ gradient, max-abs init) or "max" (max |w| / qmax at every step).
    act: "lsq" (learned, init by calibration) or "ema" (exponential moving average, momentum
    EMA_MOMENTUM per step, of the batch max / qmax while training; frozen in eval).
    """

    weight: str = "lsq"
    act: str = "ema"

    def __post_init__(self):
        if self.weight not in ("lsq", "max"):
            raise ValueError(f"weight scales must be 'lsq' or 'max', got {self.weight!r}")
        if self.act not in ("lsq", "ema"):
            raise ValueError(f"activation scales must be 'lsq' or 'ema', got {self.act!r}")


EMA_MOMENTUM = 0.9


@dataclass(frozen=True)
class Grid:
    """A tensor lies on an integer grid: value = scale * q with q in [qmin, qmax] (zero point 0)."""

    scale: torch.Tensor  # 0-d float tensor
    bits: int
    signed: bool
    # a token stream [B, N, D] whose token count varies per sample (a selector upstream pruned it):
    # int64 [B], the rows each sample really holds (the first ones; zero rows after them); None: all N
    tokens: torch.Tensor | None = field(default=None, compare=False)

    @property
    def qmin(self) -> int:
        return ir.int_range(self.bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        return ir.int_range(self.bits, self.signed)[1]


class WeightQuant(nn.Module):
    """Symmetric signed weight quantizer to `bits`, per tensor (one scale) or per output channel."""

    def __init__(self, *, bits: int, channels: int, per_channel: bool, learned: bool = True):
        super().__init__()
        if not 2 <= bits <= 16:
            raise ValueError(f"weight bits must be 2..16, got {bits!r}")
        self.bits = bits
        self.per_channel = per_channel
        self.learned = learned
        self.qmin, self.qmax = ir.int_range(bits, True)
        # learned scales live in the log domain: always positive, and Adam's steps are relative
        self.log_scale = nn.Parameter(torch.zeros(channels if per_channel else 1), requires_grad=learned)
        self.register_buffer("calibrated", torch.tensor(False))

    def _max_abs_scale(self, w: torch.Tensor) -> torch.Tensor:
        flat = w.detach().reshape(w.shape[0], -1).abs()
        peak = flat.amax(dim=1) if self.per_channel else flat.amax().reshape(1)
        return (peak / self.qmax).clamp(min=1e-8)

    @torch.no_grad()
    def calibrate(self, w: torch.Tensor) -> None:
        self.log_scale.copy_(torch.log(self._max_abs_scale(w)))
        self.calibrated.fill_(True)

    def effective_scale(self, w: torch.Tensor) -> torch.Tensor:
        """The scale used in the forward pass, shape [C] or [1]."""
        if not self.learned:
            return self._max_abs_scale(w)
        per = w[0].numel() if self.per_channel else w.numel()
        return grad_scale(torch.exp(self.log_scale), 1.0 / math.sqrt(per * self.qmax))

    def codes(self, w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (w.dim() - 1)
        return quantize_codes(w, scale.reshape(shape), self.qmin, self.qmax)


def weight_quant_options(quant: ir.Quant, *, channels: int, scales: Scales) -> dict:
    """The keyword arguments of `WeightQuant` (and of its subclasses) for a layer's `@quant(w=...)`."""
    return dict(bits=quant.w, channels=channels, per_channel=quant.per is ir.Granularity.CHANNEL,
                learned=scales.weight == "lsq")


class ActQuant(nn.Module):
    """Per-tensor activation quantizer (signed or unsigned, `bits` wide)."""

    def __init__(self, *, bits: int, signed: bool, mode: str):
        super().__init__()
        if mode not in ("lsq", "ema"):
            raise ValueError(f"mode must be 'lsq' or 'ema', got {mode!r}")
        self.set_format(bits=bits, signed=signed)
        self.mode = mode
        learned = self.learned = mode == "lsq"
        if learned:  # log domain, as WeightQuant
            self.log_scale = nn.Parameter(torch.zeros(()))
        else:  # the moving average
            self.register_buffer("ema_scale", torch.ones(()))
        self.register_buffer("calibrated", torch.tensor(False))
        self.observing = False

    def set_format(self, *, bits: int, signed: bool) -> None:
        """The integer type quantized to (not state: a module whose format follows its inputs sets it
        again in every forward pass)."""
        if not 2 <= bits <= 16:
            raise ValueError(f"activation bits must be 2..16, got {bits!r}")
        self.bits, self.signed = bits, signed
        self.qmin, self.qmax = ir.int_range(bits, signed)

    def effective_scale(self, x: torch.Tensor) -> torch.Tensor:
        if not self.learned:  # a copy: later forward passes of the same batch update the buffer in place
            return self.ema_scale.clone()
        return grad_scale(torch.exp(self.log_scale), 1.0 / math.sqrt(x[0].numel() * self.qmax))

    def _observed(self, x: torch.Tensor) -> torch.Tensor:
        peak = x.detach().abs().amax() if self.signed else x.detach().clamp(min=0).amax()
        return (peak / self.qmax).clamp(min=1e-8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        if self.observing:
            with torch.no_grad():
                if self.learned:
                    self.log_scale.copy_(torch.log(self._observed(x)))
                else:
                    self.ema_scale.copy_(self._observed(x))
                self.calibrated.fill_(True)
        elif not self.learned and self.training:
            with torch.no_grad():
                self.ema_scale.mul_(EMA_MOMENTUM).add_((1 - EMA_MOMENTUM) * self._observed(x))
        s = self.effective_scale(x)
        return fake_quant(x, s, self.qmin, self.qmax), Grid(s, self.bits, self.signed)


class SignSTE(torch.autograd.Function):
    """+1 where x >= 0, -1 elsewhere; gradient passes where |x| <= 1 (hardtanh STE)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


# ---------------------------------------------------------------- pruning masks


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Unstructured: zero the round(sparsity * numel) smallest |w| (stable order on ties)."""
    flat = w.detach().abs().reshape(-1)
    k = int(round(sparsity * flat.numel()))
    mask = torch.ones_like(flat)
    if k > 0:
        order = torch.argsort(flat, stable=True)
        mask[order[:k]] = 0
    return mask.reshape(w.shape)


def nm_mask(w: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the n largest |w| of every m consecutive weights along the input dimension.

    The input dimension of a conv weight [O, C, K, K] is the flattened (C, K, K), the order of
    the integer conv's im2col. A last partial group keeps min(n, its length) weights.
    """
    rows = w.detach().abs().reshape(w.shape[0], -1)
    k = rows.shape[1]
    groups = -(-k // m)
    padded = torch.full((rows.shape[0], groups * m), -1.0, dtype=rows.dtype)
    padded[:, :k] = rows
    g = padded.reshape(rows.shape[0], groups, m)
    # stable top-n: sort descending by magnitude, ties by position
    order = torch.argsort(-g, dim=-1, stable=True)
    keep = torch.zeros_like(g)
    keep.scatter_(-1, order[..., :n], 1.0)
    keep = keep.reshape(rows.shape[0], groups * m)[:, :k]
    return keep.reshape(w.shape)


def block_mask(w: torch.Tensor, block: tuple[int, int], sparsity: float) -> torch.Tensor:
    """Zero the lowest-L1 blocks of `block` = (rows, cols) over the 2-D view [out, in]."""
    bh, bw = block
    mat = w.detach().abs().reshape(w.shape[0], -1)
    r, c = mat.shape
    gr, gc = -(-r // bh), -(-c // bw)
    padded = torch.zeros(gr * bh, gc * bw, dtype=mat.dtype)
    padded[:r, :c] = mat
    scores = padded.reshape(gr, bh, gc, bw).sum(dim=(1, 3))
    keep_blocks = magnitude_mask(scores, sparsity)
    full = keep_blocks.repeat_interleave(bh, dim=0).repeat_interleave(bw, dim=1)[:r, :c]
    return full.reshape(w.shape)


def prune_fraction(prune: ir.Prune, epoch: int, total_epochs: int) -> float:
    """The share of the target sparsity reached at the start of `epoch` (0-based).

    Linear ramp: 0 before `start`; (epoch + 1 - start) / (end - start) in between; 1 from
    epoch end - 1 on, so the last epochs train with the final mask. end=None (or beyond the
    training) means the end of training. N:M patterns apply in full from `start`.
    """
    end = total_epochs if prune.end is None else min(prune.end, total_epochs)
    start = min(prune.start, max(end - 1, 0))
    if epoch < start:
        return 0.0
    if prune.pattern is ir.PrunePattern.NM or end <= start:
        return 1.0
    return min(1.0, (epoch + 1 - start) / (end - start))


def compute_mask(w: torch.Tensor, prune: ir.Prune, fraction: float) -> torch.Tensor:
    if fraction <= 0:
        return torch.ones_like(w)
    if prune.pattern is ir.PrunePattern.NM:
        return nm_mask(w, prune.n, prune.m)
    if prune.pattern is ir.PrunePattern.BLOCK:
        return block_mask(w, prune.block, prune.sparsity * fraction)
    return magnitude_mask(w, prune.sparsity * fraction)


# ---------------------------------------------------------------- weighted layers


class Compressible(nn.Module):
    """A module with annotation switches and training hooks; `Net` calls these on every such module:
    `set_compress(names)` turns on the named annotation kinds (`active`), `start_epoch(epoch, total)`
    runs before each epoch, `regularizer()` adds a term to the training loss (None: nothing)."""

    active: tuple[str, ...] = ()

    @property
    def quant_on(self) -> bool:
        return "quant" in self.active

    @property
    def prune_on(self) -> bool:
        return "prune" in self.active

    def set_compress(self, names: tuple[str, ...]) -> None:
        self.active = tuple(names)

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        pass

    def regularizer(self) -> torch.Tensor | None:
        return None

    def epoch_note(self) -> str | None:
        """A few words for the training log's epoch line about what happened this epoch (None: nothing)."""
        return None


class WeightedParams(Compressible):
    """The weight of a dense or conv2d (sub)layer with optional fake quantization and a pruning mask.

    `ref` is the torch layer whose freshly initialized weight and bias it takes (nn.Linear, nn.Conv2d);
    a subclass says how the products are formed (`product`). `weight_quant` is the quantizer a layer's
    annotations chose (`cdsl.sw.quantizers`); None gives the plain `WeightQuant` of `quant.w`.
    """

    def __init__(self, ref: nn.Module, *, quant: ir.Quant | None = None, prune: ir.Prune | None = None,
                 scales: Scales = Scales(), weight_quant: WeightQuant | None = None):
        super().__init__()
        out_size = ref.weight.shape[0]
        self.weight = ref.weight
        self.bias = ref.bias
        self.register_buffer("mask", torch.ones_like(self.weight))
        self.prune = prune
        if weight_quant is None and quant is not None and quant.w is not None:
            weight_quant = WeightQuant(**weight_quant_options(quant, channels=out_size, scales=scales))
        self.wq = weight_quant

    # -- pruning
    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        self.update_mask(epoch, total_epochs)

    @torch.no_grad()
    def update_mask(self, epoch: int, total_epochs: int) -> None:
        if self.prune is None or not self.prune_on:
            return
        fraction = prune_fraction(self.prune, epoch, total_epochs)
        if fraction > 0:
            self.mask.copy_(compute_mask(self.weight * self.mask, self.prune, fraction))
            self.apply_mask()

    @torch.no_grad()
    def apply_mask(self) -> None:
        self.weight.mul_(self.mask)

    # -- quantization
    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def quantized(self, in_grid: Grid | None):
        """(weight used, w_scale [C] or None, weight codes or None, bias used, bias codes or None)."""
        w = self.masked_weight()
        if not (self.quant_on and self.wq is not None):
            return w, None, None, self.bias, None
        s_w = self.wq.effective_scale(w)
        codes = self.wq.codes(w, s_w)
        shape = (-1,) + (1,) * (w.dim() - 1)
        w_used = codes * s_w.reshape(shape)
        b_used, b_codes = self.bias, None
        if self.bias is not None and in_grid is not None:
            unit = in_grid.scale.detach() * s_w.detach()
            lim = float(1 << (BIAS_BITS - 1))  # the contract's bias range (int32)
            b_codes = torch.clamp(round_half_up_ste(self.bias / unit), -lim, lim - 1)
            b_used = b_codes * unit
        return w_used, s_w, codes, b_used, b_codes

    def product(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """The layer's exact float output for input x, weight w, bias b."""
        raise NotImplementedError


class QWeighted(WeightedParams, LayerModule):
    """A dense or conv2d layer: fake-quantized, pruned weights and an optional activation quantizer.

    forward([x], [grid]) -> (y, grid_out). `grid` describes the input's integer grid (None: float).
    Without activation quantization (quant(w=...) only, per-tensor weights) the output is the
    accumulator itself, on a 32-bit grid of scale in_scale * w_scale.
    """

    def __init__(self, ref: nn.Module, *, core: nn.Module, quant: ir.Quant | None = None, out_signed: bool = True,
                 scales: Scales = Scales(), prune: ir.Prune | None = None, weight_quant: WeightQuant | None = None):
        super().__init__(ref, quant=quant, prune=prune, scales=scales, weight_quant=weight_quant)
        self.core = core  # a cdsl.sw.cores.CoreTwin: how the products behave
        self.aq = ActQuant(bits=quant.a, signed=out_signed, mode=scales.act) if (
            quant is not None and quant.a is not None) else None

    def forward(self, xs, grids):
        (x,), (in_grid,) = xs, grids
        w, s_w, codes, b, _ = self.quantized(in_grid)
        y = self.core.products(Products(module=self, x=x, in_grid=in_grid, w=w, w_codes=codes, w_scale=s_w, b=b))
        if self.quant_on and self.aq is not None:
            return self.aq(y)
        if s_w is not None and in_grid is not None and s_w.numel() == 1:
            return y, Grid((in_grid.scale * s_w).reshape(()), ACC_BITS, True)
        return y, None


@dataclass(frozen=True)
class Products:
    """What a MAC core's training twin sees in a weighted layer's forward pass (`cdsl.sw.cores`):
    the layer module (its `product(x, w, b)` is the exact float dense/conv), the input and its grid
    (None: float), the weight used (fake-quantized when quant is on), its integer codes and scales
    (None without weight quantization) and the bias used."""

    module: "QWeighted"
    x: torch.Tensor
    in_grid: Grid | None
    w: torch.Tensor
    w_codes: torch.Tensor | None
    w_scale: torch.Tensor | None
    b: torch.Tensor | None

    def exact(self) -> torch.Tensor:
        return self.module.product(self.x, self.w, self.b)


ACC_BITS = 32  # the grid of an output layer that keeps its accumulator (quant(w=...) without a=...)


# ---------------------------------------------------------------- transformer parts (float + fake quant)


class QLinear(WeightedParams):
    """A dense sub-layer of a transformer block: weights quantized/pruned, no activation grid."""

    def __init__(self, in_size, out_size, *, quant, prune, scales):
        wquant = None if quant is None or quant.w is None else ir.Quant(w=quant.w, per=quant.per)
        super().__init__(nn.Linear(in_size, out_size), quant=wquant, prune=prune, scales=scales)

    def product(self, x, w, b):
        return F.linear(x, w, b)

    def forward(self, x):
        w, _, _, b, _ = self.quantized(None)
        return F.linear(x, w, b)


class _ActOut(Compressible, LayerModule):
    """A transformer part whose output is fake-quantized to `quant.a` bits when quant is on."""

    def __init__(self, quant, scales):
        super().__init__()
        self.aq = ActQuant(bits=quant.a, signed=True, mode=scales.act) if quant is not None and quant.a else None

    def out(self, y):
        if self.quant_on and self.aq is not None:
            return self.aq(y)
        return y, None


class PatchEmbed(_ActOut):
    """(C, H, W) -> (N + 1, D): patch projection (a P x P stride-P conv), class token, positions."""

    def __init__(self, *, channels: int, size: tuple[int, int], patch: int, dim: int, quant, prune, scales):
        super().__init__(quant, scales)
        self.patch = patch
        self.proj = QLinear(channels * patch * patch, dim, quant=quant, prune=prune, scales=scales)
        tokens = (size[0] // patch) * (size[1] // patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)

    def forward(self, xs, grids):
        (x,) = xs
        p = self.patch
        b, c, h, w = x.shape
        patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)
        t = self.proj(patches)
        t = torch.cat([self.cls.expand(b, -1, -1), t], dim=1) + self.pos
        return self.out(t)


class EncoderBlock(_ActOut):
    """Pre-norm encoder: x + MHA(LN(x)); then x + MLP(LN(x)) with GELU."""

    def __init__(self, *, dim: int, heads: int, mlp: int, quant, prune, scales):
        super().__init__(quant, scales)
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = QLinear(dim, 3 * dim, quant=quant, prune=prune, scales=scales)
        self.proj = QLinear(dim, dim, quant=quant, prune=prune, scales=scales)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = QLinear(dim, mlp, quant=quant, prune=prune, scales=scales)
        self.fc2 = QLinear(mlp, dim, quant=quant, prune=prune, scales=scales)

    def forward(self, xs, grids):
        (x,) = xs
        b, n, d = x.shape
        hd = d // self.heads
        qkv = self.qkv(self.ln1(x)).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(hd), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return self.out(x)


class ClsHead(_ActOut):
    """(N, D) -> (classes,): LayerNorm of the class token, then a linear layer."""

    def __init__(self, *, dim: int, classes: int, quant, prune, scales):
        super().__init__(quant, scales)
        self.ln = nn.LayerNorm(dim)
        self.fc = QLinear(dim, classes, quant=quant, prune=prune, scales=scales)

    def forward(self, xs, grids):
        (x,) = xs
        return self.out(self.fc(self.ln(x[:, 0])))
