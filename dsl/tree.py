"""The syntax tree of a `.cdsl` file, as written (before checking).

The grammar is generic (`name=value` arguments everywhere), so this tree holds what the user
wrote with a span on every piece; `dsl.checker` lowers it to the checked IR (`dsl.ir`) and the
formatter (`dsl.printer.format_source`) uses its offsets to place comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdsl.errors import Span


@dataclass
class Node:
    span: Span
    start: int  # character offsets into the source text, end exclusive
    end: int


@dataclass
class Value(Node):
    """kind: 'int' | 'float' | 'bool' | 'name' | 'string' | 'ratio' | 'list'."""

    kind: str
    value: object  # int, float, bool, str, (n, m) for a ratio, list[Value] for a list


@dataclass
class Ident(Node):
    text: str


@dataclass
class Arg(Node):
    """`name=value`, or a positional `value` (name is None)."""

    name: Ident | None
    value: Value


@dataclass
class AnnotationAst(Node):
    name: Ident
    args: list[Arg] | None  # None: written without parentheses (`@binary`)


@dataclass
class InputAst(Node):
    name: Ident
    dtype_name: Ident
    dtype_params: list[Value] | None  # `<B,F>` or None
    dtype_span: Span
    shape: list[Value]
    shape_span: Span


@dataclass
class LayerAst(Node):
    name: Ident
    op: Ident
    args: list[Arg]
    annotations: list[AnnotationAst]
    head_end: int  # offset just after the closing ')' of the op call
    head_span: Span


@dataclass
class OutputAst(Node):
    names: list[Ident]


@dataclass
class SettingAst(Node):
    key: Ident
    value: Value


@dataclass
class StageAst(Node):
    name: Ident
    args: list[Arg]


@dataclass
class SectionAst(Node):
    """`model NAME { ... }` (kind 'model') or `train { ... }` (kind 'train', name None)."""

    kind: str
    name: Ident | None
    keyword: Ident
    open_brace: Ident
    close_brace: Ident
    stmts: list = field(default_factory=list)


@dataclass
class FileAst:
    sections: list[SectionAst]
