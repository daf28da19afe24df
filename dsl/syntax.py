"""Text -> syntax tree (`dsl.tree`), with syntax errors turned into located `CdslError`s.

Lark parses with LALR and the basic lexer. A Lark `UnexpectedInput` never escapes: it becomes a
`CdslError` that names what was found and what was expected, in words, and for the common
mistakes (missing `=`, missing `,`, unclosed brace or parenthesis, a misspelled keyword,
annotation parameters outside parentheses, nested lists) says what is probably wrong: mostly by
matching the error against a table of labelled bad examples (dsl/syntax_examples.py), see
"errors" below.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from cdsl.errors import CdslError, Source, Span

from . import ir
from . import tree as T
from .syntax_examples import NO_HINT, SYNTAX_EXAMPLES

KEYWORDS = ("model", "input", "output", "train", "stage", "true", "false")

# How each terminal reads in an error message.
_WORDS = {
    "NAME": "a name",
    "INT": "a whole number",
    "FLOAT": "a number",
    "STRING": 'a string ("...")',
    "$END": "the end of the file",
}
# The order in which expected terminals are listed.
_ORDER = [
    "EQUAL", "COLON", "COMMA", "LPAR", "RPAR", "LSQB", "RSQB", "LBRACE", "RBRACE", "LESSTHAN",
    "MORETHAN", "AT", "NAME", "INT", "FLOAT", "STRING", "TRUE", "FALSE", "MODEL", "TRAIN",
    "INPUT", "OUTPUT", "STAGE", "$END",
]
_VALUE_TERMINALS = {"INT", "FLOAT", "NAME", "STRING", "TRUE", "FALSE"}


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    grammar = resources.files(__package__).joinpath("cdsl.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=False,
    )


@lru_cache(maxsize=1)
def _literals() -> dict[str, str]:
    out = {}
    for term in lark_parser().terminals:
        if term.pattern.type == "str":
            out[term.name] = term.pattern.value
    return out


def terminal_words(name: str) -> str:
    if name in _WORDS:
        return _WORDS[name]
    lit = _literals().get(name)
    if lit is not None:
        return f"'{lit}'"
    return name.lower()


def expected_words(expected: set[str] | frozenset[str]) -> str:
    names = set(expected)
    items: list[str] = []
    if _VALUE_TERMINALS <= names:
        names -= _VALUE_TERMINALS
        names.discard("LSQB")
        items.append("a value (number, name, true/false, string or list)")
    order = {n: i for i, n in enumerate(_ORDER)}
    for n in sorted(names, key=lambda n: (order.get(n, len(order)), n)):
        items.append(terminal_words(n))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def quote_text(text: str, limit: int = 40) -> str:
    """A user's text, quoted for a message: control and non-printable characters escaped."""
    if len(text) > limit:
        text = text[:limit] + "..."
    out = []
    for ch in text:
        if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "'" + "".join(out) + "'"


def describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type in ("INT", "FLOAT"):
        return f"number {quote_text(str(tok))}"
    if tok.type == "STRING":
        return f"string {quote_text(str(tok))}"
    if tok.type == "NAME":
        return f"name {quote_text(str(tok))}"
    return quote_text(str(tok))


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# ---------------------------------------------------------------- positions


class LineIndex:
    """Offsets <-> 1-based (line, col), counting lines the way Lark does (on '\\n')."""

    def __init__(self, text: str):
        self.text = text
        starts = [0]
        find = text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        self.starts = starts

    def linecol(self, offset: int) -> tuple[int, int]:
        import bisect

        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1

    def span(self, start: int, end: int) -> Span:
        line, col = self.linecol(start)
        end_line, end_col = self.linecol(max(end, start + 1))
        return Span(line, col, end_line, end_col)


def _tok_span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)


def _meta_span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


# ---------------------------------------------------------------- errors
#
# A syntax error gets the most specific message that applies, tried in this order:
#   1. the explicit checks (`_CHECKS`), for mistakes the parser state cannot tell apart: they
#      count brackets, look at the misspelled word, or at the text the parser has not read yet;
#   2. the hint of the bad example that failed the same way (dsl/syntax_examples.py, matched by
#      Lark's `match_examples`);
#   3. what the expected tokens suggest: a missing ')' or ',', or just what was found.
# A character that starts no token gets its own message if it has one (`_CHARACTER_MESSAGES`),
# else the example hint (2), else "unexpected character".


def _syntax_error(source: Source, index: LineIndex, err: UnexpectedInput) -> CdslError:
    """A Lark syntax error as a located `CdslError` that says what is probably wrong."""
    text = source.text
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream
        char = text[pos : pos + 1]
        failure = _Failure(
            source=source, tokens=_lex_prefix(text, pos), token=None, span=index.span(pos, pos + 1),
            expected=set(err.interactive_parser.accepts()),
        )
        if char in _CHARACTER_MESSAGES:
            return failure.error(_CHARACTER_MESSAGES[char])
        return _example_hint(err, failure) or failure.error(f"unexpected character {quote_text(char)}")
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    at_end = tok.type == "$END"
    tokens = _lex_prefix(text, len(text) if at_end else tok.start_pos)
    span = _end_span(tokens) if at_end else _tok_span(tok)
    failure = _Failure(source=source, tokens=tokens, token=tok, span=span, expected=set(err.accepts))
    for check in _CHECKS:
        found = check(failure)
        if found is not None:
            return found
    return _example_hint(err, failure) or _from_expected(failure)


@dataclass(kw_only=True)
class _Failure:
    """A syntax error as the hints see it: the token the parser could not take, the tokens
    before it, and the terminals it would have taken instead."""

    source: Source
    tokens: list[Token]  # before the error; comments and whitespace dropped
    # The token the parser could not take ($END at the end of the file); None for a character
    # that starts no token (then only the character messages and the example table apply).
    token: Token | None
    span: Span
    expected: set[str]

    @property
    def last(self) -> Token | None:
        """The token before the error."""
        return self.tokens[-1] if self.tokens else None

    @cached_property
    def open_brackets(self) -> list[Token]:
        """The brackets opened before the error and not closed, innermost last."""
        stack: list[Token] = []
        for tok in self.tokens:
            if tok.type in _CLOSER_OF:
                stack.append(tok)
            elif tok.type in _OPENER_OF:
                while stack and stack[-1].type != _OPENER_OF[tok.type]:
                    stack.pop()
                if stack:
                    stack.pop()
        return stack

    @property
    def innermost(self) -> str | None:
        """The terminal of the innermost open bracket, e.g. 'LPAR'."""
        return self.open_brackets[-1].type if self.open_brackets else None

    def next_char(self) -> str:
        """The first character after the offending token that is not whitespace ('' at the end)."""
        match = _SPACE.match(self.source.text, self.token.end_pos)
        pos = match.end()
        return self.source.text[pos : pos + 1]

    def error(self, message: str, *, at: Span | None = None, expected: str | None = None) -> CdslError:
        """`message` at the error (or at `at`); `expected` defaults to the expected tokens in words."""
        if expected is None:
            expected = expected_words(self.expected) or None
        return CdslError(message, source=self.source, span=at or self.span, expected=expected)


_CLOSER_OF = {"LBRACE": "}", "LPAR": ")", "LSQB": "]", "LESSTHAN": ">"}
_OPENER_OF = {"RBRACE": "LBRACE", "RPAR": "LPAR", "RSQB": "LSQB", "MORETHAN": "LESSTHAN"}
_SPACE = re.compile(r"[ \t\r\n]*")
# `NAME = OP(`: the start of a layer.
_LAYER_START = re.compile(r"\s*=\s*[A-Za-z_][A-Za-z0-9_]*\s*\(")
# What a character that starts no token probably is.
_CHARACTER_MESSAGES = {
    '"': "unterminated string (strings end with '\"' on the same line; escapes: \\\" and \\\\)",
    "-": "a '-' must be followed by a number",
    ";": "unexpected ';': statements end at the end of the line, without ';'",
    "'": 'strings are written in double quotes: "..."',
}


def _lex_prefix(text: str, limit: int) -> list[Token]:
    """The tokens (comments and whitespace dropped) that start before offset `limit`."""
    toks: list[Token] = []
    try:
        for tok in lark_parser().lex(text):
            if tok.start_pos >= limit:
                break
            toks.append(tok)
    except UnexpectedCharacters:
        pass
    return toks


def _end_span(tokens: list[Token]) -> Span:
    """Just after the last token: where an error at the end of the file is shown."""
    if tokens:
        last = tokens[-1]
        return Span(last.end_line, last.end_column, last.end_line, last.end_column + 1)
    return Span.point(1, 1)


# ------------------------------------------- 1. explicit checks


def _unclosed_at_end(f: _Failure) -> CdslError | None:
    """The file ends inside a bracket: point at the bracket, not at the end."""
    if f.token.type != "$END" or not f.open_brackets:
        return None
    bracket = f.open_brackets[-1]
    close = _CLOSER_OF[bracket.type]
    return f.error(f"unclosed '{bracket}': the file ends before its '{close}'", at=_tok_span(bracket), expected=f"'{close}'")


def _section_inside_block(f: _Failure) -> CdslError | None:
    """'model' or 'train' while a '{' is open: the block before it was not closed."""
    if f.token.type not in ("MODEL", "TRAIN") or f.innermost != "LBRACE":
        return None
    brace = f.open_brackets[-1]
    return f.error(
        f"'{f.token}' inside a block: the '{{' at line {brace.line}:{brace.column} is not closed",
        expected="'}' before the next section",
    )


def _unknown_section(f: _Failure) -> CdslError | None:
    """A name where a section begins: a misspelled 'model' or 'train' (the suggestion needs the word)."""
    if f.token.type != "NAME" or not f.expected & {"MODEL", "TRAIN"} or f.open_brackets:
        return None
    hint = did_you_mean(str(f.token), ("model", "train"))
    return f.error(f"unknown section {quote_text(str(f.token))}{hint}", expected="'model NAME { ... }' or 'train { ... }'")


def _nested_list(f: _Failure) -> CdslError | None:
    """A '[' that starts an item of a list or shape (after its '[' or a ','): lists do not nest."""
    last = f.last
    if f.token.type != "LSQB" or f.innermost != "LSQB" or last is None or last.type not in ("LSQB", "COMMA"):
        return None
    return f.error("lists cannot be nested", expected="a number, a name or a string")


def _annotation_parameter_without_parentheses(f: _Failure) -> CdslError | None:
    """`@quant w=8`: the parser reads `w = ...` as a new layer and fails at the value, in the same
    state as `y = 8`; only the tokens before the name tell the two apart."""
    if [t.type for t in f.tokens[-4:]] != ["AT", "NAME", "NAME", "EQUAL"]:
        return None
    annotation, name = f.tokens[-3], f.tokens[-2]
    return f.error(
        f"parameters of @{annotation} go in parentheses: @{annotation}({name}=...)",
        at=_tok_span(name),
        expected="'(' after the annotation name",
    )


def _trailing_comma(f: _Failure) -> CdslError | None:
    """`dense(x,)`, `[64,]`, `output y,`: a ',' before a closing bracket. One check for what is
    a parser state of its own in every list, call, shape and type, after the first item and after
    a later one."""
    last = f.last
    if last is None or last.type != "COMMA" or f.token.type not in ("RPAR", "RSQB", "RBRACE", "MORETHAN", "$END"):
        return None
    return f.error("a ',' must be followed by another item (no trailing commas)", at=_tok_span(last))


def _decimal_comma(f: _Failure) -> CdslError | None:
    """`lr = 0,001`: a ',' after a number in a setting, followed by a digit the parser has not read."""
    last = f.last
    if f.token.type != "COMMA" or last is None or last.type != "INT" or f.innermost != "LBRACE":
        return None
    if not f.next_char().isdigit():
        return None
    return f.error("numbers use '.' as the decimal point")


def _missing_comma_between_outputs(f: _Failure) -> CdslError | None:
    """`output y z`: the parser takes `z` for the start of a layer (the state of `model m { z`);
    only the tokens before it show that it is in an output list."""
    t = f.tokens
    if len(t) < 2 or t[-1].type != "NAME" or t[-2].type != "NAME" or _statement_keyword(t) != "OUTPUT":
        return None
    return f.error("missing ',' between output names", at=_tok_span(t[-1]), expected="','")


def _misspelled_statement_keyword(f: _Failure) -> CdslError | None:
    """`ouput y`, `inputs x: ...`, `stag a(...)`: a name that begins a statement and is close to a
    keyword; the word is what tells this from a missing '=' after a layer or setting name."""
    last = f.last
    if last is None or last.type != "NAME" or "EQUAL" not in f.expected or f.token.type == "EQUAL":
        return None
    if len(f.tokens) >= 2 and f.tokens[-2].type not in _BEFORE_A_STATEMENT:
        return None
    keywords = {"MODEL": ("input", "output"), "TRAIN": ("stage",)}.get(_section_keyword(f.tokens), ())
    hint = did_you_mean(str(last), keywords)
    if not hint:
        return None
    return f.error(f"unknown statement '{last}'{hint}", at=_tok_span(last))


# The tokens after which a statement can begin: a '{' or the end of a statement.
_BEFORE_A_STATEMENT = ("LBRACE", "RPAR", "NAME", "RSQB", "INT", "FLOAT", "STRING", "TRUE", "FALSE")


def _unclosed_paren_before_next_statement(f: _Failure) -> CdslError | None:
    """A '(' still open when a later line starts a statement (a keyword, or `NAME = OP(`, which
    the parser has not read): the ')' is missing at the end of the line before."""
    last = f.last
    if f.innermost != "LPAR" or last is None or f.token.type == "$END" or f.token.line <= last.end_line:
        return None
    starts_statement = f.token.type in ("INPUT", "OUTPUT", "STAGE", "MODEL", "TRAIN") or (
        f.token.type == "NAME" and _LAYER_START.match(f.source.text, f.token.end_pos) is not None
    )
    return _unclosed_paren_at_end_of_line(f) if starts_statement else None


def _missing_comma_before_parameter(f: _Failure) -> CdslError | None:
    """`dense(x units=64)`: a name followed by '=' (not yet read) where ',' or ')' belongs, on the
    same line (on a later line, `lr = 0.1` is more likely the next setting after a missing ')')."""
    last = f.last
    if f.innermost != "LPAR" or f.token.type != "NAME" or "COMMA" not in f.expected or last is None:
        return None
    if f.token.line != last.end_line or f.next_char() != "=":
        return None
    return f.error(f"missing ',' before '{f.token}'", expected="','")


_CHECKS = (
    _unclosed_at_end,
    _section_inside_block,
    _unknown_section,
    _nested_list,
    _annotation_parameter_without_parentheses,
    _trailing_comma,
    _decimal_comma,
    _missing_comma_between_outputs,
    _misspelled_statement_keyword,
    _unclosed_paren_before_next_statement,
    _missing_comma_before_parameter,
)


def _statement_keyword(tokens: list[Token]) -> str | None:
    """The terminal before the current run of names and commas (OUTPUT in `output y, z`)."""
    for tok in reversed(tokens):
        if tok.type not in ("NAME", "COMMA"):
            return tok.type
    return None


def _section_keyword(tokens: list[Token]) -> str | None:
    """MODEL or TRAIN: the keyword of the last section begun before the error."""
    for tok in reversed(tokens):
        if tok.type in ("MODEL", "TRAIN"):
            return tok.type
    return None


# ------------------------------------------- 2. the example table


class _AtAnyDepth:
    """Equal to every Lark parser state in the same LALR state, whatever the depth of its stack.

    `match_examples` compares parser states with Lark's own equality, which also requires the
    same stack depth; that differs between the first and a later statement, argument or section,
    so an example would only speak for the nesting it is written at. The expected tokens, which
    `match_examples` also compares, still tell apart contexts that share a state."""

    __slots__ = ("position",)

    def __init__(self, position: object):
        self.position = position

    def __eq__(self, other: object) -> bool:
        return self.position == getattr(other, "position", None)

    __hash__ = None  # type: ignore[assignment]


@lru_cache(maxsize=1)
def _example_errors() -> dict[str, UnexpectedInput]:
    """The error each example of the table raises, parsed once (on the first syntax error)."""
    errors = {}
    for examples in SYNTAX_EXAMPLES.values():
        for example in examples:
            try:
                lark_parser().parse(example)
            except UnexpectedToken as err:
                err.accepts  # computed now (Lark keeps it), compared on every match
                err.state = _AtAnyDepth(err.state.position)
                errors[example] = err
    return errors


def example_label(err: UnexpectedInput) -> str | None:
    """The label of the example in dsl/syntax_examples.py that failed the way `err` did, if any."""
    return err.match_examples(_replay_example, SYNTAX_EXAMPLES, token_type_match_fallback=True)


def _example_hint(err: UnexpectedInput, failure: _Failure) -> CdslError | None:
    """The message for the label of the example that failed the way `err` did, if any."""
    label = example_label(err)
    if label is None or label == NO_HINT:
        return None
    return _HINTS[label](failure)


def _replay_example(example: str) -> None:
    """The parse function given to `match_examples`: raises the error `example` raised."""
    err = _example_errors().get(example)
    if err is not None:
        raise err.with_traceback(None)


def _missing_shape(f: _Failure) -> CdslError:
    start = max(i for i, tok in enumerate(f.tokens) if tok.type == "INPUT")  # INPUT NAME ':' type...
    name, type_start = f.tokens[start + 1], f.tokens[start + 3]
    type_text = f.source.text[type_start.start_pos : f.last.end_pos]
    return f.error(f"missing the shape of input '{name}', e.g. {type_text}[64]", expected="'[' and the shape")


# The message for each label of the example table (but NO_HINT).
_HINTS: dict[str, Callable[[_Failure], CdslError]] = {
    "missing '=' after a name": lambda f: f.error(f"missing '=' after '{f.last}'", expected="'='"),
    "':' instead of '=' in a parameter": lambda f: f.error(
        f"parameters are written name=value: '{f.last}=...', not '{f.last}:'", expected="'='"
    ),
    "missing value after '='": lambda f: f.error(
        f"missing value for '{f.tokens[-2]}' after '='", expected="a value (number, name, true/false, string or list)"
    ),
    "missing op after '='": lambda f: f.error(
        f"missing the op of layer '{f.tokens[-2]}' after '='", expected="an op and its inputs, e.g. relu(x)"
    ),
    "missing ':' after the input name": lambda f: f.error(
        f"missing ':' between the input name '{f.last}' and its type", expected="':' then a type like int8 or ufixed<8,4>"
    ),
    "missing the shape of an input": _missing_shape,
    "annotation parameters outside parentheses": lambda f: f.error(
        f"parameters of @{f.last} go in parentheses: @{f.last}(name=value, ...)", expected="'(' after the annotation name"
    ),
    "'@' without an annotation name": lambda f: f.error(
        "'@' must be followed by an annotation name", expected="one of: " + ", ".join(ir.ANNOTATION_NAMES)
    ),
    "'output' without a name": lambda f: f.error(
        "'output' needs the name of at least one layer", at=_tok_span(f.last), expected="output NAME, NAME, ..."
    ),
    "stage parameters outside parentheses": lambda f: f.error(
        f"the parameters of stage '{f.last}' go in parentheses: stage {f.last}(epochs=...)", expected="'('"
    ),
}


# ------------------------------------------- 3. from the expected tokens


def _from_expected(f: _Failure) -> CdslError:
    """No known mistake: a missing ')' or ',' if the expected tokens say so, else what was found."""
    last = f.last
    if f.innermost == "LPAR" and "RPAR" in f.expected and last is not None:
        if f.token.line > last.end_line:
            return _unclosed_paren_at_end_of_line(f)
        if f.token.type not in _VALUE_TERMINALS:
            bracket = f.open_brackets[-1]
            return f.error(
                f"unclosed '(' (opened at {bracket.line}:{bracket.column}): expected ')' before {describe_token(f.token)}",
                expected="')'",
            )
    if "COMMA" in f.expected and f.token.type in _VALUE_TERMINALS:
        return f.error(f"missing ',' before {describe_token(f.token)}", expected="','")
    return f.error(f"unexpected {describe_token(f.token)}")


def _unclosed_paren_at_end_of_line(f: _Failure) -> CdslError:
    """The innermost '(' is not closed; the ')' belongs after the token before the error."""
    bracket, last = f.open_brackets[-1], f.last
    return f.error(
        f"unclosed '(' (opened at {bracket.line}:{bracket.column}): expected ')' at the end of line {last.end_line}",
        at=Span(last.end_line, last.end_column, last.end_line, last.end_column + 1),
        expected="')'",
    )


# ---------------------------------------------------------------- tree conversion


def _ident(tok: Token) -> T.Ident:
    return T.Ident(_tok_span(tok), tok.start_pos, tok.end_pos, str(tok))


MAX_DIGITS = 40


def _int(tok: Token) -> int:
    """A whole-number token as an int; absurdly long numbers are an error (and would trip
    Python's int/str conversion limit)."""
    if len(tok) > MAX_DIGITS:
        raise CdslError(
            f"number too large ({len(tok.lstrip('-'))} digits)", span=_tok_span(tok),
            expected=f"a number of at most {MAX_DIGITS} digits",
        )
    return int(tok)


def _value(node) -> T.Value:
    if isinstance(node, Token):  # pragma: no cover - the grammar wraps every scalar
        raise AssertionError(node)
    meta = node.meta
    span = _meta_span(meta)
    kind = node.data
    ch = node.children
    if kind == "list":
        items = [_value(c) for c in ch]
        return T.Value(span, meta.start_pos, meta.end_pos, "list", items)
    tok = ch[0]
    if kind == "int":
        return T.Value(span, meta.start_pos, meta.end_pos, "int", _int(tok))
    if kind == "float":
        if len(tok) > 1000:
            raise CdslError("number too long", span=_tok_span(tok), expected="a number of at most 1000 characters")
        return T.Value(span, meta.start_pos, meta.end_pos, "float", float(tok))
    if kind == "true":
        return T.Value(span, meta.start_pos, meta.end_pos, "bool", True)
    if kind == "false":
        return T.Value(span, meta.start_pos, meta.end_pos, "bool", False)
    if kind == "name":
        return T.Value(span, meta.start_pos, meta.end_pos, "name", str(tok))
    if kind == "string":
        return T.Value(span, meta.start_pos, meta.end_pos, "string", str(tok))  # decoded by the checker
    if kind == "ratio":
        return T.Value(span, meta.start_pos, meta.end_pos, "ratio", (_int(ch[0]), _int(ch[1])))
    raise AssertionError(kind)  # pragma: no cover


def _arg(node: Tree) -> T.Arg:
    meta = node.meta
    if node.data == "pos_arg":
        return T.Arg(_meta_span(meta), meta.start_pos, meta.end_pos, None, _value(node.children[0]))
    return T.Arg(_meta_span(meta), meta.start_pos, meta.end_pos, _ident(node.children[0]), _value(node.children[1]))


def _skip_to_close_paren(text: str, pos: int) -> int:
    """Offset just after the ')' that follows `pos` (only whitespace and comments in between)."""
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == ")":
            return pos + 1
        if ch == "#":
            nl = text.find("\n", pos)
            pos = n if nl == -1 else nl
        else:
            pos += 1
    return n  # pragma: no cover - the grammar guarantees the ')'


def _stmt(node: Tree, text: str, index: LineIndex):
    meta = node.meta
    span = _meta_span(meta)
    ch = node.children
    kind = node.data
    if kind == "input_decl":
        name = _ident(ch[1])
        dtype, shape = ch[2], ch[3]
        dparams = None
        if len(dtype.children) == 3:
            dparams = [
                T.Value(_tok_span(t), t.start_pos, t.end_pos, "int", _int(t)) for t in dtype.children[1:]
            ]
        dims = [T.Value(_tok_span(t), t.start_pos, t.end_pos, "int", _int(t)) for t in shape.children]
        return T.InputAst(
            span, meta.start_pos, meta.end_pos, name, _ident(dtype.children[0]), dparams,
            _meta_span(dtype.meta), dims, _meta_span(shape.meta),
        )
    if kind == "layer":
        name, op = _ident(ch[0]), _ident(ch[1])
        args = [_arg(c) for c in ch[2:] if c.data in ("pos_arg", "kw_arg")]
        anns = []
        for c in ch[2:]:
            if c.data == "annotation":
                anns.append(T.AnnotationAst(_meta_span(c.meta), c.meta.start_pos, c.meta.end_pos, _ident(c.children[0]), None))
            elif c.data == "annotation_args":
                anns.append(
                    T.AnnotationAst(
                        _meta_span(c.meta), c.meta.start_pos, c.meta.end_pos, _ident(c.children[0]),
                        [_arg(a) for a in c.children[1:]],
                    )
                )
        after = args[-1].end if args else op.end
        head_end = _skip_to_close_paren(text, after)
        return T.LayerAst(span, meta.start_pos, meta.end_pos, name, op, args, anns, head_end, index.span(meta.start_pos, head_end))
    if kind == "output_decl":
        return T.OutputAst(span, meta.start_pos, meta.end_pos, [_ident(t) for t in ch[1:]])
    if kind == "setting":
        return T.SettingAst(span, meta.start_pos, meta.end_pos, _ident(ch[0]), _value(ch[1]))
    if kind == "stage":
        return T.StageAst(span, meta.start_pos, meta.end_pos, _ident(ch[1]), [_arg(c) for c in ch[2:]])
    raise AssertionError(kind)  # pragma: no cover


def _section(node: Tree, text: str, index: LineIndex) -> T.SectionAst:
    meta = node.meta
    ch = node.children
    if node.data == "model":
        keyword, name, lbrace = ch[0], ch[1], ch[2]
        body = ch[3:-1]
        sec = T.SectionAst(_meta_span(meta), meta.start_pos, meta.end_pos, "model", _ident(name), _ident(keyword), _ident(lbrace), _ident(ch[-1]))
    else:
        keyword, lbrace = ch[0], ch[1]
        body = ch[2:-1]
        sec = T.SectionAst(_meta_span(meta), meta.start_pos, meta.end_pos, "train", None, _ident(keyword), _ident(lbrace), _ident(ch[-1]))
    sec.stmts = [_stmt(c, text, index) for c in body]
    return sec


def parse_tree(source: Source) -> T.FileAst:
    """Parse `source` into a syntax tree; syntax errors become `CdslError`s."""
    text = source.text
    index = LineIndex(text)
    try:
        lark_tree = lark_parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(source, index, err) from None
    try:
        return T.FileAst([_section(c, text, index) for c in lark_tree.children])
    except CdslError as err:
        raise err.located(source) from None
