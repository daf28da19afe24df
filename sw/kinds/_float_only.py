"""The base of kinds that train in float and fake quantization but have no integer form yet
(patch_embed, encoder, cls_head: they need integer softmax, LayerNorm and GELU)."""

from __future__ import annotations

from cdsl.errors import CdslError
from cdsl.sw.registry import SwKind


class FloatOnlyKind(SwKind):
    annotations = frozenset({"quant", "prune"})
    exports = False
    name = ""

    def no_integer_form(self, layer):
        return CdslError(f"integer export of {self.name} (layer {layer.name!r}) is not supported yet "
                        "(it needs integer softmax, LayerNorm and GELU)", span=layer.span)
