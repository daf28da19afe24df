"""Text -> syntax tree (`dsl.tree`), with syntax errors turned into located `CdslError`s.

Lark parses with LALR and the basic lexer. A Lark `UnexpectedInput` never escapes: it becomes a
`CdslError` that names what was found and what was expected, in words, and for the common
mistakes (missing `=`, missing `,`, unclosed brace or parenthesis, a misspelled keyword,
annotation parameters outside parentheses, nested lists) says what is probably wrong.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from cdsl.errors import CdslError, Source, Span

from . import tree as T

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


def _accepts(tokens: list[Token]) -> set[str]:
    ip = lark_parser().parse_interactive("")
    try:
        for tok in tokens:
            ip.feed_token(tok)
    except UnexpectedInput:
        return set()
    return set(ip.accepts())


def _open_brackets(tokens: list[Token]) -> list[Token]:
    """Brackets opened and not yet closed, innermost last."""
    pairs = {"RBRACE": "LBRACE", "RPAR": "LPAR", "RSQB": "LSQB", "MORETHAN": "LESSTHAN"}
    stack: list[Token] = []
    for tok in tokens:
        if tok.type in ("LBRACE", "LPAR", "LSQB", "LESSTHAN"):
            stack.append(tok)
        elif tok.type in pairs:
            while stack and stack[-1].type != pairs[tok.type]:
                stack.pop()
            if stack:
                stack.pop()
    return stack


def _end_span(index: LineIndex, prev: list[Token]) -> Span:
    if prev:
        last = prev[-1]
        return Span(last.end_line, last.end_column, last.end_line, last.end_column + 1)
    return Span.point(1, 1)


def _syntax_error(source: Source, index: LineIndex, err: UnexpectedInput) -> CdslError:
    text = source.text
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream
        prev = _lex_prefix(text, pos)
        expected = _accepts(prev)
        ch = text[pos] if pos < len(text) else ""
        span = index.span(pos, pos + 1)
        if ch == '"':
            msg = "unterminated string (strings end with '\"' on the same line; escapes: \\\" and \\\\)"
        elif ch == "-":
            msg = "a '-' must be followed by a number"
        elif ch == ";":
            msg = "unexpected ';': statements end at the end of the line, without ';'"
        elif ch == "'":
            msg = "strings are written in double quotes: \"...\""
        else:
            msg = f"unexpected character {quote_text(ch)}"
        return _refine(source, index, prev, None, span, expected, msg)
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    prev = _lex_prefix(text, tok.start_pos if tok.type != "$END" else len(text))
    if tok.type == "$END":
        span = _end_span(index, prev)
    else:
        span = _tok_span(tok)
    try:
        expected = set(err.interactive_parser.accepts()) if err.interactive_parser is not None else _accepts(prev)
    except UnexpectedInput:  # pragma: no cover
        expected = set(err.expected or ())
    msg = f"unexpected {describe_token(tok)}"
    return _refine(source, index, prev, tok, span, expected, msg)


def _refine(
    source: Source,
    index: LineIndex,
    prev: list[Token],
    tok: Token | None,
    span: Span,
    expected: set[str],
    msg: str,
) -> CdslError:
    """Turn a raw 'unexpected X' into a message about the likely mistake (the examples table)."""
    words = expected_words(expected) if expected else None
    ttype = tok.type if tok is not None else None
    last = prev[-1] if prev else None
    open_br = _open_brackets(prev)

    def err(message: str, at: Span = span, exp: str | None = words) -> CdslError:
        return CdslError(message, source=source, span=at, expected=exp)

    # An unclosed bracket at the end of the file.
    if ttype == "$END" and open_br:
        br = open_br[-1]
        close = {"LBRACE": "}", "LPAR": ")", "LSQB": "]", "LESSTHAN": ">"}[br.type]
        return err(f"unclosed '{br}': the file ends before its '{close}'", _tok_span(br), f"'{close}'")
    # A section keyword inside a block: the block before it was not closed.
    if ttype in ("MODEL", "TRAIN") and open_br and open_br[-1].type == "LBRACE":
        br = open_br[-1]
        return err(
            f"'{tok}' inside a block: the '{{' at line {br.line}:{br.column} is not closed",
            exp="'}' before the next section",
        )
    if ttype == "NAME" and expected & {"MODEL", "TRAIN"} and not open_br:
        hint = did_you_mean(str(tok), ("model", "train"))
        return err(f"unknown section {quote_text(str(tok))}{hint}", exp="'model NAME { ... }' or 'train { ... }'")
    # Lists do not nest.
    if ttype == "LSQB" and last is not None and last.type in ("LSQB", "COMMA") and _innermost(open_br) == "LSQB":
        return err("lists cannot be nested", exp="a number, a name or a string")
    # Annotation parameters outside parentheses: `@quant w=8` or `@quant[w=8]`.
    if len(prev) >= 2 and prev[-2].type == "AT" and prev[-1].type == "NAME" and ttype in ("LSQB", "LBRACE", "INT", "FLOAT"):
        return err(
            f"parameters of @{prev[-1]} go in parentheses: @{prev[-1]}(name=value, ...)",
            exp="'(' after the annotation name",
        )
    if len(prev) >= 4 and prev[-4].type == "AT" and prev[-3].type == "NAME" and prev[-2].type == "NAME" and prev[-1].type == "EQUAL":
        return err(
            f"parameters of @{prev[-3]} go in parentheses: @{prev[-3]}({prev[-2]}=...)",
            _tok_span(prev[-2]),
            exp="'(' after the annotation name",
        )
    if last is not None and last.type == "AT" and ttype != "NAME":
        return err(
            "'@' must be followed by an annotation name",
            exp="one of: quant, prune, bitsparse, trunc, bitserial, cim, binary, aqfp, tokens",
        )
    # A trailing comma: `f(a=1,)`, `[64,]`, `output y,`.
    if last is not None and last.type == "COMMA" and ttype in ("RPAR", "RSQB", "RBRACE", "$END", "MORETHAN"):
        return err("a ',' must be followed by another item (no trailing commas)", _tok_span(last), exp=words)
    if last is not None and last.type == "OUTPUT" and ttype != "NAME":
        return err("'output' needs the name of at least one layer", _tok_span(last), exp="output NAME, NAME, ...")
    # `stage warmup epochs=5`
    if len(prev) >= 2 and prev[-2].type == "STAGE" and ttype in ("NAME", "INT", "FLOAT", "LSQB"):
        return err(f"the parameters of stage '{prev[-1]}' go in parentheses: stage {prev[-1]}(epochs=...)", exp="'('")
    # `input x: int8` without a shape.
    i = max((j for j, t in enumerate(prev) if t.type == "INPUT"), default=None)
    if "LSQB" in expected and expected <= {"LSQB", "LESSTHAN"} and i is not None and last is not None:
        name = prev[i + 1] if i + 1 < len(prev) else "?"
        typ = source.text[prev[i + 3].start_pos : last.end_pos] if i + 3 < len(prev) else "int8"
        return err(f"missing the shape of input '{name}', e.g. {typ}[64]", exp="'[' and the shape")
    # `lr = 0,001`
    if (
        ttype == "COMMA" and last is not None and last.type == "INT" and _innermost(open_br) == "LBRACE"
        and _next_char(source.text, tok.end_pos)[:1].isdigit()
    ):
        return err("numbers use '.' as the decimal point", exp=words)
    # A missing value after `name=`.
    if last is not None and last.type == "EQUAL" and ttype in ("COMMA", "RPAR", "RBRACE", "$END", "RSQB"):
        name = prev[-2] if len(prev) >= 2 else None
        what = f" for '{name}'" if name is not None and name.type == "NAME" else ""
        return err(f"missing value{what} after '='", exp="a value (number, name, true/false, string or list)")
    # A missing ',' in an output list (`output y z`): the parser reads `z` as the start of a layer.
    if len(prev) >= 2 and prev[-1].type == "NAME" and prev[-2].type == "NAME" and _stmt_keyword(prev) == "OUTPUT":
        return err("missing ',' between output names", _tok_span(prev[-1]), exp="','")
    # A misspelled statement keyword (`ouput y`, `inputs x: ...`, `stages a(...)`).
    if last is not None and last.type == "NAME" and "EQUAL" in expected and ttype != "EQUAL":
        keywords = ("input", "output") if _inside(prev, "MODEL") else ("stage",) if _inside(prev, "TRAIN") else ()
        hint = did_you_mean(str(last), keywords)
        if hint and (len(prev) < 2 or prev[-2].type in ("LBRACE", "RPAR", "NAME", "RSQB", "INT", "FLOAT", "STRING", "TRUE", "FALSE")):
            return err(f"unknown statement '{last}'{hint}", _tok_span(last))
    in_parens = _innermost(open_br) == "LPAR"
    # Unclosed '(' at the end of a line: the next line starts a new statement.
    if in_parens and ttype not in (None, "$END") and last is not None and tok.line > last.end_line and (
        ttype in ("RBRACE", "INPUT", "OUTPUT", "STAGE", "MODEL", "TRAIN")
        or (ttype == "NAME" and re.match(r"\s*=\s*[A-Za-z_][A-Za-z0-9_]*\s*\(", source.text[tok.end_pos:]))
    ):
        br = open_br[-1]
        return err(
            f"unclosed '(' (opened at {br.line}:{br.column}): expected ')' at the end of line {last.end_line}",
            Span(last.end_line, last.end_column, last.end_line, last.end_column + 1),
            exp="')'",
        )
    if ttype == "COLON" and in_parens and last is not None and last.type == "NAME":
        return err(f"parameters are written name=value: '{last}=...', not '{last}:'", exp="'='")
    # `f(x units=64)`: a name followed by '=' where ',' or ')' belongs.
    if (
        in_parens and ttype == "NAME" and "COMMA" in expected and last is not None and tok.line == last.end_line
        and _next_char(source.text, tok.end_pos) == "="
    ):
        return err(f"missing ',' before '{tok}'", exp="','")
    # Missing '=' (a setting, a layer, a parameter).
    if in_parens and "EQUAL" in expected and last is not None and last.type == "NAME" and ttype in (
        "INT", "FLOAT", "STRING", "TRUE", "FALSE", "LSQB",
    ):
        return err(f"missing '=' after '{last}'", exp="'='")
    if "EQUAL" in expected and last is not None and last.type == "NAME":
        if ttype in ("NAME", "INT", "FLOAT", "STRING", "TRUE", "FALSE", "LSQB", "$END", "RBRACE", "LPAR") and not (
            len(prev) >= 2 and prev[-2].type in ("COMMA", "OUTPUT")
        ):
            return err(f"missing '=' after '{last}'", exp="'='")
    if "COLON" in expected and ttype != "COLON" and len(prev) >= 2 and prev[-2].type == "INPUT":
        return err(f"missing ':' between the input name '{last}' and its type", exp="':' then a type like int8 or ufixed<8,4>")
    # Unclosed '(': the statement goes on without its ')'.
    if in_parens and "RPAR" in expected and ttype is not None and last is not None:
        br = open_br[-1]
        if tok.line > last.end_line:
            return err(
                f"unclosed '(' (opened at {br.line}:{br.column}): expected ')' at the end of line {last.end_line}",
                Span(last.end_line, last.end_column, last.end_line, last.end_column + 1),
                exp="')'",
            )
        if ttype not in _VALUE_TERMINALS:
            return err(f"unclosed '(' (opened at {br.line}:{br.column}): expected ')' before {describe_token(tok)}", exp="')'")
    # Missing ',' between arguments, list items or shape dimensions.
    if "COMMA" in expected and ttype in ("NAME", "INT", "FLOAT", "STRING", "TRUE", "FALSE"):
        return err(f"missing ',' before {describe_token(tok)}", exp="','")
    return err(msg)


def _next_char(text: str, pos: int) -> str:
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    return text[pos] if pos < n else ""


def _inside(prev: list[Token], keyword: str) -> bool:
    for tok in reversed(prev):
        if tok.type in ("MODEL", "TRAIN"):
            return tok.type == keyword
    return False


def _innermost(open_br: list[Token]) -> str | None:
    return open_br[-1].type if open_br else None


def _stmt_keyword(prev: list[Token]) -> str | None:
    """The keyword that began the current statement, if any (walking back over names and commas)."""
    for tok in reversed(prev):
        if tok.type in ("NAME", "COMMA"):
            continue
        return tok.type
    return None


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
