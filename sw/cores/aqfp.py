"""@binary @aqfp: binary layers whose XNOR products accumulate through AQFP-style stochastic bitstreams;
`cdsl.contract.ref.aqfp_accumulator` defines the arithmetic (groups, gray-zone tables, LFSRs, tau).

Training forward with aqfp active: **sampled**. The group currents d (exact integers, from the +1/-1
weights and inputs) select each group's bit probability p = table[d + size] / 2**8 (the very tables
the export writes), and the count is drawn as the sum over groups of Binomial(T, p): the integer
accumulator's count when its draws are independent (its LFSR draws are pseudo-random; the tests
compare both distributions). The gradient is that of the expected count, T * sum Phi(d / s) with
s = max(sigma(size), 1) (the smooth curve the tables round, widened to at least one product so a
narrow gray zone still passes a gradient), straight through the sample. The count then goes
through the `ThresholdNorm` of `BinaryTwin`; its threshold t (a count at the annotation's T) is
exported per cycle, tau = ceil(t / T * 2**16), so that T can change at run time.

In eval mode the twin runs the integer accumulator (the layer's LFSR draws at its seed and T), so the
fake-quant network and the integer model agree sample by sample. With binary on and aqfp off (a
stage `compress=[..., binary]`), the layer trains as a deterministic binary layer (`BinaryTwin`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cdsl.contract.ref import aqfp_accumulator as ref
from cdsl.contract.ref.conv2d import im2col
from cdsl.sw.cores import register_core
from cdsl.sw.cores.binary import BinaryTwin, decision, signed_weights


def layer_groups(weight_shape, group: int) -> ref.Groups:
    """The crossbar groups of a dense weight [O, K] (one tap) or a conv weight [O, C, k, k] (k*k taps)."""
    return ref.Groups(channels=int(weight_shape[1]), taps=math.prod(weight_shape[2:]), size=group)


def group_masks(groups: ref.Groups) -> torch.Tensor:
    """[G, C, taps]: 1 where input (channel, tap) belongs to group g = chunk * taps + tap."""
    g = torch.arange(groups.count).reshape(-1, 1, 1)
    c = torch.arange(groups.channels).reshape(1, -1, 1)
    t = torch.arange(groups.taps).reshape(1, 1, -1)
    return ((c // groups.size == g // groups.taps) & (t == g % groups.taps)).float()


class AqfpTwin(BinaryTwin):
    """@binary @aqfp(group, T, seed, gray, atten) (see the module docstring)."""

    core_type = ref.AqfpCore

    def __init__(self, annotation):
        super().__init__(annotation)
        self.group, self.T, self.seed = annotation.group, annotation.T, annotation.seed
        self.gray, self.atten = annotation.gray, annotation.atten

    def tables(self, groups: ref.Groups) -> tuple[np.ndarray, np.ndarray | None]:
        """The integer tables of the full groups and of the partial one (None when every group is full)."""
        table = ref.bit_table(groups.size, gray=self.gray, atten=self.atten)
        partial = None if groups.partial == groups.size else ref.bit_table(groups.partial, gray=self.gray,
                                                                            atten=self.atten)
        return table, partial

    def products(self, p):
        if not (self.binary_on(p) and "aqfp" in p.module.active):
            return super().products(p)
        w = signed_weights(p.w, p.module.mask)
        groups = layer_groups(w.shape, self.group)
        if self.training:
            return self.norm(self.sampled_count(p, w, groups))
        return decision(self.integer_margin(p, w, groups))

    def group_currents(self, p, w: torch.Tensor, groups: ref.Groups) -> torch.Tensor:
        """d of every group: [B, O, G, *pixels] (float, integer-valued), by the layer's own product with
        the weights split per group."""
        masks = group_masks(groups).reshape(groups.count, *w.shape[1:])
        split = (w.unsqueeze(1) * masks.unsqueeze(0)).reshape(w.shape[0] * groups.count, *w.shape[1:])
        d = p.module.product(p.x, split, None)
        return d.reshape(d.shape[0], w.shape[0], groups.count, *d.shape[2:])

    def sampled_count(self, p, w: torch.Tensor, groups: ref.Groups) -> torch.Tensor:
        """The count [B, O, *pixels]: a sample of sum_g Binomial(T, p_g) forward, the gradient of its
        expectation backward."""
        d = self.group_currents(p, w, groups)
        table, partial = self.tables(groups)
        codes = ref.probability_codes(d.detach().round().long().movedim(2, -1), groups, table, partial).movedim(-1, 2)
        prob = codes.to(d.dtype) / (1 << ref.DRAW_BITS)
        sigma = torch.tensor([max(ref.gray_sigma(groups.group_size(g), gray=self.gray, atten=self.atten), 1.0)
                              for g in range(groups.count)], dtype=d.dtype).reshape(1, 1, -1, *([1] * (d.dim() - 3)))
        smooth = 0.5 * (1 + torch.erf(d / (sigma * math.sqrt(2.0))))
        expected = self.T * smooth.sum(dim=2)
        sample = torch.binomial(torch.full_like(prob, float(self.T)), prob).sum(dim=2)
        return sample + (expected - expected.detach())

    def tau(self, groups: ref.Groups) -> np.ndarray:
        return ref.tau_from_threshold(self.norm.threshold() / self.T, groups)

    def integer_margin(self, p, w: torch.Tensor, groups: ref.Groups) -> torch.Tensor:
        """The integer accumulator's margins [B, O, *pixels] at the annotation's T and seed."""
        x = torch.round(p.x / p.in_grid.scale).to(torch.int64)
        if x.dim() == 4:  # a convolution: its im2col columns, (channel, ky, kx) order as the weight's
            stride, padding = p.module.stride[0], p.module.padding[0]
            x = im2col(x, kernel=w.shape[-1], stride=stride, padding=padding)
        table, partial = self.tables(groups)
        margin = ref.aqfp_margin(x, w.detach().to(torch.int64).reshape(w.shape[0], -1), groups=groups, table=table,
                                 table_partial=partial, tau=self.tau(groups), T=self.T, seed=self.seed)
        return margin.movedim(-1, 1)

    def output_stage(self, module, weight):
        groups = layer_groups(module.weight.shape, self.group)
        table, partial = self.tables(groups)
        core = ref.AqfpCore(group=self.group, taps=groups.taps, T=self.T, t_max=max(self.T, ref.T_MAX_MIN),
                            seed=self.seed, table=table, table_partial=partial, tau=self.tau(groups), gray=self.gray,
                            atten=self.atten)
        return {"core": core}


register_core("aqfp", AqfpTwin, covers=("binary",))
