"""A test-only layer kind whose payload holds a token selector (as the encoder's payload does once it
carries `@tokens`): its golden step is the selection, zero-padded to [N, D]."""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.intmodel import IntInput, IntLayer, IntModel, Payload, QType
from cdsl.contract.ref.activation import ReluPayload
from cdsl.contract.ref.token_selector import TokenSelector


@codec.serializable("tb_selected_tokens")
@dataclass(frozen=True, eq=False)
class SelectedTokensPayload(Payload):
    selector: TokenSelector

    def run(self, layer, inputs, settings):
        out, _, _ = self.selector.select_padded(inputs[0])
        return out


def selector_model(selector: TokenSelector, n: int, dim: int) -> IntModel:
    """Input tokens -> relu -> the selector's layer: the selector sees the golden trace of `r`."""
    q = QType(8, True, 0.1)
    return IntModel(name="tb_selector", inputs=(IntInput("t", (n, dim), q),), layers=(
        IntLayer("r", ("t",), ((n, dim),), (q,), (n, dim), q, ReluPayload()),
        IntLayer("s", ("r",), ((n, dim),), (q,), (n, dim), q, SelectedTokensPayload(selector)),
    ), outputs=("s",))
