"""AQFP accumulator test vectors and plain-math expectations, shared by the contract, amaranth.sim and
Verilator tests.

The expectations never go through `cdsl.contract.ref.aqfp_accumulator`: the LFSR is a list of bits
with the polynomial's exponents as taps (`BitLfsr`), a jump of n steps is multiplication by x**-n
modulo the polynomial (`plain_jump`: a right-shifting Galois step divides the state polynomial by x),
and the margins are a loop over outputs, groups and cycles (`plain_margins`). The tables are data
(the device and the loop read the same ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLY_EXPONENTS = (32, 22, 2, 1)  # x^32 + x^22 + x^2 + x + 1
POLY = sum(1 << e for e in POLY_EXPONENTS) | 1
ORDER = 2**32 - 1  # the multiplicative order of x modulo POLY (it is primitive)
GROUP_STRIDE = 2**24  # steps between the start states of consecutive groups

# A small digits BNN for the software-path tests: `{binary}` is the binary layer's annotations.
TINY_BNN = """
model tiny {{
  input x: ufixed<8,4>[64]
  h = dense(x, units=20) @quant(w=8, a=8)
  s = sign(h)
  b = dense(s, units=6) {binary}
  s2 = sign(b)
  y = dense(s2, units=10) @quant(w=8, a=8)
  output y
}}
train {{ epochs = 2 }}
"""
TINY_AQFP = "@binary @aqfp(group=8, T=8, seed=3, gray=2.0)"  # 20 inputs: groups of 8, 8 and a partial 4


class BitLfsr:
    """The Galois LFSR of POLY_EXPONENTS as a list of bits, bit 0 shifted out first."""

    def __init__(self, state: int):
        self.bits = [(state >> k) & 1 for k in range(32)]

    @property
    def state(self) -> int:
        return sum(b << k for k, b in enumerate(self.bits))

    def step(self) -> int:
        out = self.bits[0]
        self.bits = self.bits[1:] + [0]
        if out:
            for e in POLY_EXPONENTS:
                self.bits[e - 1] ^= 1
        return out

    def draw(self) -> int:
        return sum(self.step() << j for j in range(8))


def poly_mulmod(a: int, b: int, mod: int = POLY, degree: int = 32) -> int:
    """a * b modulo `mod` over GF(2) (polynomials as bit masks)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a >> degree & 1:
            a ^= mod
    return out


def x_power(n: int, mod: int = POLY, degree: int = 32) -> int:
    result, base = 1, 2  # the polynomials 1 and x
    while n:
        if n & 1:
            result = poly_mulmod(result, base, mod, degree)
        base = poly_mulmod(base, base, mod, degree)
        n >>= 1
    return result


def plain_jump(state: int, steps: int) -> int:
    """The state after `steps` steps: state * x**-steps modulo POLY."""
    return poly_mulmod(state, x_power((-steps) % ORDER))


def start_state(seed: int, group: int) -> int:
    return plain_jump(seed, (group + 1) * GROUP_STRIDE)


def plain_margins(x, w, *, group, taps, table, table_partial, tau, T, seed):
    """x: N samples of P pixels of K ints (channel-major, tap-minor); w: O rows of K -> N x P x O margins.

    Group (chunk m, tap t) holds channels m*group .. m*group+group-1 at tap t; its current d is the sum of
    x*w over them, its bit draw < table[d + size] (the partial group reads table_partial); outputs in
    (o, p) order each take T draws from every group's LFSR."""
    k = len(w[0])
    channels = k // taps
    chunks = -(-channels // group)
    layout = [(m, t) for m in range(chunks) for t in range(taps)]
    out = []
    for sample in x:
        lfsrs = [BitLfsr(start_state(seed, g)) for g in range(len(layout))]
        margins = [[0] * len(w) for _ in sample]
        for o, row in enumerate(w):
            for p, pixel in enumerate(sample):
                total = 0
                for g, (m, t) in enumerate(layout):
                    members = [c * taps + t for c in range(m * group, min((m + 1) * group, channels))]
                    size = len(members)
                    d = sum(int(pixel[i]) * int(row[i]) for i in members)
                    code = int((table if size == group else table_partial)[min(max(d + size, 0), 2 * size)])
                    if T == 0:
                        total += code
                    else:
                        total += sum(lfsrs[g].draw() < code for _ in range(T))
                margins[p][o] = total * 256 - int(tau[o]) if T == 0 else total * 65536 - int(tau[o]) * T
        out.append(margins)
    return out


# ---------------------------------------------------------------- the accumulator block


@dataclass(frozen=True)
class BlockConfig:
    """An AqfpAccumulator: `lanes` inputs per step, groups of `group` channels, `channels` x `taps` inputs,
    `outputs` x `pixels` rows per inference."""

    lanes: int
    group: int
    channels: int
    taps: int
    outputs: int
    pixels: int

    @property
    def k(self) -> int:
        return self.channels * self.taps

    @property
    def blocks(self) -> int:
        return -(-self.channels // self.lanes)

    @property
    def steps(self) -> int:
        return self.blocks * self.taps

    @property
    def chunks(self) -> int:
        return -(-self.channels // self.group)

    @property
    def partial(self) -> int:
        return self.channels - (self.chunks - 1) * self.group


def block_words(layout, cfg: BlockConfig, x, w, tau) -> list:
    """The steps of one inference: rows (o, p) in order, each `cfg.steps` steps (channel block outer,
    tap inner) of `lanes` channels; x [P, K], w [O, K] in (channel, tap) order, zeros past the channels."""
    words = []
    for o in range(cfg.outputs):
        for p in range(cfg.pixels):
            for s in range(cfg.steps):
                block, tap = divmod(s, cfg.taps)
                chans = [block * cfg.lanes + j for j in range(cfg.lanes)]
                xs = [int(x[p][c * cfg.taps + tap]) if c < cfg.channels else 0 for c in chans]
                ws = [int(w[o][c * cfg.taps + tap]) if c < cfg.channels else 0 for c in chans]
                words.append(layout.const({"x": xs, "w": ws, "tau": int(tau[o]), "first": int(s == 0),
                                           "last": int(s == cfg.steps - 1)}))
    return words


def block_expected(cfg: BlockConfig, x, w, tau, *, table, table_partial, T, seed) -> list[int]:
    """The margins of one inference in row order (o outer, p inner)."""
    (margins,) = plain_margins([x], w, group=cfg.group, taps=cfg.taps, table=table, table_partial=table_partial,
                               tau=tau, T=T, seed=seed)
    return [margins[p][o] for o in range(cfg.outputs) for p in range(cfg.pixels)]


def block_cycles(cfg: BlockConfig, T: int, latency: int) -> int:
    """Every step held max(T, 1) cycles, the last margin `latency` cycles after the last step."""
    return cfg.outputs * cfg.pixels * cfg.steps * max(T, 1) + latency


@dataclass(frozen=True)
class BlockSample:
    name: str
    x: np.ndarray  # [P, K]
    w: np.ndarray  # [O, K]
    tau: np.ndarray  # [O]
    T: int
    seed: int


def block_samples(cfg: BlockConfig, rng, *, table, table_partial) -> list[BlockSample]:
    """The cases every accumulator block test covers: T = 1, T = 0 (noise-free), all products agreeing, all
    disagreeing (zero inputs among them: padding), a threshold exactly at the count (margin 0), and two seeds
    whose outputs differ, each run twice. The partial last group is in the configuration itself."""
    p, k, o = cfg.pixels, cfg.k, cfg.outputs
    x = rng.choice([-1, 1], size=(p, k))
    x[0, : k // 4] = 0
    w = rng.choice([-1, 1], size=(o, k))
    tau = rng.integers(0, cfg.chunks * cfg.taps * 65536 // 2, size=o)
    agree = rng.choice([-1, 1], size=(p, k))
    samples = [
        BlockSample("T=1", x, w, tau, 1, 7),
        BlockSample("T=0 (noise-free)", x, w, tau, 0, 7),
        BlockSample("all agree", agree, np.repeat(agree[:1], o, axis=0), tau, 4, 3),
        BlockSample("all disagree", agree, -np.repeat(agree[:1], o, axis=0), np.zeros(o, dtype=np.int64), 4, 3),
    ]
    counts = [m >> 16 for m in block_expected(cfg, x, w, np.zeros(o, dtype=np.int64), table=table,
                                              table_partial=table_partial, T=8, seed=11)]
    at_count = np.array([counts[r * p] * 65536 // 8 for r in range(o)])  # tau * 8 == count * 2**16 on pixel 0
    samples.append(BlockSample("threshold at the count", x, w, at_count, 8, 11))
    for seed in (5, 0xBEEF, 5, 0xBEEF):
        samples.append(BlockSample(f"seed {seed}", x, w, tau, 8, seed))
    return samples


BLOCK_CONFIGS = {
    # two channel blocks per row: a partial last group of 2, an absent lane group, LFSRs multiplexed across steps
    "dense": BlockConfig(lanes=8, group=4, channels=10, taps=1, outputs=3, pixels=1),
    # four kernel positions, lanes = channels (3), a partial group of 1, two pixels per output
    "conv": BlockConfig(lanes=3, group=2, channels=3, taps=4, outputs=2, pixels=2),
}
BLOCK_T_MAX = 16
BLOCK_TAU_BITS = 24
BLOCK_GRAY, BLOCK_ATTEN = 1.0, 0.0625


def block_tables(cfg: BlockConfig):
    from cdsl.contract.ref.aqfp_accumulator import bit_table

    table = bit_table(cfg.group, gray=BLOCK_GRAY, atten=BLOCK_ATTEN)
    partial = None if cfg.partial == cfg.group else bit_table(cfg.partial, gray=BLOCK_GRAY, atten=BLOCK_ATTEN)
    return table, partial


def block_dut(cfg: BlockConfig):
    from cdsl.contract.ref.aqfp_accumulator import Groups
    from cdsl.hw.aqfp_accumulator import AqfpAccumulator, margin_range
    from cdsl.hw.widths import signed_width

    table, partial = block_tables(cfg)
    groups = Groups(channels=cfg.channels, taps=cfg.taps, size=cfg.group)
    return AqfpAccumulator(lanes=cfg.lanes, a_width=2, w_bits=2, group=cfg.group, channels=cfg.channels, taps=cfg.taps,
                           rows=cfg.outputs * cfg.pixels, table=table, table_partial=partial, t_max=BLOCK_T_MAX,
                           tau_bits=BLOCK_TAU_BITS,
                           acc_width=signed_width(*margin_range(groups, BLOCK_T_MAX, BLOCK_TAU_BITS)))


def block_cases(cfg: BlockConfig, seed: int):
    """(sample, step words, expected margins) for every `block_samples` case."""
    from cdsl.hw.aqfp_accumulator import aqfp_step_layout

    table, partial = block_tables(cfg)
    layout = aqfp_step_layout(lanes=cfg.lanes, a_width=2, w_bits=2, tau_bits=BLOCK_TAU_BITS)
    for sample in block_samples(cfg, np.random.default_rng(seed), table=table, table_partial=partial):
        words = block_words(layout, cfg, sample.x, sample.w, sample.tau)
        want = block_expected(cfg, sample.x, sample.w, sample.tau, table=table, table_partial=partial, T=sample.T,
                              seed=sample.seed)
        yield sample, words, want
