"""Bad examples, labelled with the mistake they show: the table behind the syntax-error hints.

How a syntax error finds its label (Lark's `UnexpectedInput.match_examples`, in dsl/syntax.py):
each example is parsed once and fails at some token, in some parser state (a place in the
grammar, with the tokens that could have come there). An error in a user's file takes the label
of the example that failed in the same state, wherever it is nested (first or later statement,
argument or section), and

  1. on the same token (same kind, same text), else
  2. on the same kind of token (a name, a number, '}', ...), else
  3. on any token: the first label below, in table order, with an example in that state.

So one example usually speaks for everything that can go wrong at its place. Where only some
tokens mean the labelled mistake, give one example per kind of token, and an example under
NO_HINT (which comes first) to leave the other tokens to the generic messages ("missing ','",
"unclosed '('", "unexpected ...").

Mistakes that a parser state cannot tell apart are checked explicitly instead (`_CHECKS` in
dsl/syntax.py): unclosed brackets and nested lists (found by counting), misspelled keywords (the
word decides), `@quant w=8` and `output y z` (the tokens before decide), a decimal comma or a
missing ',' before `name=` (the text after decides), and a trailing ',' (its own parser state in
every list, call, shape and type).

To add a hint: add a bad example under its label, or add a label with its examples here and its
message in `dsl.syntax._HINTS`. tests/dsl/test_dsl_syntax_hints.py checks that every example
fails to parse, is classified under its own label and gets its label's message (list a piece of
a new label's message in its MESSAGES).
"""

from __future__ import annotations

# The label whose errors get no hint, only what was found and what was expected.
NO_HINT = "no hint"

SYNTAX_EXAMPLES: dict[str, list[str]] = {
    NO_HINT: [
        # After a name inside parentheses only a value means a missing '=' (see below); anything
        # else is a missing ',' or ')'.
        "model m { input x: int8[4] y = dense(x @quant(w=8)) output y }",
    ],
    "missing '=' after a name": [
        # a layer: NAME = OP(...)
        "model m { input x: int8[4] y dense(x, units=2) output y }",
        # a train setting: NAME = VALUE
        "train { epochs 30 }",
        # a parameter: name=value, one example per kind of value
        "model m { input x: int8[4] y = dense(x, units 2) output y }",
        "model m { input x: int8[4] y = dense(x, units=2) @cim(rows=8, cols=8, noise 0.1) output y }",
        'train { stage a(epochs=5, data "d.npz") }',
        "model m { input x: int8[4] y = dense(x, units=2, bias true) output y }",
        "model m { input x: int8[4] y = dense(x, units=2, bias false) output y }",
        "train { stage a(epochs=5, compress [quant]) }",
    ],
    "':' instead of '=' in a parameter": [
        "model m { input x: int8[4] y = dense(x, units: 2) output y }",
    ],
    "missing value after '='": [
        "model m { input x: int8[4] y = dense(x, units=) output y }",
        "train { lr = }",
    ],
    "missing op after '='": [
        "model m { input x: int8[4] y = (x) output y }",
    ],
    "missing ':' after the input name": [
        "model m { input x int8[4] }",
    ],
    "missing the shape of an input": [
        "model m { input x: int8 y = relu(x) output y }",
        "model m { input x: ufixed<8,4> y = relu(x) output y }",
    ],
    "annotation parameters outside parentheses": [
        "model m { input x: int8[4] y = dense(x, units=2) @quant[w=8] output y }",
    ],
    "'@' without an annotation name": [
        "model m { input x: int8[4] y = dense(x, units=2) @(w=8) output y }",
    ],
    "'output' without a name": [
        "model m { input x: int8[4] y = relu(x) output }",
    ],
    "stage parameters outside parentheses": [
        "train { stage warmup epochs=5 }",
    ],
}
