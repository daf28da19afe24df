"""The table of bad examples behind the syntax-error hints (dsl/syntax_examples.py): each example
is a syntax error, is classified under its own label, and gets its label's message; an error
takes the label of an example wherever it is nested."""

from __future__ import annotations

import time

import pytest
from lark.exceptions import UnexpectedInput, UnexpectedToken

from cdsl.dsl.syntax import _HINTS, example_label, lark_parser
from cdsl.dsl.syntax_examples import NO_HINT, SYNTAX_EXAMPLES
from dsl_helpers import MLP, assert_error, error_of

# A piece of the message each label gives (NO_HINT: the generic message its example gets).
MESSAGES = {
    NO_HINT: "unclosed '(' (opened at 1:37): expected ')' before '@'",
    "missing '=' after a name": "missing '=' after '",
    "':' instead of '=' in a parameter": "parameters are written name=value",
    "missing value after '='": "missing value for '",
    "missing op after '='": "missing the op of layer 'y' after '='",
    "missing ':' after the input name": "missing ':' between the input name 'x' and its type",
    "missing the shape of an input": "missing the shape of input 'x', e.g. ",
    "annotation parameters outside parentheses": "parameters of @quant go in parentheses",
    "'@' without an annotation name": "'@' must be followed by an annotation name",
    "'output' without a name": "'output' needs the name of at least one layer",
    "stage parameters outside parentheses": "the parameters of stage 'warmup' go in parentheses",
}
EXAMPLES = [(label, example) for label, examples in SYNTAX_EXAMPLES.items() for example in examples]


def lark_error(text: str) -> UnexpectedInput:
    with pytest.raises(UnexpectedInput) as info:
        lark_parser().parse(text)
    return info.value


def test_every_label_has_a_message():
    assert set(_HINTS) == set(SYNTAX_EXAMPLES) - {NO_HINT}
    assert set(MESSAGES) == set(SYNTAX_EXAMPLES)
    assert next(iter(SYNTAX_EXAMPLES)) == NO_HINT  # first: the fallback in its examples' states


@pytest.mark.parametrize("label, example", EXAMPLES)
def test_example_is_classified_under_its_label(label, example):
    err = lark_error(example)
    assert isinstance(err, UnexpectedToken), "an example must fail at a token, not at a character"
    assert example_label(err) == label


@pytest.mark.parametrize("label, example", EXAMPLES)
def test_example_gets_its_message(label, example):
    assert MESSAGES[label] in error_of(example).message


@pytest.mark.parametrize(
    "text",
    [
        # the first statement and a later one, the first argument and the third
        "model m { y relu(x) output y }",
        "model m { input x: int8[4] h = relu(x) y relu(h) output y }",
        "model m { input x: int8[4] y = dense(units 2) output y }",
        "model m { input x: int8[4] y = dense(x, bias=true, units 2) output y }",
        # a train section after a model, a stage after settings
        "model m { input x: int8[4] y = relu(x) output y } train { lr = 0.1 epochs 30 }",
        "train { lr = 0.1 stage a(epochs=5, lr 0.1) }",
    ],
)
def test_label_applies_at_any_depth(text):
    assert example_label(lark_error(text)) == "missing '=' after a name"


# ---------------------------------------------------------------- new bad inputs


def test_missing_equals_before_any_kind_of_value():
    assert_error(MLP.replace("units=64", "units=64, bias true"), "missing '=' after 'bias'", 3, 32, caret="true")
    assert_error(MLP + 'train {\n  stage a(epochs=5, data "d.npz")\n}\n', "missing '=' after 'data'", 9, 26, expected="'='")


def test_missing_value_before_any_token():
    assert_error(MLP.replace("units=64", "units=@"), "missing value for 'units' after '='", 3, 23, caret="@")


def test_missing_op():
    err = assert_error(MLP.replace("relu(h1)", "(h1)"), "missing the op of layer 'r1' after '='", 4, 8, caret="(")
    assert "relu(x)" in err.expected


def test_name_then_other_token_in_parentheses_is_not_a_missing_equals():
    assert_error(MLP.replace("dense(x,", "dense(x @quant"), "unclosed '(' (opened at 3:13): expected ')' before '@'", 3, 16)
    assert_error(MLP.replace("dense(x,", "dense(x}"), "unclosed '(' (opened at 3:13): expected ')' before '}'", 3, 15, caret="}")


def test_character_errors_use_the_table():
    assert_error(MLP.replace("x: ufixed", "x $ ufixed"), "missing ':' between the input name 'x'", 2, 11, caret="$")
    assert_error(MLP.replace("@quant", "@$"), "'@' must be followed by an annotation name", 3, 28, caret="$")


def test_errors_after_the_first_are_fast():
    error_of(MLP.replace("r1 = relu", "r1 relu"))  # builds the example table
    texts = [
        MLP.replace("r1 = relu", "r1 relu"),
        MLP.replace("units=64", "units 64"),
        MLP.replace("relu(h1)", "relu(h1"),
        MLP.replace("@quant(w=8, a=8)", "@quant[w=8]"),
    ]
    t0 = time.perf_counter()
    for _ in range(25):
        for text in texts:
            error_of(text)
    assert (time.perf_counter() - t0) / 100 < 0.1
