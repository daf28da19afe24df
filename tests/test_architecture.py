"""The architecture holds: packages import only downward, and no shared code dispatches on a kind.

Layers, bottom to top (a module may import its own layer and the ones below, never above; the
software and hardware paths never import each other):

    base      cdsl (errors, plugins, version)
    language  cdsl.dsl
    contract  cdsl.contract                      (IntModel schema, integer references, golden)
    sw, hw    cdsl.sw, cdsl.hw                   (the software and the hardware path)
    sim       cdsl.sim                           (co-simulation)
    cli       cdsl.cli, cdsl.commands, cdsl.flow, cdsl.report, cdsl.__main__

A *kind-dispatch site* is a test of an object's type against a kind's class (an IR op, a payload,
a MAC core, a plan node: `isinstance`, `issubclass`, `type(x) is`) or of a layer's kind name
(`.kind == "dense"`), outside the kind's own modules (contract/ref/, sw/kinds/, sw/cores/,
hw/kinds/, hw/cores/). A type guard of a component's own parameter (`if not isinstance(node,
MacEngineNode): raise TypeError(...)`) is not dispatch.

    python tests/test_architecture.py      # prints the import edges between layers and every dispatch site
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# installed package -> source folder (pyproject.toml's package-dir)
SOURCES = {"cdsl": "cdsl", "cdsl.dsl": "dsl", "cdsl.contract": "contract", "cdsl.sw": "sw", "cdsl.hw": "hw",
           "cdsl.sim": "sim"}
RANK = {"base": 0, "language": 1, "contract": 2, "sw": 3, "hw": 3, "sim": 4, "cli": 5}
KIND_FOLDERS = ("contract/ref/", "sw/kinds/", "sw/cores/", "hw/kinds/", "hw/cores/")


def modules() -> dict[str, Path]:
    """Every production module: dotted name -> file."""
    out = {}
    for package, folder in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "cdsl" and parts and parts[0] in ("dsl", "contract", "sw", "hw", "sim"):
                continue
            out[name] = path
    return out


def layer(module: str) -> str:
    for prefix, name in (("cdsl.dsl", "language"), ("cdsl.contract", "contract"), ("cdsl.sw", "sw"),
                         ("cdsl.hw", "hw"), ("cdsl.sim", "sim"), ("cdsl.commands", "cli"), ("cdsl.cli", "cli"),
                         ("cdsl.flow", "cli"), ("cdsl.report", "cli"), ("cdsl.__main__", "cli")):
        if module == prefix or module.startswith(prefix + "."):
            return name
    return "base"


def imported(path: Path, module: str) -> list[tuple[str, int]]:
    """(module imported, line) for every import in the file, at any depth (functions included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            out.append((base, node.lineno))
    return [(name, line) for name, line in out if name == "cdsl" or name.startswith("cdsl.")]


def import_violations() -> list[str]:
    bad = []
    for module, path in modules().items():
        mine = layer(module)
        for target, line in imported(path, module):
            theirs = layer(target)
            upward = RANK[theirs] > RANK[mine]
            sideways = {mine, theirs} == {"sw", "hw"}
            if upward or sideways:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {target} ({theirs})")
    return bad


def layer_edges() -> dict[tuple[str, str], int]:
    edges: dict[tuple[str, str], int] = {}
    for module, path in modules().items():
        for target, _ in imported(path, module):
            key = (layer(module), layer(target))
            if key[0] != key[1]:
                edges[key] = edges.get(key, 0) + 1
    return edges


# ---------------------------------------------------------------- kind dispatch


def kind_classes() -> dict[str, type]:
    """Every kind's class, by name: IR ops, payloads, MAC cores, plan nodes."""
    from cdsl.contract import kinds  # noqa: F401  (registers every payload)
    from cdsl.contract.intmodel import Payload
    from cdsl.contract.ref.mac import MacCore
    from cdsl.dsl import ir
    from cdsl.hw.plan import Node
    from cdsl.hw.registry import load_all

    load_all()

    def subclasses(base):
        seen, todo = set(), [base]
        while todo:
            for sub in todo.pop().__subclasses__():
                if sub not in seen:
                    seen.add(sub)
                    todo.append(sub)
        return seen

    classes = set(ir.OPS.values()) | subclasses(ir.Op) | subclasses(Payload) | subclasses(MacCore) | subclasses(Node)
    return {cls.__name__: cls for cls in classes if dataclasses.is_dataclass(cls) or cls in subclasses(ir.Op)}


def kind_names() -> set[str]:
    from cdsl.contract import codec
    from cdsl.contract.intmodel import Payload

    kind_classes()
    return {name for name, cls in codec._TYPES.items() if isinstance(cls, type) and issubclass(cls, Payload)}


def _names_in(node: ast.AST) -> set[str]:
    return {n.attr if isinstance(n, ast.Attribute) else n.id
            for n in ast.walk(node) if isinstance(n, (ast.Name, ast.Attribute))}


def _is_guard(call: ast.Call, parents: dict) -> bool:
    """`if not isinstance(x, K): raise ...`"""
    parent = parents.get(call)
    if not (isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not)):
        return False
    stmt = parents.get(parent)
    return isinstance(stmt, ast.If) and len(stmt.body) == 1 and isinstance(stmt.body[0], ast.Raise)


def dispatch_sites() -> list[str]:
    classes = set(kind_classes())
    names = kind_names()
    sites = []
    for module, path in modules().items():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(KIND_FOLDERS):
            continue
        tree = ast.parse(path.read_text(), filename=rel)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            hit = False
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass"):
                hit = len(node.args) == 2 and bool(_names_in(node.args[1]) & classes) and not _is_guard(node, parents)
            elif isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                typed = any(isinstance(o, ast.Call) and isinstance(o.func, ast.Name) and o.func.id == "type"
                            for o in operands)
                hit = typed and any(_names_in(o) & classes for o in operands)
                kind_attr = any(isinstance(o, ast.Attribute) and o.attr == "kind" for o in operands)
                kind_text = any(isinstance(o, ast.Constant) and o.value in names for o in operands)
                hit = hit or (kind_attr and kind_text)
            if hit:
                sites.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return sites


def test_packages_import_only_downward():
    assert import_violations() == []


def test_the_layers_are_really_used():
    """The test above cannot pass vacuously: the expected edges exist."""
    edges = layer_edges()
    for pair in [("language", "base"), ("contract", "language"), ("sw", "contract"), ("hw", "contract"),
                 ("sim", "hw"), ("cli", "sim"), ("cli", "sw")]:
        assert edges.get(pair), pair


def test_no_kind_dispatch_outside_the_registries():
    assert dispatch_sites() == []


def test_the_dispatch_counter_finds_dispatch():
    """The counter is not blind: it reports a planted isinstance chain and a kind-name compare."""
    import tempfile

    planted = "from cdsl.dsl import ir\ndef f(op, lay):\n    if isinstance(op, ir.Dense):\n        return 1\n" \
              "    return lay.kind == 'conv2d'\n"
    with tempfile.TemporaryDirectory(dir=ROOT / "hw") as tmp:
        path = Path(tmp) / "planted.py"
        path.write_text(planted)
        found = [s for s in dispatch_sites() if "planted.py" in s]
    assert len(found) == 2, found


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    print("imports between layers (importer -> imported: count):")
    for (a, b), n in sorted(layer_edges().items()):
        print(f"  {a} -> {b}: {n}")
    bad = import_violations()
    print(f"upward or sw<->hw imports: {len(bad)}")
    for line in bad:
        print("  " + line)
    sites = dispatch_sites()
    print(f"kind-dispatch sites outside the registries: {len(sites)}")
    for line in sites:
        print("  " + line)
