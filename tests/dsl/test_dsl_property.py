"""Property: random valid models (random ops, annotations, shapes, train sections) parse, and
print -> parse gives the same IR; formatting is idempotent and keeps the IR."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdsl.dsl import format_source, parse, print_spec
from cdsl.dsl.analysis import layer_stats


def _float(x: float) -> str:
    return repr(x)


@st.composite
def quant(draw, need_w: bool = False, allow_w: bool = True, allow_per: bool = True):
    parts = []
    w = None
    if allow_w and (need_w or draw(st.booleans())):
        w = draw(st.integers(2, 16))
        parts.append(f"w={w}")
    if draw(st.booleans()) or not parts:
        parts.append(f"a={draw(st.integers(2, 16))}")
    if allow_per and draw(st.booleans()):
        parts.append(f"per={draw(st.sampled_from(['tensor', 'channel']))}")
    if draw(st.booleans()):
        parts.append(f"signed={draw(st.sampled_from(['true', 'false']))}")
    draw(st.randoms()).shuffle(parts)
    return w, "@quant(" + ", ".join(parts) + ")"


@st.composite
def prune(draw, mats, epochs):
    kind = draw(st.sampled_from(["sparsity", "nm", "block"]))
    parts = []
    if kind == "nm":
        ms = [m for m in (2, 4, 8, 16) if all(c % m == 0 for _, c in mats)]
        if not ms:
            kind = "sparsity"
        else:
            m = draw(st.sampled_from(ms))
            parts.append(f"nm={draw(st.integers(1, m - 1))}:{m}")
    if kind == "block":
        rows = [b for b in (1, 2, 4) if all(r % b == 0 for r, _ in mats)]
        cols = [b for b in (1, 2, 4) if all(c % b == 0 for _, c in mats)]
        parts.append(f"block=[{draw(st.sampled_from(rows))}, {draw(st.sampled_from(cols))}]")
    if kind in ("sparsity", "block"):
        parts.append(f"sparsity={_float(draw(st.floats(0.01, 0.99)))}")
    start = 0
    if draw(st.booleans()):
        start = draw(st.integers(0, epochs - 1))
        parts.append(f"start={start}")
    if draw(st.booleans()):
        parts.append(f"end={draw(st.integers(start + 1, epochs))}")
    return "@prune(" + ", ".join(parts) + ")"


def matrices(op: str, params: dict, shape):
    if op == "dense":
        return [(params["units"], shape[0])]
    if op == "conv2d":
        return [(params["channels"], shape[0] * params["kernel"] ** 2)]
    return []


@st.composite
def dense_like_annotations(draw, mats, binary_input: bool, epochs: int, in_channels: int):
    anns = []
    if binary_input and draw(st.booleans()):
        if draw(st.booleans()):
            anns.append(draw(quant(allow_w=False))[1])
        anns.append("@binary")
        if draw(st.booleans()):  # groups hold input channels at one kernel position
            anns.append(f"@aqfp(group={draw(st.integers(1, in_channels))}, T={draw(st.integers(1, 64))}, seed={draw(st.integers(1, 2**32 - 1))})")
        if draw(st.booleans()):
            anns.append(draw(prune(mats, epochs)))
        return anns
    w = None
    if draw(st.booleans()):
        w, q = draw(quant())
        anns.append(q)
    if draw(st.booleans()):
        anns.append(draw(prune(mats, epochs)))
    if w is not None:
        if draw(st.booleans()):
            anns.append(f"@bitsparse(target={draw(st.integers(1, w))}, strength={_float(draw(st.floats(1e-6, 1.0)))})")
        if draw(st.booleans()):
            bits = draw(st.lists(st.integers(1, w), min_size=1, max_size=4, unique=True))
            anns.append("@trunc(bits=[" + ", ".join(map(str, bits)) + "])")
        hw = draw(st.sampled_from(["none", "bitserial", "cim"]))
        if hw == "bitserial":
            anns.append(f"@bitserial(lanes={draw(st.integers(1, in_channels))})")  # lanes run over input channels
        elif hw == "cim":
            cell = draw(st.integers(1, w))
            cols = draw(st.integers(math.ceil(w / cell), 64))
            anns.append(
                f"@cim(rows={draw(st.integers(1, 128))}, cols={cols}, cell={cell}, dac={draw(st.integers(1, 8))}, "
                f"adc={draw(st.integers(1, 16))}, scale={draw(st.sampled_from(['channel', 'tensor']))}, "
                f"noise={_float(draw(st.floats(0, 1)))})"
            )
    draw(st.randoms()).shuffle(anns)
    return anns


@st.composite
def models(draw):
    epochs = draw(st.integers(1, 50))
    rank = draw(st.sampled_from([1, 2, 3]))
    if rank == 1:
        shape = (draw(st.integers(1, 64)),)
    elif rank == 2:
        shape = (draw(st.integers(1, 17)), draw(st.sampled_from([4, 6, 8, 16])))
    else:
        shape = (draw(st.integers(1, 4)), draw(st.integers(2, 12)), draw(st.integers(2, 12)))
    bits = draw(st.integers(1, 16))
    frac = draw(st.integers(0, bits))
    tname = draw(st.sampled_from(["fixed", "ufixed"]))
    dtype = f"{tname}<{bits},{frac}>" if draw(st.booleans()) else f"{'u' if tname == 'ufixed' else ''}int{bits}"
    lines = [f"input x: {dtype}[{', '.join(map(str, shape))}]"]
    binary = False  # only sign(...) gives +1/-1 (a 1-bit input holds 0/1 or -1/0: @binary is refused on it)
    prev = "x"
    produced = [("x", shape)]  # every tensor so far, for the second input of add
    n = draw(st.integers(1, 6))
    layer_lines = []
    for i in range(n):
        name = f"l{i}"
        choices = {1: ["dense", "relu", "sign"], 2: ["encoder", "cls_head", "relu"], 3: ["conv2d", "relu", "sign", "pool", "flatten"]}[len(shape)]
        if len(shape) == 3 and shape[1] % 2 == 0 and shape[2] % 2 == 0:
            choices.append("patch_embed")
        choices.append("add")  # prev plus itself or an earlier tensor of its shape
        op = draw(st.sampled_from(choices))
        args = [prev]
        anns: list[str] = []
        params: dict = {}
        if op == "dense":
            params = {"units": draw(st.integers(1, 48))}
            args.append(f"units={params['units']}")
            if draw(st.booleans()):
                args.append(f"bias={draw(st.sampled_from(['true', 'false']))}")
            anns = draw(dense_like_annotations(matrices(op, params, shape), binary, epochs, shape[0]))
            out = (params["units"],)
        elif op == "conv2d":
            c, h, w = shape
            pad = draw(st.integers(0, 2))
            k = draw(st.integers(1, min(h, w) + 2 * pad))
            s = draw(st.integers(1, 3))
            params = {"channels": draw(st.integers(1, 8)), "kernel": k}
            args += [f"channels={params['channels']}", f"kernel={k}", f"stride={s}", f"padding={pad}"]
            anns = draw(dense_like_annotations(matrices(op, params, shape), binary, epochs, shape[0]))
            out = (params["channels"], (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
        elif op in ("relu", "sign"):
            out = shape
        elif op == "add":
            args.append(draw(st.sampled_from([t for t, s in produced if s == shape])))
            draw(st.randoms()).shuffle(args)
            out = shape
            if draw(st.booleans()):
                anns.append(draw(quant(allow_w=False, allow_per=False))[1])
        elif op == "pool":
            c, h, w = shape
            k = draw(st.integers(1, min(h, w)))
            s = draw(st.integers(1, 3))
            op = draw(st.sampled_from(["maxpool", "avgpool"]))
            args += [f"kernel={k}", f"stride={s}"]
            out = (c, (h - k) // s + 1, (w - k) // s + 1)
        elif op == "flatten":
            out = (math.prod(shape),)
        elif op == "patch_embed":
            c, h, w = shape
            p = draw(st.sampled_from([d for d in (1, 2) if h % d == 0 and w % d == 0]))
            dim = draw(st.sampled_from([4, 8, 16]))
            args += [f"patch={p}", f"dim={dim}"]
            out = ((h // p) * (w // p) + 1, dim)
            if draw(st.booleans()):
                anns.append(draw(quant())[1])
        elif op == "encoder":
            heads = draw(st.sampled_from([h for h in (1, 2, 4) if shape[1] % h == 0]))
            mlp = draw(st.sampled_from([8, 16, 32]))
            args += [f"heads={heads}", f"mlp={mlp}"]
            out = shape
            if draw(st.booleans()):
                anns.append(draw(quant())[1])
            if draw(st.booleans()):
                d = shape[1]
                anns.append(draw(prune([(3 * d, d), (d, d), (mlp, d), (d, mlp)], epochs)))
            if shape[0] >= 2 and draw(st.booleans()):  # a selector needs a candidate and heads dividing D
                t_heads = draw(st.sampled_from([h for h in (1, 2, 3, 4) if shape[1] % h == 0]))
                anns.append(f"@tokens(keep={_float(draw(st.floats(0.01, 1.0)))}, heads={t_heads})")
        else:  # cls_head
            classes = draw(st.integers(1, 16))
            args.append(f"classes={classes}")
            out = (classes,)
            if draw(st.booleans()):
                anns.append(draw(prune([(classes, shape[1])], epochs)))
        binary = op == "sign" or (binary and op in ("flatten", "maxpool"))
        layer_lines.append(f"{name} = {op}({', '.join(args)}) {' '.join(anns)}")
        prev, shape = name, out
        produced.append((name, out))
    # layers may come in any order
    draw(st.randoms()).shuffle(layer_lines)
    lines += layer_lines
    lines.append(f"output {prev}")
    text = "model r {\n" + "\n".join("  " + ln for ln in lines) + "\n}\n"
    if draw(st.booleans()):
        settings_ = [f"epochs = {epochs}", f"batch = {draw(st.integers(1, 512))}",
                     f"optimizer = {draw(st.sampled_from(['adam', 'adamw', 'sgd']))}",
                     f"lr = {_float(draw(st.floats(1e-6, 1.0)))}", f"seed = {draw(st.integers(0, 2**32 - 1))}",
                     f"weight_decay = {_float(draw(st.floats(0, 0.5)))}",
                     draw(st.sampled_from(['data = digits', 'data = "x.npz"', 'data = "a\\\\b \\"c\\".npz"']))]
        chosen = draw(st.lists(st.sampled_from(settings_), unique=True))
        if "epochs" not in " ".join(chosen):
            chosen.append(f"epochs = {epochs}")
        text += "train {\n" + "\n".join("  " + s for s in chosen) + "\n}\n"
    elif draw(st.booleans()):
        split = draw(st.integers(0, epochs - 1)) if epochs > 1 else 0
        stages = [f"stage a(epochs={epochs - split}, compress=none)"] if split == 0 else [
            f"stage a(epochs={split}, compress=none)", f"stage b(epochs={epochs - split}, lr=0.01)"]
        text += "train {\n" + "\n".join("  " + s for s in stages) + "\n}\n"
    else:
        text += f"train {{\n  epochs = {epochs}\n}}\n"
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_random_models_round_trip(text):
    spec = parse(text)
    printed = print_spec(spec)
    assert parse(printed) == spec, printed
    assert print_spec(parse(printed)) == printed
    formatted = format_source(text)
    assert parse(formatted) == spec
    assert format_source(formatted) == formatted
    stats = layer_stats(spec)
    assert len(stats) == len(spec.model.layers) + len(spec.model.inputs)
    assert all(s.macs >= 0 and 0 <= s.nonzero <= s.weights for s in stats)
