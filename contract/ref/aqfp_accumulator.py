"""Integer reference of the AQFP-style stochastic accumulator (`cdsl.hw.aqfp_accumulator.AqfpAccumulator`):
our model of SupeRBNN's randomized binary neurons, defined once here.

A binary layer's inputs and weights are +1/-1 (0 where there is no input: zero padding of a
convolution, a pruned weight). For one output neuron:

Products and crossbar groups. The products `x * w` (XNOR of the signs) are split into crossbar
groups of `group` = n inputs: n consecutive input channels at one kernel position (`taps` = k*k
positions; a dense layer has one). Group `g = m * taps + tap` holds channels m*n .. m*n+n-1 at
position `tap`; the last chunk of channels is a partial group of r = C - (M-1)*n inputs when n does
not divide C (M = ceil(C / n) chunks). A group's current is d = sum of its products, in -size..size.

Randomized output bit (the AQFP buffer's gray zone; our model, its parameters are `@aqfp(gray,
atten)`). Each group's buffer emits, every cycle, a bit that is 1 with probability
    f(d) = Phi(d / sigma(size)),    sigma(size) = gray * (1 + atten * (size - 1))
(Phi the standard normal CDF): a buffer switches by the polarity of its input current, randomly
when the current is within its gray zone of width `gray` (in units of one product's current), and
a crossbar of `size` rows attenuates each row's current by 1 / (1 + atten * (size - 1)), so the
gray zone seen in units of d widens with the group size. In integers, f is a table per group size
(`bit_table`): entry d + size holds round(f(d) * 2**DRAW_BITS), antisymmetric about d = 0. The bit
is `draw < table[d + size]` for an 8-bit draw of the group's LFSR (`lfsr_draws`), so
P(bit = 1) = table / 2**DRAW_BITS exactly over the LFSR's period.

Accumulation over a bitstream of T cycles: count = sum over the T cycles and every group of the bits.

Output: a threshold per output channel in fixed point, tau = the per-cycle count threshold *
2**TAU_FRAC (batch norm folded into it at export). The accumulator's result is the margin
    margin = count * 2**TAU_FRAC - tau * T
and the neuron's output is +1 where margin >= 0, -1 elsewhere (the layer's requantization clamps the
margin to its 2-bit output type, -2..1; the `sign` that follows makes it +1/-1). Because tau is per
cycle, T is a runtime setting: the same threshold holds at every bitstream length.
T = 0 is the noise-free limit T -> infinity: each group adds its probability instead of a bit,
    margin = sum over groups of table[d + size] * 2**(TAU_FRAC - DRAW_BITS) - tau
(the deterministic sign of the expected count, in one cycle per step).

LFSRs. Group g has its own 32-bit Galois LFSR (`LFSR_MASK`: x^32 + x^22 + x^2 + x + 1, maximal
length), stepped DRAW_BITS times per cycle in which its group is used; the draw is the DRAW_BITS
bits it shifts out, the first one least significant. At the beginning of every inference group g
starts at `group_seed(seed, g)`: the state (g + 1) * 2**24 steps after `seed` on the one maximal
sequence (sequence splitting: the groups read disjoint segments of 2**24 bits, as long as an
inference draws fewer than 2**21 values per group). Outputs are produced in row-major (channel, y, x)
order q, and group g draws its T values of output q at its draws q*T .. q*T+T-1: the draw sequence is
fixed by the seed and the layer, not by how many groups the hardware evaluates in parallel.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Setting
from cdsl.contract.ref.mac import MacCore

LFSR_BITS = 32
LFSR_MASK = 0x80200003  # Galois right-shift taps: x^32 + x^22 + x^2 + x + 1 (primitive)
DRAW_BITS = 8  # bits per draw: probabilities are multiples of 1/256
TAU_FRAC = 16  # fraction bits of the per-cycle threshold tau
GROUP_STRIDE = 1 << 24  # LFSR steps between the start states of consecutive groups
T_MAX_MIN = 64  # the runtime T goes up to max(the spec's T, this), so the eval's T table runs on one design
SEED_MAX = (1 << LFSR_BITS) - 1


# ---------------------------------------------------------------- the LFSR


def lfsr_step(state: int) -> tuple[int, int]:
    """One step of the Galois LFSR: (next state, the bit shifted out)."""
    out = state & 1
    state >>= 1
    if out:
        state ^= LFSR_MASK
    return state, out


@functools.cache
def _byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """DRAW_BITS steps at once: the low byte of a state fixes the bits shifted out and what is XORed
    into the shifted state (the feedback reaches bit 0 only after 14 steps), so
    next = (state >> 8) ^ feed[state & 0xFF] and draw = out[state & 0xFF]."""
    feed, out = np.zeros(256, dtype=np.int64), np.zeros(256, dtype=np.int64)
    for low in range(256):
        state, draw = low, 0
        for j in range(DRAW_BITS):
            state, bit = lfsr_step(state)
            draw |= bit << j
        feed[low], out[low] = state, draw  # low >> 8 == 0: what remains is the feedback alone
    return feed, out


def _apply(columns: tuple[int, ...], state: int) -> int:
    """A linear map over GF(2) given by its columns (the images of the single bits), applied to `state`."""
    out = 0
    for k, column in enumerate(columns):
        if state >> k & 1:
            out ^= column
    return out


@functools.cache
def jump_columns(steps: int) -> tuple[int, ...]:
    """The columns of A**steps, A = one LFSR step (a linear map): column k is where bit k alone goes
    after `steps` steps. By squaring, so any jump costs about 2 * log2(steps) matrix products."""
    result = tuple(1 << k for k in range(LFSR_BITS))
    base = tuple(lfsr_step(1 << k)[0] for k in range(LFSR_BITS))
    while steps:
        if steps & 1:
            result = tuple(_apply(base, c) for c in result)
        base = tuple(_apply(base, c) for c in base)
        steps >>= 1
    return result


def lfsr_jump(state: int, steps: int) -> int:
    """The state `steps` steps after `state`."""
    return _apply(jump_columns(steps), state)


def group_seed(seed: int, group: int) -> int:
    """Start state of group `group`'s LFSR: (group + 1) * GROUP_STRIDE steps after `seed` (never zero:
    the step is invertible)."""
    _check_seed(seed)
    return lfsr_jump(seed, (group + 1) * GROUP_STRIDE)


def lfsr_draws(states, count: int) -> np.ndarray:
    """The next `count` draws of LFSRs started at `states` (ints): int64 [len(states), count]."""
    feed, out = _byte_tables()
    s = np.asarray(states, dtype=np.int64).reshape(-1)
    draws = np.zeros((s.size, count), dtype=np.int64)
    for i in range(count):
        low = s & 0xFF
        draws[:, i] = out[low]
        s = (s >> DRAW_BITS) ^ feed[low]
    return draws


# ---------------------------------------------------------------- the gray zone


def gray_sigma(size: int, *, gray: float, atten: float) -> float:
    """Width of the gray zone in units of d for a group of `size` rows: gray * (1 + atten * (size - 1))."""
    return gray * (1.0 + atten * (size - 1))


def bit_probability(d: float, size: int, *, gray: float, atten: float) -> float:
    """f(d) = Phi(d / sigma(size)); a zero-width gray zone is a sign with a fair coin at d = 0."""
    s = gray_sigma(size, gray=gray, atten=atten)
    if s == 0:
        return 1.0 if d > 0 else 0.0 if d < 0 else 0.5
    return 0.5 * (1.0 + math.erf(d / (s * math.sqrt(2.0))))


def bit_table(size: int, *, gray: float, atten: float) -> np.ndarray:
    """int64 [2*size + 1]: entry d + size = round_half_up(f(d) * 2**DRAW_BITS) for d >= 0, mirrored
    (2**DRAW_BITS minus it) for d < 0, so P(1 | -d) = 1 - P(1 | d) exactly."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"group size must be a positive int, got {size!r}")
    if not (math.isfinite(gray) and gray >= 0 and math.isfinite(atten) and atten >= 0):
        raise ValueError(f"gray and atten must be finite and non-negative, got {gray!r}, {atten!r}")
    one = 1 << DRAW_BITS
    upper = [math.floor(bit_probability(d, size, gray=gray, atten=atten) * one + 0.5) for d in range(size + 1)]
    upper[0] = one // 2
    return np.array([one - v for v in reversed(upper[1:])] + upper, dtype=np.int64)


# ---------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Groups:
    """The crossbar groups of a layer with fan-in K = channels * taps and groups of `size` channels."""

    channels: int
    taps: int
    size: int

    @property
    def chunks(self) -> int:
        """M: chunks of `size` channels (the last one partial when `size` does not divide `channels`)."""
        return -(-self.channels // self.size)

    @property
    def count(self) -> int:
        """G = chunks * taps: groups per output neuron."""
        return self.chunks * self.taps

    @property
    def partial(self) -> int:
        """Size of the last chunk (= size when it is full)."""
        return self.channels - (self.chunks - 1) * self.size

    def group_size(self, g: int) -> int:
        return self.partial if g // self.taps == self.chunks - 1 else self.size


def groups_of(fan_in: int, *, group: int, taps: int) -> Groups:
    if fan_in % taps:
        raise ValueError(f"fan-in {fan_in!r} is not a multiple of the {taps!r} kernel positions")
    return Groups(channels=fan_in // taps, taps=taps, size=group)


def group_sums(x: torch.Tensor, weight: torch.Tensor, groups: Groups) -> torch.Tensor:
    """d per group: x int64 [N, K] (K in (channel, tap) order), weight [O, K] -> int64 [N, O, G]."""
    n, o = x.shape[0], weight.shape[0]
    pad = groups.chunks * groups.size - groups.channels

    def chunked(t):  # [R, K] -> [R, M, size, taps], zero channels appended to the last chunk
        t = t.reshape(t.shape[0], groups.channels, groups.taps)
        t = torch.nn.functional.pad(t, (0, 0, 0, pad))
        return t.reshape(t.shape[0], groups.chunks, groups.size, groups.taps)

    d = torch.einsum("bmst,omst->bomt", chunked(x), chunked(weight))
    return d.reshape(n, o, groups.count)


def probability_codes(d: torch.Tensor, groups: Groups, table: np.ndarray,
                      table_partial: np.ndarray | None) -> torch.Tensor:
    """table[d + size] of every group (the partial group reads `table_partial`): int64, d's shape [..., G]."""
    full = torch.from_numpy(np.asarray(table, dtype=np.int64))
    codes = full[(d + groups.size).clamp(0, 2 * groups.size)]
    if groups.partial != groups.size:
        part = torch.from_numpy(np.asarray(table_partial, dtype=np.int64))
        last = torch.zeros(groups.count, dtype=torch.bool)
        last[(groups.chunks - 1) * groups.taps:] = True
        codes = torch.where(last, part[(d + groups.partial).clamp(0, 2 * groups.partial)], codes)
    return codes


# ---------------------------------------------------------------- the accumulator


def aqfp_margin(x, weight, *, groups: Groups, table, table_partial, tau, T: int, seed: int,
                batch: int = 64) -> torch.Tensor:
    """The accumulator of a layer, as the hardware computes it (see the module docstring).

    x int64 [N, *pixels, K]: dim 0 is the inference (each starts its LFSRs from the seed), the
    pixels of one inference in row-major order; weight int64 [O, K]; tau int64 [O].
    Returns the margins int64 [N, *pixels, O].
    """
    _check_seed(seed)
    if not isinstance(T, int) or isinstance(T, bool) or T < 0:
        raise ValueError(f"T must be a non-negative int, got {T!r}")
    x = torch.as_tensor(x).to(torch.int64)
    weight = torch.as_tensor(weight).to(torch.int64)
    tau_t = torch.from_numpy(np.asarray(tau, dtype=np.int64))
    lead, k = tuple(x.shape[:-1]), x.shape[-1]
    pixels = math.prod(lead[1:])
    o = weight.shape[0]
    if weight.shape[1] != k or tau_t.shape != (o,):
        raise ValueError(f"aqfp: input width {k}, weight {tuple(weight.shape)}, tau {tuple(tau_t.shape)} do not fit")
    for size, t in ((groups.size, table), (groups.partial, table_partial if groups.partial != groups.size else table)):
        if t is None or np.shape(t) != (2 * size + 1,):
            raise ValueError(f"aqfp: a group of {size} inputs needs a table of {2 * size + 1} entries, got "
                             f"{None if t is None else list(np.shape(t))}")
    flat = x.reshape(lead[0], pixels, k)
    if T:
        below = _draws_below(seed, groups.count, o, pixels, T)
    out = torch.empty(lead[0], pixels, o, dtype=torch.int64)
    for start in range(0, lead[0], batch):
        part = flat[start:start + batch]
        d = group_sums(part.reshape(-1, k), weight, groups).reshape(part.shape[0], pixels, o, groups.count)
        codes = probability_codes(d, groups, table, table_partial)
        if T:
            # count = sum over groups and cycles of (draw < code), read from the draws' cumulative histogram
            bits = below.unsqueeze(0).expand(part.shape[0], *below.shape).gather(-1, codes.unsqueeze(-1))
            out[start:start + batch] = bits.squeeze(-1).sum(dim=-1) * (1 << TAU_FRAC) - tau_t * T
        else:
            out[start:start + batch] = codes.sum(dim=-1) * (1 << (TAU_FRAC - DRAW_BITS)) - tau_t
    return out.reshape(*lead, o)


def _draws_below(seed: int, groups: int, outputs: int, pixels: int, T: int) -> torch.Tensor:
    """[P, O, G, 2**DRAW_BITS + 1]: entry c counts the T draws of group g for output (o, p) that are below c
    (group g draws q*T .. q*T+T-1 for output q = o * pixels + p)."""
    states = [group_seed(seed, g) for g in range(groups)]
    draws = torch.from_numpy(lfsr_draws(states, outputs * pixels * T))
    draws = draws.reshape(groups, outputs, pixels, T).permute(2, 1, 0, 3)
    hist = torch.zeros(pixels, outputs, groups, (1 << DRAW_BITS) + 1, dtype=torch.int64)
    hist.scatter_add_(-1, draws + 1, torch.ones_like(draws))
    return hist.cumsum(dim=-1)


def tau_from_threshold(per_cycle: np.ndarray, groups: Groups) -> np.ndarray:
    """tau = ceil(per-cycle count threshold * 2**TAU_FRAC), clipped to [0, G * 2**TAU_FRAC + 1]
    (always +1 below, never above)."""
    top = groups.count * (1 << TAU_FRAC) + 1
    return np.clip(np.ceil(np.asarray(per_cycle, dtype=np.float64) * (1 << TAU_FRAC)), 0, top).astype(np.int64)


# ---------------------------------------------------------------- the MAC core of an AQFP layer


@codec.serializable("aqfp")
@dataclass(frozen=True, eq=False)
class AqfpCore(MacCore):
    """A binary layer on the AQFP-style stochastic accumulator: `matmul` returns the margins.

    Fields: `group` (inputs per crossbar group), `taps` (kernel positions: 1 for dense, k*k for a
    convolution), `T` and `seed` (the defaults of the runtime settings of the same names; T goes up
    to `t_max`), `table` (int64 [2*group + 1]) and `table_partial` (int64 [2*r + 1] for the partial
    group of r inputs, None when there is none), `tau` (int64 [O], the per-channel thresholds), and
    `gray`, `atten`: the model parameters the tables were made from (kept for reference: the integer
    tables are the contract).
    """

    group: int
    taps: int
    T: int
    t_max: int
    seed: int
    table: np.ndarray
    table_partial: np.ndarray | None
    tau: np.ndarray
    gray: float
    atten: float

    def settings(self, *, w_bits: int) -> tuple[Setting, ...]:
        return (Setting("T", 0, self.t_max, self.T,
                        f"bitstream length in cycles, up to {self.t_max}; 0 = the noise-free limit (expected count)"),
                Setting("seed", 1, SEED_MAX, self.seed, "LFSR seed of the stochastic bits"))

    def check(self, *, w_bits: int) -> None:
        from cdsl.contract.ref import _checks as c

        c.at_least(w_bits, "payload.w_bits", 2, 2)
        c.at_least(self.group, "payload.core.group", 1)
        c.at_least(self.taps, "payload.core.taps", 1)
        c.at_least(self.t_max, "payload.core.t_max", 1)
        c.at_least(self.T, "payload.core.T", 0, self.t_max)
        c.at_least(self.seed, "payload.core.seed", 1, SEED_MAX)
        one = 1 << DRAW_BITS
        c.int_array(self.table, "payload.core.table", shape=(2 * self.group + 1,), lo=0, hi=one)
        if self.table_partial is not None:
            c.int_array(self.table_partial, "payload.core.table_partial", lo=0, hi=one)
            part = self.table_partial
            if part.ndim != 1 or part.size % 2 == 0 or part.size > 2 * self.group:
                raise ValueError(f"payload.core.table_partial: expected 2 * r + 1 entries for a partial group of r < "
                                 f"{self.group} inputs, found shape {list(part.shape)}")
        c.int_array(self.tau, "payload.core.tau", lo=0)
        if self.tau.ndim != 1:
            raise ValueError(f"payload.core.tau: expected one threshold per output channel, found shape "
                             f"{list(self.tau.shape)}")

    def groups(self, fan_in: int) -> Groups:
        return groups_of(fan_in, group=self.group, taps=self.taps)

    def matmul(self, x, weight, *, w_bits, settings):
        return aqfp_margin(x, weight, groups=self.groups(int(weight.shape[1])), table=self.table,
                           table_partial=self.table_partial, tau=self.tau, T=settings.get("T", self.T),
                           seed=settings.get("seed", self.seed))


def _check_seed(seed) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 1 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an int in 1..{SEED_MAX}, got {seed!r}")
