"""Plain-Python-integer statements of the ViT kernels, independent of `cdsl.contract.ref`, for tests."""

from __future__ import annotations


def shiftmax_python(row: list[int], x0: int) -> list[int]:
    """I-ViT's Shiftmax of one row with Python integers (with our exact-sum normalization: a 62-bit
    reciprocal of the row sum, 7-bit probabilities)."""
    m = max(row)
    es = []
    for v in row:
        d = v - m
        d = d + (d >> 1) - (d >> 4)
        d = max(d, 15 * x0)
        q = d // x0
        r = d - q * x0
        es.append(((r - 2 * x0) * 2 ** (15 - q)) // 2)
    f = 2 ** 62 // sum(es)
    return [(e * f) // 2 ** (62 - 7) for e in es]


def assert_fake_quant_equals_golden(run, samples: int) -> None:
    """A trained run's network (fake quant) and its integer golden model give the same codes at every
    layer on the first `samples` test inputs, and the run's recorded agreement is 100%."""
    import torch

    from cdsl.contract.golden import golden, quantize_input

    x = run.data.x_test[:samples]
    fq = run.net.trace_codes(x)
    _, gold = golden(run.intmodel, quantize_input(run.intmodel, x), trace=True)
    for lay in run.intmodel.layers:
        assert torch.equal(fq[lay.name], gold[lay.name]), f"layer {lay.name}: fake quant and golden differ"
    assert run.metrics["golden"]["agreement"] == 1.0
