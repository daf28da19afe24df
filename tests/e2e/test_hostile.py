"""Hostile inputs, generated at test time from a real run folder.

A small network with every kind the hardware has (per-channel conv, bit-serial conv, max and average
pooling, a residual add, flatten, dense) is trained, exported and generated once. Then each test
corrupts one thing at a time and runs the commands that read it:
- the integer model: every field of intmodel/manifest.json (deleted, null, of another type, out of
  range), each once per layer kind; the same edits with the digest recomputed, so that the schema and
  the kinds' checks (not the digest) must catch them; every tensor of tensors.npz (deleted, another
  dtype or shape, out of range, an object array); the files themselves (empty, truncated, garbage,
  bit-flipped, a folder, missing, a zip bomb);
- checkpoint.pt, metrics.json and spec.cdsl (including a spec edited after training);
- rtl/manifest.json (every field) and rtl/network.sv;
- data files named by a spec's `data =` line;
- options and output paths.
Every case must end with exit 2, an error whose first line names the file (or option) at fault, and
no traceback. `pytest -s` prints the number of cases per class.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from cdsl.cli import main
from cdsl.contract import intmodel as intmodel_mod
from cdsl.hw.generate import manifest_digest

SPEC = """\
model hostile {
  input x: ufixed<8,4>[1, 8, 8]
  c1 = conv2d(x, channels=4, kernel=3, padding=1) @quant(w=8, a=8, per=channel)
  r1 = relu(c1)
  p1 = maxpool(r1, kernel=2)
  c2 = conv2d(p1, channels=4, kernel=3, padding=1) @quant(w=4, a=8) @bitserial(lanes=4)
  r2 = relu(c2)
  s = add(r2, p1) @quant(a=8)
  p2 = avgpool(s, kernel=2)
  f = flatten(p2)
  y = dense(f, units=10) @quant(w=8, a=8)
  output y
}
train {
  epochs = 2
  batch = 64
}
"""


def attempt(argv: list[str]) -> tuple[int | str, str]:
    """(exit code, stderr) of `cdsl argv` in this process; an exception that escapes is a traceback."""
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    except Exception as exc:  # noqa: BLE001 - exactly what must never happen
        rc = f"Traceback: {type(exc).__name__}: {exc}"
    return rc, err.getvalue()


class Tally:
    """Cases per class and every case that did not end cleanly."""

    def __init__(self):
        self.cases: Counter[str] = Counter()
        self.bad: list[str] = []

    def expect(self, cls: str, label: str, argv: list[str], names: tuple[str, ...], *, avoid: str | None = None):
        """`cdsl argv` exits 2 with no traceback, its error's first line names one of `names`
        (and does not contain `avoid`)."""
        self.cases[cls] += 1
        rc, err = attempt(argv)
        lines = err.strip().splitlines()
        first = lines[0] if lines else ""
        problems = []
        if rc != 2:
            problems.append(f"exit {rc}")
        if "Traceback" in err:
            problems.append("a traceback")
        if not any(n in first for n in names):
            problems.append(f"the first line names none of {names}")
        if avoid and avoid in first:
            problems.append(f"the first line says {avoid!r}")
        if problems:
            self.bad.append(f"[{cls}] {label}: cdsl {' '.join(argv[:1])}: {'; '.join(problems)} -- {first[:200]!r}")

    def check(self):
        print("hostile cases:", dict(self.cases), "total", sum(self.cases.values()))
        assert not self.bad, f"{len(self.bad)} of {sum(self.cases.values())} cases failed:\n" + "\n".join(self.bad[:40])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A trained, exported and generated run folder (never modified: each case works on a copy)."""
    root = tmp_path_factory.mktemp("hostile")
    spec = root / "hostile.cdsl"
    spec.write_text(SPEC)
    run = root / "run"
    assert main(["train", str(spec), "-o", str(run), "--no-float"]) == 0
    assert main(["gen", str(run)]) == 0
    return run


@pytest.fixture
def fresh(base, tmp_path):
    """fresh() -> a new copy of the run folder (the same path each time)."""
    case = tmp_path / "case"

    def make() -> Path:
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(base, case)
        return case

    return make


def readers_of_intmodel(run: Path, out: Path, k: int) -> list[list[str]]:
    """Commands that read intmodel/ before anything expensive: sim and gen, verify and eval on every
    7th case (they load it through the same functions as sim and gen)."""
    cmds = [["sim", str(run), "--n", "1"], ["gen", str(run), "-o", str(out)]]
    return cmds + ([["verify", str(run), "--n", "1"], ["eval", str(run)]] if k % 7 == 0 else [])


# ---------------------------------------------------------------- JSON trees


def nodes(obj, path=()):
    """Every (path, value) of a JSON tree, the root excluded."""
    if path:
        yield path, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield from nodes(value, path + (key,))


def schema_key(manifest: dict, path: tuple) -> tuple:
    """The path with list indices erased, except that a layer stands for its kind: one case per
    field of each kind, not per layer."""
    out = []
    for k, p in enumerate(path):
        if k == 1 and path[0] == "layers":
            out.append(manifest["layers"][p]["kind"])
        else:
            out.append("#" if isinstance(p, int) else p)
    return tuple(out)


def one_per_schema_key(manifest: dict, *, key=schema_key) -> list[tuple]:
    seen, paths = set(), []
    for path, _ in nodes(manifest):
        k = key(manifest, path)
        if k not in seen:
            seen.add(k)
            paths.append(path)
    return paths


def wrong_values(value) -> list[tuple[str, object]]:
    """Values of another type, or out of any range, for a JSON value."""
    if isinstance(value, bool):
        return [("a string", "yes"), ("a number", 1)]
    if isinstance(value, int):
        return [("a string", "x"), ("a fraction", 2.5), ("negative", -1), ("huge", 1 << 70)]
    if isinstance(value, float):
        return [("a string", "x"), ("negative", -1.0), ("a list", [1.0])]
    if isinstance(value, str):
        return [("a number", 7), ("another string", value + "_x"), ("empty", "")]
    if isinstance(value, list):
        return [("an object", {}), ("empty", []), ("one more entry", value + value[-1:]) if value else ("a number", 3)]
    if isinstance(value, dict):
        return [("a list", []), ("empty", {}), ("an extra key", {**value, "extra": 1})]
    return [("a number", 5)]  # null


def mutated(tree, path, value=None, *, delete=False):
    tree = copy.deepcopy(tree)
    parent = tree
    for p in path[:-1]:
        parent = parent[p]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return tree


def field_mutations(tree, paths):
    """(label, mutated tree, whether the change breaks the schema's types) for each path."""
    for path in paths:
        old = copy.deepcopy(tree)
        for p in path:
            old = old[p]
        where = ".".join(map(str, path))
        yield f"{where} deleted", mutated(tree, path, delete=True), True
        if old is not None:
            yield f"{where} = null", mutated(tree, path, None), False
        for what, value in wrong_values(old):
            if value != old:  # a new type breaks the schema, unless the field was empty (null)
                typed = old is not None and (not isinstance(value, type(old)) or isinstance(old, bool))
                yield f"{where} = {what}", mutated(tree, path, value), typed


# ---------------------------------------------------------------- the integer model


def test_every_field_of_the_intmodel_manifest(base, fresh, tmp_path):
    manifest = json.loads((base / "intmodel" / "manifest.json").read_text())
    paths = one_per_schema_key(manifest)
    tally = Tally()
    for k, (label, tree, _) in enumerate(field_mutations(manifest, paths)):
        run = fresh()
        (run / "intmodel" / "manifest.json").write_text(json.dumps(tree))
        for argv in readers_of_intmodel(run, tmp_path / "out", k):
            tally.expect("intmodel manifest field", label, argv, ("intmodel/manifest.json",))
    tally.check()


def test_every_field_of_the_intmodel_manifest_with_its_digest_recomputed(base, fresh, tmp_path):
    """As if another tool wrote the model: the digest agrees, so the schema and each kind's check
    must find what is wrong (a type error, a missing field), and the error names it."""
    manifest = json.loads((base / "intmodel" / "manifest.json").read_text())
    arrays = intmodel_mod.load_arrays(base / "intmodel" / "tensors.npz")
    tally = Tally()
    for k, (label, tree, typed) in enumerate(field_mutations(manifest, one_per_schema_key(manifest))):
        if not typed or label.startswith("digest"):
            continue
        tree["digest"] = intmodel_mod._digest(tree, arrays)
        run = fresh()
        (run / "intmodel" / "manifest.json").write_text(json.dumps(tree))
        for argv in readers_of_intmodel(run, tmp_path / "out", k)[:1]:
            tally.expect("intmodel manifest field, digest recomputed", label, argv, ("intmodel/manifest.json",),
                         avoid="digest")
    tally.check()


def tensor_mutations(arrays: dict[str, np.ndarray]):
    """(label, arrays, whether each kind's check must catch it even with the digest recomputed)."""
    for key, a in arrays.items():
        rest = {k: v for k, v in arrays.items() if k != key}
        yield f"{key} deleted", rest, True
        yield f"{key} one entry short", {**rest, key: a.reshape(-1)[:-1]}, True
        yield f"{key} with an extra axis", {**rest, key: a[None]}, True
        if a.dtype.kind in "iu":
            yield f"{key} as float", {**rest, key: a.astype(np.float64) + 0.5}, True
            big = a.copy().reshape(-1)
            big[0] = 1 << 62
            yield f"{key} holding 2**62", {**rest, key: big.reshape(a.shape)}, True
        else:
            nan = a.copy().reshape(-1)
            nan[0] = np.nan
            yield f"{key} holding NaN", {**rest, key: nan.reshape(a.shape)}, True
            yield f"{key} as int", {**rest, key: a.astype(np.int64)}, False
        yield f"{key} as bool", {**rest, key: a.astype(bool)}, False
        yield f"{key} as text", {**rest, key: a.astype(str)}, True
    yield "an unknown extra array", {**arrays, "extra": np.zeros(3, np.int64)}, False


def save_npz(path: Path, arrays: dict[str, np.ndarray]):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_every_tensor_of_the_intmodel(base, fresh, tmp_path):
    arrays = intmodel_mod.load_arrays(base / "intmodel" / "tensors.npz")
    manifest = json.loads((base / "intmodel" / "manifest.json").read_text())
    tally = Tally()
    for k, (label, changed, checked) in enumerate(tensor_mutations(arrays)):
        run = fresh()
        save_npz(run / "intmodel" / "tensors.npz", changed)
        for argv in readers_of_intmodel(run, tmp_path / "out", k):
            tally.expect("intmodel tensor", label, argv, ("intmodel/manifest.json", "tensors.npz"))
        if checked and all(v.dtype.kind in "biuf" for v in changed.values()):
            resigned = dict(manifest, digest=intmodel_mod._digest(manifest, changed))
            (run / "intmodel" / "manifest.json").write_text(json.dumps(resigned))
            tally.expect("intmodel tensor, digest recomputed", label, ["sim", str(run), "--n", "1"],
                         ("intmodel/manifest.json", "tensors.npz"), avoid="digest")
    tally.check()


def broken_files(good: bytes):
    """(label, writer) pairs that leave a broken file (or something else) at a path."""

    def write(data):
        return lambda p: p.write_bytes(data)

    def folder(p):
        p.mkdir()

    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x5A
    return [("empty", write(b"")), ("truncated to half", write(good[: len(good) // 2])),
            ("one byte flipped", write(bytes(flipped))), ("random bytes", write(os.urandom(300))),
            ("text", write(b"hello\n")), ("a folder", folder), ("missing", lambda p: None)]


@pytest.mark.parametrize("name", ["intmodel/manifest.json", "intmodel/tensors.npz"])
def test_broken_intmodel_files(base, fresh, tmp_path, name):
    tally = Tally()
    good = (base / name).read_bytes()
    cases = broken_files(good)
    if name.endswith(".json"):
        cases += [(f"JSON {text}", lambda p, t=text: p.write_text(t)) for text in ("[]", "null", "{}", "1", '"x"')]
    for k, (label, breaker) in enumerate(cases):
        run = fresh()
        (run / name).unlink()
        breaker(run / name)
        for argv in readers_of_intmodel(run, tmp_path / "out", 0 if k < 2 else 1):
            tally.expect(f"{name} file", label, argv, (name, Path(name).parent.name))
    tally.check()


def test_tensor_files_that_would_inflate_or_unpickle(base, fresh, tmp_path, monkeypatch):
    tally = Tally()
    run = fresh()
    arrays = intmodel_mod.load_arrays(base / "intmodel" / "tensors.npz")
    np.savez(run / "intmodel" / "tensors.npz", **arrays, extra=np.array([{"a": 1}], dtype=object))
    tally.expect("tensors.npz hostile", "an object array (pickled)", ["sim", str(run), "--n", "1"], ("tensors.npz",))
    run = fresh()
    monkeypatch.setattr(intmodel_mod, "MAX_TENSOR_BYTES", 4096)  # a zip bomb, in small
    np.savez_compressed(run / "intmodel" / "tensors.npz", **arrays, zeros=np.zeros(1 << 16, np.int64))
    tally.expect("tensors.npz hostile", "inflates beyond the budget", ["sim", str(run), "--n", "1"], ("tensors.npz",))
    tally.check()


# ---------------------------------------------------------------- checkpoint, metrics, spec


def test_broken_checkpoints(base, fresh):
    tally = Tally()
    good = (base / "checkpoint.pt").read_bytes()
    state = torch.load(base / "checkpoint.pt", weights_only=True)

    def saving(obj):
        return lambda p: torch.save(obj, p)

    tensors = {k: v for k, v in state["model"].items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) and "model" in state else None
    cases = broken_files(good) + [("a dict without the model", saving({"x": 1})), ("a list", saving([1, 2]))]
    if tensors:
        first = next(iter(tensors))
        cases.append(("a tensor of another shape", saving({**state, "model": {**state["model"], first: torch.zeros(3)}})))
        cases.append(("a tensor missing", saving({**state, "model": {k: v for k, v in state["model"].items() if k != first}})))
    cases.append(("a pickled object", saving(Counter(a=1))))
    for label, breaker in cases:
        run = fresh()
        (run / "checkpoint.pt").unlink()
        breaker(run / "checkpoint.pt")
        tally.expect("checkpoint.pt", label, ["eval", str(run)], ("checkpoint.pt",))
    tally.check()


def test_broken_metrics(base, fresh):
    tally = Tally()
    good = (base / "metrics.json").read_bytes()
    metrics = json.loads(good)
    cases = broken_files(good) + [(f"JSON {t}", lambda p, t=t: p.write_text(t)) for t in ("[]", "null", "{}", '"x"')]
    for label, tree, _ in field_mutations(metrics, one_per_schema_key(metrics, key=lambda m, p: p[:2])):
        cases.append((label, lambda p, t=tree: p.write_text(json.dumps(t))))
    checked = 0
    for label, breaker in cases:
        run = fresh()
        (run / "metrics.json").unlink()
        breaker(run / "metrics.json")
        rc, err = attempt(["eval", str(run)])
        # a field eval does not read may change harmlessly; anything it reads must fail cleanly
        if rc == 0 and "Traceback" not in err:
            continue
        checked += 1
        tally.expect("metrics.json", label, ["eval", str(run)], ("metrics.json",))
    assert checked >= len(broken_files(good)) + 4
    tally.check()


def test_broken_or_edited_specs(base, fresh, tmp_path):
    tally = Tally()
    edits = {
        "empty": "",
        "a syntax error": SPEC.replace("relu(c1)", "relu(c1"),
        "another width": SPEC.replace("units=10", "units=12"),
        "another bit width": SPEC.replace("@quant(w=4, a=8)", "@quant(w=6, a=8)"),
        "a layer removed": SPEC.replace("  r2 = relu(c2)\n", "").replace("add(r2, p1)", "add(c2, p1)"),
        "binary": "\x00\x01\x02",
    }
    for label, text in edits.items():
        for argv_of in (lambda r: ["eval", str(r)], lambda r: ["sim", str(r), "--n", "1"],
                        lambda r: ["verify", str(r), "--n", "1"], lambda r: ["gen", str(r), "-o", str(tmp_path / "o")]):
            run = fresh()
            (run / "spec.cdsl").write_text(text)
            tally.expect("spec.cdsl", label, argv_of(run), ("spec.cdsl",))
    run = fresh()
    (run / "spec.cdsl").unlink()
    tally.expect("spec.cdsl", "missing", ["sim", str(run), "--n", "1"], ("spec.cdsl",))
    tally.check()


# ---------------------------------------------------------------- the generated design


def test_every_field_of_the_rtl_manifest(base, fresh):
    manifest = json.loads((base / "rtl" / "manifest.json").read_text())

    def key(m, path):  # plan arrays and nodes: one case per field name
        return tuple("#" if isinstance(p, int) else ("<array>" if k == 1 and path[0] == "plan_arrays" else p)
                     for k, p in enumerate(path))

    tally = Tally()
    for k, (label, tree, typed) in enumerate(field_mutations(manifest, one_per_schema_key(manifest, key=key))):
        run = fresh()
        (run / "rtl" / "manifest.json").write_text(json.dumps(tree))
        argv = ["sim", str(run), "--n", "1"] if k % 2 else ["verify", str(run), "--n", "1"]
        tally.expect("rtl manifest field", label, argv, ("rtl/manifest.json",))
        if typed and not label.startswith("digest"):
            (run / "rtl" / "manifest.json").write_text(json.dumps(dict(tree, digest=manifest_digest(tree))))
            tally.expect("rtl manifest field, digest recomputed", label, ["sim", str(run), "--n", "1"],
                         ("rtl/manifest.json", "network.sv"), avoid="digest")
    tally.check()


def test_broken_rtl_files(base, fresh):
    tally = Tally()
    for name in ("rtl/manifest.json", "rtl/network.sv"):
        good = (base / name).read_bytes()
        cases = broken_files(good)
        if name.endswith(".sv"):  # the same JSON with other line ends is the same manifest
            cases.append(("CRLF line ends", lambda p: p.write_bytes(good.replace(b"\n", b"\r\n"))))
        for label, breaker in cases:
            if label == "missing":
                continue  # sim and verify generate a missing rtl/ folder's design, not a missing file's
            run = fresh()
            (run / name).unlink()
            breaker(run / name)
            for argv in (["sim", str(run), "--n", "1"], ["verify", str(run), "--n", "1"]):
                tally.expect(name, label, argv, (name,))
    tally.check()


# ---------------------------------------------------------------- data files


DATA_SPEC = SPEC.replace("train {\n", 'train {\n  data = "d.npz"\n').replace("[1, 8, 8]", "[1, 4, 4]").replace(
    "  p2 = avgpool(s, kernel=2)\n", "").replace("flatten(p2)", "flatten(s)")


def good_data(n=60, classes=10):
    rng = np.random.default_rng(0)
    return {"x": rng.integers(0, 16, size=(n, 1, 4, 4)).astype(np.float32) / 16 * 15,
            "y": np.arange(n, dtype=np.int64) % classes}


def test_hostile_data_files(tmp_path, monkeypatch):
    from cdsl.sw import data as data_mod

    good = good_data()
    cases = {
        "no x": {"y": good["y"]},
        "no y": {"x": good["x"]},
        "x of another shape": {**good, "x": good["x"].reshape(60, 16)},
        "x with NaN": {**good, "x": np.where(np.arange(16).reshape(1, 1, 4, 4) == 3, np.nan, good["x"])},
        "x with inf": {**good, "x": np.where(np.arange(16).reshape(1, 1, 4, 4) == 3, np.inf, good["x"])},
        "x beyond the input type": {**good, "x": good["x"] * 100},
        "x as text": {**good, "x": good["x"].astype(str)},
        "y fractional": {**good, "y": good["y"] + 0.5},
        "y negative": {**good, "y": good["y"] - 1},
        "y beyond the classes": {**good, "y": good["y"] + 5},
        "y two-dimensional": {**good, "y": good["y"][:, None]},
        "x and y of other lengths": {**good, "y": good["y"][:-7]},
        "too few samples": {"x": good["x"][:6], "y": good["y"][:6]},
        "a class with one sample": {**good, "y": np.where(np.arange(60) == 0, 9, good["y"] % 9)},
        "an object array": {**good, "x": np.array([{"a": 1}] * 60, dtype=object)},
        "empty": {"x": good["x"][:0], "y": good["y"][:0]},
    }
    tally = Tally()
    spec = tmp_path / "d.cdsl"
    spec.write_text(DATA_SPEC)
    line = next(k for k, text in enumerate(DATA_SPEC.splitlines(), 1) if "data =" in text)
    where = f"{spec}:{line}:"
    npz = tmp_path / "d.npz"
    for label, arrays in cases.items():
        npz.unlink(missing_ok=True)
        np.savez(npz, **arrays)
        tally.expect("data file", label, ["train", str(spec), "-o", str(tmp_path / "run"), "--epochs", "1"],
                     (where,))
        assert not (tmp_path / "run").exists(), label
    for label, breaker in broken_files(npz.read_bytes()):
        shutil.rmtree(npz) if npz.is_dir() else npz.unlink(missing_ok=True)
        breaker(npz)
        tally.expect("data file", label, ["train", str(spec), "-o", str(tmp_path / "run"), "--epochs", "1"], (where,))
    shutil.rmtree(npz, ignore_errors=True)
    monkeypatch.setattr(data_mod, "MAX_DATA_BYTES", 4096, raising=True)
    np.savez_compressed(npz, x=np.zeros((600, 1, 4, 4), np.float32), y=np.arange(600) % 10)
    tally.expect("data file", "inflates beyond the budget", ["train", str(spec), "-o", str(tmp_path / "run")], (where,))
    tally.check()


# ---------------------------------------------------------------- options and paths


def test_hostile_options_and_paths(base, fresh, tmp_path):
    run = fresh()
    spec = tmp_path / "hostile.cdsl"
    spec.write_text(SPEC)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    fifo = tmp_path / "fifo.cdsl"
    os.mkfifo(fifo)
    unwritable = "/proc/cdsl-cannot-write-here"  # refused even to root
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    s, r = str(spec), str(run)
    cases = [
        # output paths
        ("-o under a file", ["train", s, "-o", str(a_file / "run")], ("a_file",)),
        ("-o onto a file", ["train", s, "-o", str(a_file)], ("a_file",)),
        ("-o unwritable", ["train", s, "-o", unwritable], ("/proc",)),
        ("-o a folder of other files", ["train", s, "-o", str(other)], ("mine",)),
        ("gen -o under a file", ["gen", r, "-o", str(a_file / "rtl")], ("a_file",)),
        ("gen -o onto a file", ["gen", r, "-o", str(a_file)], ("a_file",)),
        ("gen -o unwritable", ["gen", r, "-o", unwritable], ("/proc",)),
        ("--wave under a file", ["sim", r, "--n", "1", "--wave", str(a_file / "w.vcd")], ("--wave",)),
        ("--wave unwritable", ["sim", r, "--n", "1", "--wave", unwritable + "/w.vcd"], ("--wave",)),
        ("--wave another format", ["sim", r, "--n", "1", "--wave", str(tmp_path / "w.txt")], ("--wave",)),
        # sources
        ("a missing spec", ["train", str(tmp_path / "nope.cdsl")], ("nope.cdsl",)),
        ("a folder as spec", ["check", str(tmp_path)], (str(tmp_path),)),
        ("/dev/zero as spec", ["check", "/dev/zero"], ("/dev/zero",)),
        ("a FIFO as spec", ["check", str(fifo)], ("fifo.cdsl",)),
        ("a missing run folder", ["sim", str(tmp_path / "nope")], ("nope",)),
        ("a file as run folder", ["verify", str(a_file)], ("a_file",)),
        # numbers
        ("--seed 23 digits", ["train", s, "--seed", "12345678901234567890123"], ("--seed",)),
        ("--seed negative", ["train", s, "--seed", "-1"], ("--seed",)),
        ("--epochs 0", ["train", s, "--epochs", "0"], ("--epochs",)),
        ("--epochs text", ["train", s, "--epochs", "many"], ("--epochs",)),
        ("--n 0", ["sim", r, "--n", "0"], ("--n",)),
        ("--n -5", ["bench", r, "--n", "-5"], ("--n",)),
        ("--n beyond the split", ["verify", r, "--n", "100000"], ("--n",)),
        ("--lanes 0", ["gen", r, "-o", str(tmp_path / "g"), "--lanes", "0"], ("--lanes",)),
        ("--target-cycles -3", ["gen", r, "-o", str(tmp_path / "g"), "--target-cycles", "-3"], ("--target-cycles",)),
        # runtime settings
        ("--precision above w", ["sim", r, "--n", "1", "--precision", "c2=5"], ("c2",)),
        ("--precision 16 (wraps a 4-bit port)", ["verify", r, "--n", "1", "--precision", "c2=16"], ("c2",)),
        ("--precision of a parallel layer", ["sim", r, "--n", "1", "--precision", "y=4"], ("y",)),
        ("--precision of no layer", ["sim", r, "--n", "1", "--precision", "nope=4"], ("nope",)),
        ("--precision text", ["sim", r, "--n", "1", "--precision", "c2=four"], ("--precision",)),
        ("--set unknown setting", ["sim", r, "--n", "1", "--set", "c2.speed=1"], ("speed",)),
        ("--set without a value", ["sim", r, "--n", "1", "--set", "c2.precision"], ("--set",)),
    ]
    tally = Tally()
    for label, argv, names in cases:
        tally.expect("options and paths", label, argv, names)
    assert a_file.read_text() == "x" and (other / "notes.txt").read_text() == "mine"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    tally.check()
