"""Shared fixtures of the software-path tests."""

import numpy as np
import pytest


def numpy_eval(intmodel, x_int):
    """An independent integer evaluation of an IntModel, from plain math (numpy + Python ints).

    Not built on cdsl.contract.ref: convolution as a sum of shifted slices, requantization with
    Python big integers and floor division, pooling by explicit window slicing.
    Returns {tensor name: int64 array} for the inputs and every layer.
    """
    env = {intmodel.inputs[0].name: np.asarray(x_int, dtype=np.int64)}
    for lay in intmodel.layers:
        x = env[lay.inputs[0]]
        kind, op = lay.kind, lay.payload
        if kind == "dense":
            acc = x.astype(object) @ op.weight.astype(object).T
            if op.bias is not None:
                acc = acc + op.bias.astype(object)
            y = _requant(acc, op.requant, channel_axis=-1)
        elif kind == "conv2d":
            p, s, k = op.padding, op.stride, op.kernel
            weight = op.weight.reshape(op.weight.shape[0], -1, k, k)
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))).astype(object)
            n, c, h, w = xp.shape
            ho, wo = (h - k) // s + 1, (w - k) // s + 1
            acc = np.zeros((n, weight.shape[0], ho, wo), dtype=object)
            for a in range(k):
                for b in range(k):
                    patch = xp[:, :, a : a + s * (ho - 1) + 1 : s, b : b + s * (wo - 1) + 1 : s]  # n c ho wo
                    acc = acc + np.einsum("nchw,oc->nohw", patch, weight[:, :, a, b].astype(object))
            if op.bias is not None:
                acc = acc + op.bias.astype(object)[None, :, None, None]
            y = _requant(acc, op.requant, channel_axis=1)
        elif kind == "relu":
            y = np.maximum(x, 0)
        elif kind == "sign":
            y = np.where(x >= 0, 1, -1)
        elif kind == "flatten":
            y = x.reshape(x.shape[0], -1)
        elif kind in ("maxpool", "avgpool"):
            k, s = op.kernel, op.stride
            n, c, h, w = x.shape
            ho, wo = (h - k) // s + 1, (w - k) // s + 1
            wins = np.stack(
                [x[:, :, a : a + s * (ho - 1) + 1 : s, b : b + s * (wo - 1) + 1 : s] for a in range(k) for b in range(k)]
            )
            if kind == "maxpool":
                y = wins.max(axis=0)
            else:
                y = _requant(wins.astype(object).sum(axis=0), op.requant, channel_axis=None)
        else:
            raise AssertionError(f"numpy_eval: no plain-math statement of {kind!r}")
        env[lay.name] = np.asarray(y, dtype=np.int64)
    return env


def _requant(acc, rq, *, channel_axis):
    mult = [int(m) for m in rq.multiplier]
    shift = [int(s) for s in rq.shift]
    out = np.empty(acc.shape, dtype=object)
    it = np.ndindex(acc.shape)
    for idx in it:
        c = 0 if (channel_axis is None or len(mult) == 1) else idx[channel_axis]
        v = int(acc[idx]) * mult[c]
        if shift[c] > 0:
            v = (v + 2 ** (shift[c] - 1)) // 2 ** shift[c]
        out[idx] = min(max(v, rq.qmin), rq.qmax)
    return out


@pytest.fixture(scope="session")
def numpy_evaluator():
    return numpy_eval


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The models are tiny: one thread is fastest, and two threads on a busy 2-core machine are 3x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
