"""The formatter keeps every comment, whatever its place: comments inserted at random token
boundaries of the examples all survive, in order, and formatting is idempotent."""

from __future__ import annotations

import random
import re

from cdsl.dsl import format_source, load_source, parse
from cdsl.dsl.syntax import lark_parser
from dsl_helpers import EXAMPLES

SEED = 4242


def token_ends(text: str) -> list[int]:
    """Offsets just after each token (where a comment may start)."""
    return [tok.end_pos for tok in lark_parser().lex(text)]


def comment_texts(text: str) -> list[str]:
    return re.findall(r"# c\d+", text)


def test_random_comments_survive():
    rng = random.Random(SEED)
    sources = [load_source(p).text for p in EXAMPLES]
    for case in range(80):
        text = rng.choice(sources)
        spots = token_ends(text)
        picks = sorted(rng.sample(spots, min(len(spots), rng.randint(1, 6))), reverse=True)
        for k, pos in enumerate(picks):
            text = text[:pos] + f"  # c{k}\n" + text[pos:]
        spec = parse(text)
        out = format_source(text)
        assert comment_texts(out) == comment_texts(text), f"seed {SEED} case {case}:\n{text}\n---\n{out}"
        assert parse(out) == spec, f"seed {SEED} case {case}"
        assert format_source(out) == out, f"seed {SEED} case {case}:\n{out}"
