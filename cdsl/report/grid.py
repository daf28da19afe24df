"""Grid points of a sweep: `--grid KEY=V1,V2,...` applied to a spec's annotations.

A key names one annotation parameter (below) and sets it on every layer that has that annotation,
or only on one layer when written `LAYER.KEY`. A key that no layer of the spec can take is refused
(`bits` needs a layer with `@quant(w=...)`, `adc` a `@cim` layer, ...). `lanes` also sets the
generator's `--lanes` (the lanes of every MAC engine the spec does not fix with `@bitserial`), so it
applies to any spec with a weighted layer. Each point's spec is printed in canonical form and checked
again: a value the checker refuses (e.g. bits below a `@trunc` width) fails that point, located.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass

from cdsl.errors import CdslError


@dataclass(frozen=True)
class GridKey:
    annotation: str  # field of ir.Annotations
    field: str  # field of that annotation
    parse: type
    doc: str
    applies: str  # what a layer needs, for the error message
    usable: object = None  # predicate on the annotation (None: having it is enough)


GRID_KEYS = {
    "bits": GridKey("quant", "w", int, "weight bits of @quant(w=...)", "@quant(w=...)", lambda a: a.w is not None),
    "abits": GridKey("quant", "a", int, "activation bits of @quant(a=...)", "@quant(a=...)", lambda a: a.a is not None),
    "sparsity": GridKey("prune", "sparsity", float, "sparsity of @prune(sparsity=...) (unstructured or block)",
                        "@prune(sparsity=...)", lambda a: a.pattern.value != "nm"),
    "lanes": GridKey("bitserial", "lanes", int, "lanes of @bitserial and of every other MAC engine (gen --lanes)",
                     "a weighted layer"),
    "adc": GridKey("cim", "adc", int, "ADC bits of @cim(adc=...)", "@cim"),
    "keep": GridKey("tokens", "keep", float, "keep ratio of @tokens(keep=...)", "@tokens"),
    "T": GridKey("aqfp", "T", int, "bitstream cycles of @aqfp(T=...)", "@aqfp"),
}


@dataclass(frozen=True)
class Axis:
    key: str  # as written: 'bits' or 'h1.bits'
    layer: str | None
    name: str  # the GRID_KEYS entry
    values: tuple


def parse_grid(items: list[str]) -> list[Axis]:
    """`KEY=V1,V2,...` items (CdslError naming the item otherwise)."""
    axes = []
    seen = set()
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        layer, dot, name = key.rpartition(".")
        layer = layer if dot else None
        if not sep or not values.strip():
            raise CdslError(f"--grid {item!r}: expected KEY=V1,V2,... e.g. bits=8,4", name="cdsl sweep")
        if name not in GRID_KEYS:
            raise CdslError(f"--grid {item!r}: unknown key {name!r}", name="cdsl sweep",
                            expected="one of " + ", ".join(f"{k} ({g.doc})" for k, g in GRID_KEYS.items())
                            + "; LAYER.KEY for one layer")
        if key in seen:
            raise CdslError(f"--grid {key!r} is given twice", name="cdsl sweep")
        seen.add(key)
        kind = GRID_KEYS[name].parse
        parsed = []
        for v in values.split(","):
            v = v.strip()
            try:
                parsed.append(kind(v))
            except ValueError:
                raise CdslError(f"--grid {item!r}: {v!r} is not {'a whole number' if kind is int else 'a number'}",
                                name="cdsl sweep") from None
        if len(set(parsed)) != len(parsed):
            raise CdslError(f"--grid {item!r} lists a value twice", name="cdsl sweep")
        axes.append(Axis(key, layer, name, tuple(parsed)))
    if not axes:
        raise CdslError("no --grid given", name="cdsl sweep", expected="at least one --grid KEY=V1,V2,...")
    return axes


def _taking(spec, name: str, layer: str | None) -> list[str] | None:
    """The layers a key sets ([] for `lanes` on a spec with only the generator's lanes), None if none can."""
    g = GRID_KEYS[name]
    layers = [lay for lay in spec.model.layers if layer in (None, lay.name)]
    out = []
    for lay in layers:
        ann = getattr(lay.annotations, g.annotation)
        if ann is not None and (g.usable is None or g.usable(ann)):
            out.append(lay.name)
    if not out and name == "lanes" and layer is None and any(
            lay.op.weight_matrices(tuple(spec.model.shape_of(i) for i in lay.inputs)) for lay in layers):
        return []
    return out or None


def applicable_keys(spec) -> list[str]:
    return [name for name in GRID_KEYS if _taking(spec, name, None) is not None]


def _targets(spec, axis: Axis, where: str) -> list[str]:
    """The layers `axis` sets (CdslError when none can take it)."""
    g = GRID_KEYS[axis.name]
    if axis.layer is not None and axis.layer not in {lay.name for lay in spec.model.layers}:
        raise CdslError(f"--grid {axis.key}: the model has no layer {axis.layer!r}", name=where)
    out = _taking(spec, axis.name, axis.layer)
    if out is None:
        scope = f"layer {axis.layer!r} has no" if axis.layer else "no layer of the model has"
        raise CdslError(f"--grid {axis.key} does not apply: {scope} {g.applies}", name=where,
                        expected="a grid key the spec has: " + (", ".join(applicable_keys(spec)) or "none"))
    return out


@dataclass(frozen=True)
class Point:
    params: dict  # axis key -> value
    spec_text: str
    lanes: int | None  # the generator's --lanes, when the grid sets it
    error: str | None  # the checker's refusal of this point

    @property
    def name(self) -> str:
        return "_".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in self.params.items()).replace(".", "-")

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params.items())


def points(spec, axes: list[Axis], where: str) -> list[Point]:
    """Every grid point: the spec with the point's values set, printed and checked again."""
    from cdsl.dsl import parse, print_spec

    targets = {a.key: _targets(spec, a, where) for a in axes}
    out = []
    for combo in itertools.product(*(a.values for a in axes)):
        s = spec
        lanes = None
        params = {}
        for axis, value in zip(axes, combo):
            g = GRID_KEYS[axis.name]
            params[axis.key] = value
            if axis.name == "lanes" and axis.layer is None:
                lanes = value
            for name in targets[axis.key]:
                s = _set(s, name, g.annotation, g.field, value)
        text = print_spec(s)
        error = None
        try:
            parse(text, name=f"{where} [{', '.join(f'{k}={v}' for k, v in params.items())}]")
        except CdslError as err:
            error = str(err).strip().splitlines()[0]
        out.append(Point(params, text, lanes, error))
    return out


def _set(spec, layer: str, annotation: str, field: str, value):
    model = spec.model
    layers = []
    for lay in model.layers:
        if lay.name == layer:
            ann = getattr(lay.annotations, annotation)
            anns = dataclasses.replace(lay.annotations, **{annotation: dataclasses.replace(ann, **{field: value})})
            lay = dataclasses.replace(lay, annotations=anns)
        layers.append(lay)
    return dataclasses.replace(spec, model=dataclasses.replace(model, layers=tuple(layers)))


SAFE = re.compile(r"[^A-Za-z0-9_.=-]")
