"""Canonical `.cdsl` text: `print_spec` (from the IR) and `format_source` (a file, comments kept).

Canonical layout
- two-space indentation inside `model { }` and `train { }`; one blank line between sections;
- one statement per line; a layer's annotations follow its call on the same line, unless that
  line would pass 100 columns (or a comment sits between them): then each annotation goes on
  its own line, indented four spaces;
- values: `key=value` without spaces inside calls, `key = value` in train settings, `, ` between
  arguments and list items; floats in Python's shortest round-trip form (0.003, 1e-05);
- op parameters at their default are left out (`stride=1`, `padding=0`, `bias=true`, a pool
  stride equal to its kernel); annotation parameters are printed in schema order, and hardware
  annotations (`@cim`, `@aqfp`, `@bitsparse`, `@tokens`) print every parameter;
- annotations in the order quant, prune, bitsparse, trunc, bitserial, cim, binary, aqfp, tokens.

`format_source` keeps every comment: a comment on its own line stays before the statement that
follows it (or at the end of its block), a comment after code stays at the end of that
statement's line; single blank lines between statements are kept, runs of them become one.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field

from cdsl.errors import Source

from . import ir
from . import tree as T
from .syntax import lark_parser, parse_tree

MAX_WIDTH = 100
INDENT = "  "
CONT_INDENT = "    "

# ---------------------------------------------------------------- values


def fmt_float(x: float) -> str:
    return repr(float(x))


def fmt_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fmt_bool(b: bool) -> str:
    return "true" if b else "false"


def fmt_type(t: ir.FixedType) -> str:
    if t.frac == 0:
        return f"{'' if t.signed else 'u'}int{t.bits}"
    return f"{'' if t.signed else 'u'}fixed<{t.bits},{t.frac}>"


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _call(name: str, parts: list[str]) -> str:
    return f"{name}({', '.join(parts)})"


# ---------------------------------------------------------------- statements


def print_input(inp: ir.Input) -> str:
    return f"input {inp.name}: {fmt_type(inp.dtype)}{fmt_shape(inp.shape)}"


def fmt_param(value: object) -> str:
    """An op parameter's value (a whole number or a boolean) as the source writes it."""
    return fmt_bool(value) if isinstance(value, bool) else str(value)


def print_op(lay: ir.Layer) -> str:
    """`name = op(inputs, params)`, the op's parameters at their default left out."""
    op = lay.op
    parts = [*lay.inputs, *(f"{k}={fmt_param(v)}" for k, v in op.written_params().items())]
    return f"{lay.name} = {_call(op.source_name, parts)}"


def print_annotation(name: str, a) -> str:
    if isinstance(a, ir.Quant):
        parts = []
        if a.w is not None:
            parts.append(f"w={a.w}")
        if a.a is not None:
            parts.append(f"a={a.a}")
        if a.per is not ir.Granularity.TENSOR:
            parts.append(f"per={a.per.value}")
        if a.signed is not None:
            parts.append(f"signed={fmt_bool(a.signed)}")
        return "@" + _call("quant", parts)
    if isinstance(a, ir.Prune):
        if a.pattern is ir.PrunePattern.NM:
            parts = [f"nm={a.n}:{a.m}"]
        elif a.pattern is ir.PrunePattern.BLOCK:
            parts = [f"block=[{a.block[0]}, {a.block[1]}]", f"sparsity={fmt_float(a.sparsity)}"]
        else:
            parts = [f"sparsity={fmt_float(a.sparsity)}"]
        if a.start != 0:
            parts.append(f"start={a.start}")
        if a.end is not None:
            parts.append(f"end={a.end}")
        return "@" + _call("prune", parts)
    if isinstance(a, ir.BitSparse):
        return "@" + _call("bitsparse", [f"target={a.target}"] + _non_default(a, strength=fmt_float))
    if isinstance(a, ir.Trunc):
        return "@" + _call("trunc", ["bits=[" + ", ".join(str(b) for b in a.bits) + "]"])
    if isinstance(a, ir.BitSerial):
        return "@" + _call("bitserial", [f"lanes={a.lanes}"])
    if isinstance(a, ir.Cim):
        return "@" + _call("cim", [f"rows={a.rows}", f"cols={a.cols}"] + _non_default(
            a, cell=str, dac=str, adc=str, scale=lambda v: v.value, noise=fmt_float))
    if isinstance(a, ir.Binary):
        return "@binary"
    if isinstance(a, ir.Aqfp):
        return "@" + _call("aqfp", [f"group={a.group}", f"T={a.T}"] + _non_default(a, seed=str, gray=fmt_float,
                                                                                      atten=fmt_float))
    if isinstance(a, ir.Tokens):
        return "@" + _call("tokens", [f"keep={fmt_float(a.keep)}"] + _non_default(a, heads=str))
    raise TypeError(f"not an annotation: {a!r}")  # pragma: no cover


def _non_default(a, **formats) -> list[str]:
    """`name=value` for the named optional parameters of annotation `a` that differ from their defaults:
    canonical text leaves defaults out, for every annotation alike."""
    defaults = {f.name: f.default for f in dataclasses.fields(a)}
    return [f"{name}={fmt(getattr(a, name))}" for name, fmt in formats.items() if getattr(a, name) != defaults[name]]


def print_annotations(anns: ir.Annotations) -> list[str]:
    return [print_annotation(n, getattr(anns, n)) for n in anns.present()]


def print_output(names: tuple[str, ...]) -> str:
    return "output " + ", ".join(names)


def print_setting(key: str, train: ir.Train) -> str:
    val = getattr(train, key)
    if key == "data":
        text = "digits" if val == "digits" else fmt_string(val)
    elif key == "optimizer":
        text = val.value
    elif isinstance(val, float):
        text = fmt_float(val)
    else:
        text = str(val)
    return f"{key} = {text}"


def print_stage(st: ir.Stage) -> str:
    parts = [f"epochs={st.epochs}"]
    if st.lr is not None:
        parts.append(f"lr={fmt_float(st.lr)}")
    if st.compress is not None:
        parts.append("compress=" + ("none" if not st.compress else "[" + ", ".join(st.compress) + "]"))
    return "stage " + _call(st.name, parts)


def layer_lines(lay: ir.Layer, indent: str = INDENT) -> list[str]:
    head = print_op(lay)
    anns = print_annotations(lay.annotations)
    one = indent + " ".join([head, *anns])
    if len(one) <= MAX_WIDTH or not anns:
        return [one]
    return [indent + head] + [indent + INDENT + a for a in anns]


# ---------------------------------------------------------------- whole spec


_TRAIN_KEYS = ("data", "epochs", "batch", "optimizer", "lr", "weight_decay", "seed")


def print_spec(spec: ir.Spec) -> str:
    """The canonical text of a spec: `parse(print_spec(s)) == s`."""
    m = spec.model
    out = [f"model {m.name} {{"]
    out += [INDENT + print_input(i) for i in m.inputs]
    out.append("")
    for lay in m.layers:
        out += layer_lines(lay)
    out.append("")
    out.append(INDENT + print_output(m.outputs))
    out.append("}")
    if spec.train != ir.Train():
        out += ["", "train {"]
        for key in _TRAIN_KEYS:
            if key == "weight_decay" and spec.train.weight_decay == 0.0:
                continue
            out.append(INDENT + print_setting(key, spec.train))
        out += [INDENT + print_stage(st) for st in spec.train.stages]
        out.append("}")
    return "\n".join(out) + "\n"


def model_digest(spec: ir.Spec) -> str:
    """SHA-256 of the canonical text of the spec's model section: what a trained network depends on
    (comments, layout and the train section do not count)."""
    import hashlib

    return hashlib.sha256(print_spec(ir.Spec(model=spec.model)).encode()).hexdigest()


# ---------------------------------------------------------------- formatting a file


@dataclass
class _Element:
    """A piece of the file that starts a line when printed, and its comments."""

    start: int
    end: int
    leading: list[tuple[str, bool]] = field(default_factory=list)  # (comment, blank line before it)
    trailing: list[str] = field(default_factory=list)
    blank_before: bool = False


def _blank_before(text: str, pos: int) -> bool:
    """True if a blank line separates `pos` from the code or comment before it."""
    newlines = 0
    i = pos - 1
    while i >= 0 and text[i] in " \t\r\n":
        if text[i] == "\n":
            newlines += 1
        i -= 1
    return newlines >= 2 and i >= 0


def _own_line(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] in " \t\r":
        i -= 1
    return i < 0 or text[i] == "\n"


def format_source(text: str, name: str = "<string>") -> str:
    """`text` rewritten in canonical form, every comment kept. Raises `CdslError` if the spec is
    invalid (a formatter must not guess what a broken file means)."""
    source = Source(name, text)
    from .parser import parse_source  # the full check, with its error handling

    spec = parse_source(source)
    tree = parse_tree(source)
    comments = [
        (tok.start_pos, str(tok).rstrip())
        for tok in lark_parser().lex(text, dont_ignore=True)
        if tok.type == "COMMENT"
    ]

    # The elements of each section, in source order.
    layout: list[tuple[T.SectionAst, _Element, list, _Element]] = []
    elements: list[_Element] = []
    stmt_elems: dict[int, list[_Element]] = {}
    for sec in tree.sections:
        header = _Element(sec.keyword.start, sec.open_brace.end)
        elements.append(header)
        body = []
        for stmt in sec.stmts:
            if isinstance(stmt, T.LayerAst):
                parts = [_Element(stmt.start, stmt.head_end)] + [_Element(a.start, a.end) for a in stmt.annotations]
            else:
                parts = [_Element(stmt.start, stmt.end)]
            elements += parts
            stmt_elems[id(stmt)] = parts
            body.append((stmt, parts))
        close = _Element(sec.close_brace.start, sec.close_brace.end)
        elements.append(close)
        layout.append((sec, header, body, close))
    for el in elements:
        el.blank_before = _blank_before(text, el.start)

    trailer: list[tuple[str, bool]] = []
    k = 0  # elements[k] is the first element that ends after the comment
    for pos, ctext in comments:
        while k < len(elements) and elements[k].end <= pos:
            k += 1
        blank = _blank_before(text, pos)
        if _own_line(text, pos):
            if k < len(elements):
                elements[k].leading.append((ctext, blank))
            else:
                trailer.append((ctext, blank))
        else:
            inside = k < len(elements) and elements[k].start <= pos
            target = elements[k] if inside else elements[k - 1]
            target.trailing.append(ctext)

    out: list[str] = []

    def comments_before(el: _Element, indent: str, first_in_block: bool) -> None:
        for i, (ctext, blank) in enumerate(el.leading):
            if blank and out and not (first_in_block and i == 0) and out[-1] != "":
                out.append("")
            out.append(indent + ctext)
        if el.leading and el.blank_before and out[-1] != "":
            out.append("")

    def with_trailing(line: str, trailing: list[str]) -> str:
        return line + "  " + " ".join(trailing) if trailing else line

    m_inputs = iter(spec.model.inputs)
    m_layers = iter(spec.model.layers)
    stages = iter(spec.train.stages)
    for si, (sec, header, body, close) in enumerate(layout):
        if si > 0:
            out.append("")
        for i, (ctext, blank) in enumerate(header.leading):
            if blank and i > 0:
                out.append("")
            out.append(ctext)
        if header.leading and header.blank_before:
            out.append("")
        head = f"model {sec.name.text} {{" if sec.kind == "model" else "train {"
        out.append(with_trailing(head, header.trailing))
        for bi, (stmt, parts) in enumerate(body):
            first = parts[0]
            if bi > 0 and first.blank_before and not first.leading:
                out.append("")
            comments_before(first, INDENT, bi == 0)
            if isinstance(stmt, T.LayerAst):
                lay = next(m_layers)
                head_line = INDENT + print_op(lay)
                anns = print_annotations(lay.annotations)
                # Annotations print in canonical order; their comments follow them.
                order = list(ir.ANNOTATION_NAMES)
                ann_parts = sorted(zip(stmt.annotations, parts[1:]), key=lambda ap: order.index(ap[0].name.text))
                ann_elems = [el for _, el in ann_parts]
                n_trailing = sum(1 for el in parts if el.trailing)
                one = " ".join([head_line, *anns])
                multi = (
                    len(one) > MAX_WIDTH
                    or any(el.leading for el in ann_elems)
                    or n_trailing > 1
                )
                if not anns or not multi:
                    trailing = [c for el in parts for c in el.trailing]
                    out.append(with_trailing(one, trailing))
                else:
                    out.append(with_trailing(head_line, first.trailing))
                    for a_text, el in zip(anns, ann_elems):
                        for ctext, _ in el.leading:
                            out.append(CONT_INDENT + ctext)
                        out.append(with_trailing(CONT_INDENT + a_text, el.trailing))
                continue
            if isinstance(stmt, T.InputAst):
                line = print_input(next(m_inputs))
            elif isinstance(stmt, T.OutputAst):
                line = print_output(spec.model.outputs)
            elif isinstance(stmt, T.SettingAst):
                line = print_setting(stmt.key.text, spec.train)
            else:
                line = print_stage(next(stages))
            out.append(with_trailing(INDENT + line, first.trailing))
        if close.leading:
            if body and close.leading[0][1] and out[-1] != "":
                out.append("")
            for i, (ctext, blank) in enumerate(close.leading):
                if blank and i > 0 and out[-1] != "":
                    out.append("")
                out.append(INDENT + ctext)
        out.append(with_trailing("}", close.trailing))
    for ctext, blank in trailer:
        if blank and out[-1] != "":
            out.append("")
        out.append(ctext)
    return "\n".join(out) + "\n"


__all__ = ["print_spec", "format_source", "layer_lines", "print_input", "print_op", "print_annotation"]
