"""Fuzz: mutated examples and random bytes give a CdslError or a valid spec, never another
exception; whatever parses also formats idempotently, keeps its comments and its IR.

Seeded; a failure prints the seed and the input. Bounded to a few seconds."""

from __future__ import annotations

import random
import re

import pytest

from cdsl.dsl import format_source, load_source, parse, print_spec
from cdsl.dsl.analysis import layer_stats
from cdsl.errors import CdslError
from dsl_helpers import EXAMPLES

SEED = 20261122
TOKENS = [
    "{", "}", "(", ")", "[", "]", "<", ">", ",", "=", ":", "@", "#", '"', "-", ".", "\n", " ", "\t", "\x00",
    "model", "input", "output", "train", "stage", "true", "false", "dense", "conv2d", "relu", "add", "quant", "binary",
    "@quant(w=4)", "@binary", "@cim(rows=1, cols=1)", "@tokens(keep=0)", "x", "y", "h1", "0", "1", "-1", "2:4",
    "1e999", "0.5", "99999999999999999999", "9" * 5000, "1" + "0" * 4400 + ".5", "[[", "\udc80", "é", "\u2028", "\r", "\ufeff",
]
_TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|-?[0-9][0-9.eE+-]*|\s+|#[^\n]*|.", re.S)


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(7)
        n = len(text)
        i = rng.randrange(n + 1)
        if kind == 0 and n:  # delete characters
            text = text[:i] + text[i + rng.randint(1, 8):]
        elif kind == 1:  # insert a character or token
            text = text[:i] + rng.choice(TOKENS) + text[i:]
        elif kind == 2 and n:  # replace a character
            text = text[:i] + chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)])) + text[i + 1:]
        elif kind in (3, 4):  # swap or drop whole tokens
            toks = _TOKEN_RE.findall(text)
            if len(toks) > 2:
                a, b = rng.randrange(len(toks)), rng.randrange(len(toks))
                if kind == 3:
                    toks[a], toks[b] = toks[b], toks[a]
                else:
                    del toks[a]
                text = "".join(toks)
        elif kind == 5:  # duplicate or delete a line
            lines = text.split("\n")
            j = rng.randrange(len(lines))
            if rng.random() < 0.5:
                lines.insert(j, lines[j])
            else:
                del lines[j]
            text = "\n".join(lines)
        else:  # truncate
            text = text[:i]
    return text


def check_one(text: str, what: str) -> bool:
    """True if `text` was a valid spec."""
    try:
        spec = parse(text, "fuzz.cdsl")
    except CdslError as err:
        rendered = str(err)
        assert rendered.startswith("fuzz.cdsl"), (what, rendered)
        assert err.span is None or err.span.line >= 1, (what, rendered)
        return False
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{what}: {type(exc).__name__}: {exc}\ninput: {text!r}")
    out = format_source(text)
    assert parse(out) == spec, (what, text)
    assert format_source(out) == out, (what, text)
    assert parse(print_spec(spec)) == spec, (what, text)
    n_comments = lambda t: len(re.findall(r"#", "\n".join(ln for ln in t.split("\n"))))  # noqa: E731
    assert n_comments(out) >= n_comments(text) - text.count('"#'), (what, text)
    layer_stats(spec)
    return True


def test_mutated_examples():
    rng = random.Random(SEED)
    sources = [load_source(p).text for p in EXAMPLES]
    valid = 0
    for i in range(700):
        base = rng.choice(sources)
        text = mutate(base, rng)
        valid += check_one(text, f"seed {SEED} mutation {i}")
    # Some mutations (whitespace, comments, duplicated blank lines) keep the spec valid.
    assert valid > 20


def test_random_bytes(tmp_path):
    rng = random.Random(SEED + 1)
    path = tmp_path / "r.cdsl"
    for i in range(150):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        path.write_bytes(data)
        try:
            source = load_source(path)
        except CdslError:
            continue
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"seed {SEED + 1} case {i}: {type(exc).__name__}: {exc}; bytes {data!r}")
        check_one(source.text, f"seed {SEED + 1} case {i}")
        # the same bytes decoded leniently, lone surrogates included
        check_one(data.decode("utf-8", "surrogateescape"), f"seed {SEED + 1} case {i} surrogateescape")


def test_random_token_soup():
    rng = random.Random(SEED + 2)
    for i in range(300):
        text = " ".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 40)))
        check_one(text, f"seed {SEED + 2} soup {i}")
