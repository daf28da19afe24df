"""The plan node of the patch embedding's first part: an image [C, H, W] -> the patch tokens
[Np + 1, C P P] (a zero token, then the patches in row-major order, each channel-major: the order of
`cdsl.contract.ref.patch_embed.patches`), on a `Patchify` engine (`cdsl.hw.patchify`). No arithmetic:
the patch embedding's linear map is a `TokenLinearNode` with a per-token table that follows.

Cycle model: the image is stored, then the (Np + 1) C P P output words leave one per cycle after one
cycle of memory latency: delay = (Np + 1) C P P + 1 from the last input transfer to the last output
transfer, whatever the spacing of the input words.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.hw.plan import Node, StreamType

__all__ = ["PatchifyNode", "plan_patchify", "embed_table"]


@codec.serializable("patchify")
@dataclass(frozen=True, eq=False)
class PatchifyNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]  # the image [C, H, W]
    out_type: StreamType  # tokens [Np + 1, C P P]
    patch: int

    def component(self):
        from cdsl.hw.patchify import Patchify

        return Patchify(node=self)

    def delay(self, settings) -> int:
        return self.out_type.words + 1

    def delay_tokens(self, settings, tokens, kept=None) -> int:
        return self.delay(settings)  # an image in, always every token out

    def out_tokens(self, tokens: int) -> int | None:
        return self.out_type.shape[0]

    def interval(self, settings) -> int:
        """Back to back: load the image, then read it out (one word per cycle each), and one cycle to
        return to loading."""
        return self.in_types[0].words + self.out_type.words + 1

    def memory_bits(self) -> int:
        return self.in_types[0].words * self.in_types[0].bits

    def describe(self) -> str:
        ch, h, w = self.in_types[0].shape
        return f"patchify [{ch}, {h}, {w}] -> {list(self.out_type.shape)} ({self.patch}x{self.patch} patches, a zero token first)"

    def figures(self, settings) -> dict:
        return {"delay": self.delay(settings), "interval": self.interval(settings), "image_bits": self.memory_bits()}


def plan_patchify(name: str, input: str, in_type: StreamType, patch: int) -> PatchifyNode:
    """The node cutting the image stream `input` ([C, H, W], `in_type`) into P x P patch tokens."""
    if len(in_type.shape) != 3:
        raise ValueError(f"patchify {name!r}: expected an image [C, H, W], found shape {list(in_type.shape)}")
    ch, h, w = in_type.shape
    if not isinstance(patch, int) or patch < 1 or h % patch or w % patch:
        raise ValueError(f"patchify {name!r}: patch {patch!r} does not divide the image's {h} x {w}")
    tokens = (h // patch) * (w // patch) + 1
    return PatchifyNode(name=name, inputs=(input,), in_types=(in_type,),
                        out_type=StreamType(in_type.bits, in_type.signed, (tokens, ch * patch * patch)), patch=patch)


def embed_table(cls, bias, pos):
    """The per-token bias table of the patch embedding's linear map after a patchify ([Np + 1, D]):
    row 0 = cls + pos[0] (the zero token's dot product is 0), row 1 + i = bias + pos[1 + i]
    (`cdsl.contract.ref.patch_embed`: the same sums in accumulator units before the requantization)."""
    import numpy as np

    pos = np.asarray(pos, dtype=np.int64)
    table = pos + np.asarray(bias, dtype=np.int64).reshape(1, -1)
    table[0] = np.asarray(cls, dtype=np.int64) + pos[0]
    return table
