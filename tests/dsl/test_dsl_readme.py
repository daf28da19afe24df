"""The language reference's examples are valid and canonical."""

from __future__ import annotations

import re
from pathlib import Path

from cdsl.dsl import format_source, ir, parse

README = Path(__file__).resolve().parents[2] / "README.md"


def reference_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Language reference", 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    return re.findall(r"```\n(.*?)```", section, re.S)


def test_full_example_is_valid_and_canonical():
    first = reference_blocks()[0]
    spec = parse(first)
    assert spec.train.epochs == 30 and len(spec.train.stages) == 2
    assert format_source(first) == first


def test_every_op_is_in_the_ops_table():
    section = README.read_text(encoding="utf-8").split("## Language reference", 1)[1]
    table = section.split("| op | parameters (default) |", 1)[1].split("\n\n", 1)[0]
    listed = {name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert listed == set(ir.OPS)


def test_residual_example_is_valid_and_canonical():
    block = [b for b in reference_blocks() if b.startswith("model residual")][0]
    spec = parse(block)
    assert spec.model.layer("s").inputs == ("r", "x") and spec.model.layer("s").annotations.quant.a == 8
    assert format_source(block) == block


def test_train_block_is_valid():
    block = [b for b in reference_blocks() if b.startswith("train {")][0]
    model = "model m {\n  input x: int8[4]\n  y = dense(x, units=2) @quant(w=4) @prune(sparsity=0.5)\n  output y\n}\n"
    spec = parse(model + block)
    assert spec.train.epochs == 30 and spec.train.stages[1].compress == ("quant", "prune")


def test_annotation_examples_are_valid():
    block = [b for b in reference_blocks() if "@aqfp" in b][0]
    # each statement checked in a small model of the right shapes
    pre = "model m {\n  input x: int8[64]\n  input p: int8[8, 4, 4]\n  input t: int8[17, 32]\n"
    stmts = re.split(r"\n(?=\w+ = )", block.strip())
    for stmt in stmts:
        name = stmt.split(" = ")[0]
        extra = "  s = sign(x)\n" if "dense(s" in stmt else ""
        used = {"x", "p", "t"} - set(re.findall(r"\((\w+)", stmt)) - ({"x"} if extra else set())
        sink = "".join(f"  z_{u} = flatten({u})\n" for u in sorted(used))
        outs = ", ".join([name] + [f"z_{u}" for u in sorted(used)])
        parse(pre + extra + "  " + stmt + "\n" + sink + f"  output {outs}\n}}\n")
