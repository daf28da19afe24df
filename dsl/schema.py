"""Parameter schemas: what each annotation, train key and stage accepts (an op's schema is
part of its class in `dsl.ir`).

The grammar takes any `name=value` list; `bind` checks such a list against a schema and turns
each value into its Python type, with a located `CdslError` for an unknown, duplicate, missing,
ill-typed or out-of-range parameter.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from cdsl.errors import CdslError, Source, Span

from . import ir
from . import tree as T
from .param import MAX_SIZE, Param, bool_param, int_param
from .syntax import did_you_mean

_GRAN = ("tensor", "channel")

ANNOTATION_PARAMS: dict[str, tuple[Param, ...]] = {
    "quant": (
        int_param("w", lo=2, hi=16),
        int_param("a", lo=2, hi=16),
        Param("per", "enum", choices=_GRAN),
        bool_param("signed"),
    ),
    "prune": (
        Param("sparsity", "float", lo=0.0, hi=1.0, lo_open=True, hi_open=True),
        Param("nm", "ratio"),
        Param("block", "intlist", lo=1, hi=MAX_SIZE, length=2),
        int_param("start", lo=0, hi=1_000_000),
        int_param("end", lo=1, hi=1_000_000),
    ),
    "bitsparse": (
        int_param("target", True, lo=1, hi=16, hint="target=BITS"),
        Param("strength", "float", lo=0.0, lo_open=True, hi=1e6),
    ),
    "trunc": (Param("bits", "intlist", required=True, lo=1, hi=16, hint="bits=[8, 6, 4]"),),
    "bitserial": (int_param("lanes", True, hi=65536, hint="lanes=L"),),
    "cim": (
        int_param("rows", True, hi=65536, hint="rows=R"),
        int_param("cols", True, hi=65536, hint="cols=C"),
        int_param("cell", lo=1, hi=16),
        int_param("dac", lo=1, hi=8),
        int_param("adc", lo=1, hi=16),
        Param("scale", "enum", choices=_GRAN),
        Param("noise", "float", lo=0.0, hi=1.0),
    ),
    "binary": (),
    "aqfp": (
        int_param("group", True, hi=65536, hint="group=N"),
        int_param("T", True, hi=65536, hint="T=CYCLES"),
        int_param("seed", lo=1, hi=(1 << 32) - 1),
        Param("gray", "float", lo=0.0, hi=1e3),
        Param("atten", "float", lo=0.0, hi=1e3),
    ),
    "tokens": (
        Param("keep", "float", required=True, lo=0.0, hi=1.0, lo_open=True, hint="keep=RATIO (0 < keep <= 1)"),
        int_param("heads", hi=1024),
    ),
}

TRAIN_PARAMS: tuple[Param, ...] = (
    Param("data", "data"),
    int_param("epochs", hi=1_000_000),
    int_param("batch", hi=MAX_SIZE),
    Param("optimizer", "enum", choices=tuple(o.value for o in ir.Optimizer)),
    Param("lr", "float", lo=0.0, lo_open=True, hi=1e3),
    Param("weight_decay", "float", lo=0.0, hi=1e3),
    int_param("seed", lo=0, hi=(1 << 32) - 1),
)

STAGE_PARAMS: tuple[Param, ...] = (
    int_param("epochs", True, hi=1_000_000, hint="epochs=N"),
    Param("lr", "float", lo=0.0, lo_open=True, hi=1e3),
    Param("compress", "compress"),
)

# ---------------------------------------------------------------- binding

_KIND_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "ratio": "a ratio N:M such as 2:4",
    "intlist": "a list of whole numbers such as [8, 4]",
    "namelist": "a list of names",
    "data": "digits or a path string such as \"my.npz\"",
    "compress": "none, all or a list of annotation names such as [quant, prune]",
}


def describe_value(v: T.Value) -> str:
    if v.kind == "int":
        return str(v.value)
    if v.kind == "float":
        return repr(v.value)
    if v.kind == "bool":
        return "true" if v.value else "false"
    if v.kind == "name":
        return f"'{v.value}'"
    if v.kind == "string":
        return f"the string {v.value}" if len(str(v.value)) <= 40 else "a string"
    if v.kind == "ratio":
        return f"{v.value[0]}:{v.value[1]}"
    return "a list"


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def kind_words(p: Param) -> str:
    if p.kind == "enum":
        return " or ".join(p.choices)
    words = _KIND_WORDS[p.kind]
    if p.kind in ("int", "float") and (p.lo is not None or p.hi is not None):
        return words + " " + range_words(p)
    return words


def range_words(p: Param) -> str:
    lo, hi = p.lo, p.hi
    if p.kind == "float" or p.lo_open or p.hi_open:
        parts = []
        if lo is not None:
            parts.append(f"{'>' if p.lo_open else '>='} {_fmt_num(lo)}")
        if hi is not None:
            parts.append(f"{'<' if p.hi_open else '<='} {_fmt_num(hi)}")
        return " and ".join(parts)
    if lo is not None and hi is not None:
        return f"from {_fmt_num(lo)} to {_fmt_num(hi)}"
    if lo is not None:
        return f"of at least {_fmt_num(lo)}"
    return f"of at most {_fmt_num(hi)}"  # pragma: no cover


def _in_range(p: Param, x: float) -> bool:
    if p.lo is not None and (x < p.lo or (p.lo_open and x == p.lo)):
        return False
    if p.hi is not None and (x > p.hi or (p.hi_open and x == p.hi)):
        return False
    return True


def decode_string(v: T.Value, source: Source) -> str:
    raw = str(v.value)[1:-1]
    out = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1]  # the lexer guarantees a character after '\'
            if nxt not in ('"', "\\"):
                raise CdslError(
                    f"unsupported escape '\\{nxt}' in a string",
                    source=source, span=v.span, expected='\\" or \\\\ (the only escapes)',
                )
            out.append(nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def convert(p: Param, v: T.Value, what: str, source: Source) -> object:
    """The Python value of `v` for parameter `p`, or a located error."""

    def bad(detail: str | None = None) -> CdslError:
        msg = detail or f"{what}: '{p.name}' must be {kind_words(p)}, got {describe_value(v)}"
        return CdslError(msg, source=source, span=v.span, expected=kind_words(p))

    k = p.kind
    if k == "int":
        if v.kind != "int":
            raise bad()
        x = v.value
        if not _in_range(p, x):
            raise bad(f"{what}: '{p.name}' must be {range_words(p)}, got {x}")
        return x
    if k == "float":
        if v.kind not in ("int", "float"):
            raise bad()
        x = float(v.value) if v.kind == "float" else v.value
        if v.kind == "int":
            if abs(x) > 1e300:
                raise bad(f"{what}: '{p.name}' = {_short(str(x))} is out of range")
            x = float(x)
        if not math.isfinite(x):
            raise bad(f"{what}: '{p.name}' must be a finite number")
        if not _in_range(p, x):
            raise bad(f"{what}: '{p.name}' must be {range_words(p)}, got {_fmt_num(x)}")
        return x
    if k == "bool":
        if v.kind != "bool":
            raise bad()
        return v.value
    if k == "enum":
        if v.kind != "name" or v.value not in p.choices:
            hint = did_you_mean(str(v.value), p.choices) if v.kind == "name" else ""
            raise bad(f"{what}: '{p.name}' must be {kind_words(p)}, got {describe_value(v)}{hint}")
        return v.value
    if k == "ratio":
        if v.kind != "ratio":
            raise bad()
        return v.value
    if k == "intlist":
        if v.kind != "list":
            raise bad()
        if p.length is not None and len(v.value) != p.length:
            raise bad(f"{what}: '{p.name}' must be a list of {p.length} whole numbers, got {len(v.value)}")
        if not v.value:
            raise bad(f"{what}: '{p.name}' must not be empty")
        out = []
        for item in v.value:
            if item.kind != "int":
                raise CdslError(
                    f"{what}: '{p.name}' must hold whole numbers, got {describe_value(item)}",
                    source=source, span=item.span, expected="a whole number",
                )
            if not _in_range(p, item.value):
                raise CdslError(
                    f"{what}: each entry of '{p.name}' must be {range_words(p)}, got {item.value}",
                    source=source, span=item.span, expected=f"a whole number {range_words(p)}",
                )
            out.append(item.value)
        return tuple(out)
    if k == "data":
        if v.kind == "string":
            path = decode_string(v, source)
            if not path:
                raise bad(f"{what}: 'data' must not be an empty path")
            return path
        if v.kind == "name" and v.value == "digits":
            return "digits"
        raise bad(f"{what}: unknown data set {describe_value(v)}; the bundled set is digits, or give a path string")
    if k == "compress":
        if v.kind == "name" and v.value in ("none", "all"):
            return () if v.value == "none" else None
        if v.kind != "list":
            raise bad()
        seen: dict[str, T.Value] = {}
        for item in v.value:
            if item.kind != "name" or item.value not in ir.ANNOTATION_NAMES:
                hint = did_you_mean(str(item.value), ir.ANNOTATION_NAMES) if item.kind == "name" else ""
                raise CdslError(
                    f"{what}: {describe_value(item)} is not an annotation name{hint}",
                    source=source, span=item.span, expected="one of: " + ", ".join(ir.ANNOTATION_NAMES),
                )
            if item.value in seen:
                raise CdslError(
                    f"{what}: '{item.value}' is listed twice in 'compress'", source=source, span=item.span
                )
            seen[item.value] = item
        return tuple(n for n in ir.ANNOTATION_NAMES if n in seen)  # canonical order
    raise AssertionError(k)  # pragma: no cover


def _closest(word: str, choices) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"{close[0]}=... (the closest parameter name)" if close else None


def _short(s: str) -> str:
    return s if len(s) <= 20 else s[:17] + "..."


@dataclass
class Bound:
    """The result of `bind`: positional values and named values (with the nodes, for spans)."""

    positional: list[T.Value]
    values: dict[str, object]
    nodes: dict[str, T.Arg]

    def get(self, name: str, default=None):
        return self.values.get(name, default)


def bind(
    args: list[T.Arg] | None,
    params: tuple[Param, ...],
    *,
    what: str,
    source: Source,
    at: Span,
    positional_ok: bool = False,
    check_required: bool = True,
) -> Bound:
    """Check `args` against `params`: names known and unique, values typed and in range,
    required ones present. `what` names the owner in messages (e.g. 'dense', '@quant')."""
    positional: list[T.Value] = []
    values: dict[str, object] = {}
    nodes: dict[str, T.Arg] = {}
    by_name = {p.name: p for p in params}
    names = ", ".join(p.name for p in params)
    for arg in args or []:
        if arg.name is None:
            if positional_ok and not nodes:
                positional.append(arg.value)
                continue
            if positional_ok:
                msg = f"{what}: a positional argument after named parameters; inputs come first"
            else:
                msg = f"{what}: parameters are written name=value, got a bare {describe_value(arg.value)}"
            exp = "one of: " + ", ".join(f"{p.name}=..." for p in params) if params else f"no parameters for {what}"
            raise CdslError(msg, source=source, span=arg.span, expected=exp)
        key = arg.name.text
        p = by_name.get(key)
        if p is None:
            if not params:
                raise CdslError(f"{what} takes no parameters, got '{key}'", source=source, span=arg.name.span)
            raise CdslError(
                f"unknown parameter '{key}' for {what}; expected one of: {names}",
                source=source, span=arg.name.span,
                expected=_closest(key, by_name),
            )
        if key in nodes:
            first = nodes[key].span
            raise CdslError(
                f"duplicate parameter '{key}' for {what} (first given at {first.line}:{first.col})",
                source=source, span=arg.name.span,
            )
        nodes[key] = arg
        values[key] = convert(p, arg.value, what, source)
    for p in params:
        if check_required and p.required and p.name not in values:
            raise CdslError(
                f"{what} needs the parameter '{p.name}'", source=source, span=at,
                expected=p.hint or f"{p.name}=...",
            )
    return Bound(positional, values, nodes)


def require(bound: Bound, params: tuple[Param, ...], *, what: str, source: Source, at: Span) -> None:
    """The required-parameter check of `bind`, run separately."""
    for p in params:
        if p.required and p.name not in bound.values:
            raise CdslError(
                f"{what} needs the parameter '{p.name}'", source=source, span=at,
                expected=p.hint or f"{p.name}=...",
            )
