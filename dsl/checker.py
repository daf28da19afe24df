"""Syntax tree -> checked IR: lowering, shape inference and every semantic rule.

The first problem found is raised as a located `CdslError` (the span of the offending token or
node, and what was expected). Layers may refer to names defined later in the file; the graph
must be acyclic (a cycle is reported with its names), and every layer must feed an output.

Ops are looked up by source name in `ir.OPS`; each op class carries its own schema, arity, shape
rule and the annotations it takes, so nothing here depends on which ops exist.
"""

from __future__ import annotations

import re

from cdsl.errors import CdslError, Source, Span

from . import ir
from . import tree as T
from .schema import ANNOTATION_PARAMS, STAGE_PARAMS, TRAIN_PARAMS, Bound, bind, describe_value, require
from .syntax import did_you_mean

_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def _count_words(n: int) -> str:
    return _COUNT_WORDS.get(n, str(n))


class _Checker:
    def __init__(self, source: Source):
        self.source = source
        self.binary: dict[str, bool] = {}  # which tensors hold binary (+1/-1) values, for @binary

    def error(self, message: str, span: Span | None, expected: str | None = None) -> CdslError:
        return CdslError(message, source=self.source, span=span, expected=expected)

    # ------------------------------------------------------------ file

    def file(self, f: T.FileAst) -> ir.Spec:
        models = [s for s in f.sections if s.kind == "model"]
        trains = [s for s in f.sections if s.kind == "train"]
        if not models:
            at = trains[0].keyword.span if trains else Span.point(1, 1)
            raise self.error(
                "no model in this file" + (" (only a train section)" if trains else ""),
                at,
                "a model section: model NAME { input ... ; layers ; output ... }",
            )
        if len(models) > 1:
            first = models[0].keyword.span
            raise self.error(
                f"a file holds one model; another model section begins here (the first is at line {first.line})",
                models[1].keyword.span,
            )
        if len(trains) > 1:
            first = trains[0].keyword.span
            raise self.error(
                f"a file holds one train section; another begins here (the first is at line {first.line})",
                trains[1].keyword.span,
            )
        model, layer_nodes = self.model(models[0])
        train = self.train(trains[0]) if trains else ir.Train()
        self.cross_checks(model, layer_nodes, train, trains[0] if trains else None)
        return ir.Spec(model=model, train=train)

    # ------------------------------------------------------------ model

    def model(self, sec: T.SectionAst):
        inputs: list[ir.Input] = []
        layers: list[tuple[T.LayerAst, ir.Layer]] = []
        outputs: T.OutputAst | None = None
        defined: dict[str, T.Ident] = {}

        def define(ident: T.Ident):
            if ident.text in defined:
                first = defined[ident.text].span
                raise self.error(
                    f"duplicate name '{ident.text}' (first defined at line {first.line}:{first.col})",
                    ident.span,
                    "a new name for this tensor",
                )
            defined[ident.text] = ident

        for stmt in sec.stmts:
            if isinstance(stmt, T.InputAst):
                define(stmt.name)
                inputs.append(self.input(stmt))
            elif isinstance(stmt, T.LayerAst):
                define(stmt.name)
                layers.append((stmt, self.layer(stmt)))
            elif isinstance(stmt, T.OutputAst):
                if outputs is not None:
                    raise self.error(
                        f"a second output statement (the first is at line {outputs.span.line}); "
                        "list all outputs in one: output y, z",
                        stmt.span,
                    )
                outputs = stmt
        name = sec.name
        assert name is not None
        if not inputs:
            raise self.error(f"model '{name.text}' has no input", name.span, "input NAME: TYPE[SHAPE], e.g. input x: int8[64]")
        if not layers:
            raise self.error(f"model '{name.text}' has no layers", name.span, "NAME = OP(INPUT, ...), e.g. y = dense(x, units=10)")
        if outputs is None:
            raise self.error(f"model '{name.text}' has no output", sec.close_brace.span, "output NAME before '}'")

        # References: every input of a layer names an input or a layer.
        known = ", ".join(defined)
        for node, lay in layers:
            for arg, ref in zip(node.args, lay.inputs):
                if ref not in defined:
                    raise self.error(
                        f"unknown tensor '{ref}'{did_you_mean(ref, defined)}",
                        arg.span,
                        f"the name of an input or a layer: {known}",
                    )
        layer_names = [lay.name for _, lay in layers]
        seen_out: dict[str, T.Ident] = {}
        for ident in outputs.names:
            if ident.text in seen_out:
                raise self.error(f"output '{ident.text}' is listed twice", ident.span)
            seen_out[ident.text] = ident
            if ident.text not in defined:
                raise self.error(
                    f"unknown output '{ident.text}'{did_you_mean(ident.text, layer_names)}",
                    ident.span,
                    "the name of a layer: " + ", ".join(layer_names),
                )
            if ident.text not in layer_names:
                raise self.error(
                    f"output '{ident.text}' is a model input; outputs must be layers", ident.span,
                    "the name of a layer: " + ", ".join(layer_names),
                )

        self.check_cycles(layers)
        node_of = {lay.name: node for node, lay in layers}
        shapes: dict[str, ir.Shape] = {i.name: i.shape for i in inputs}
        # +1/-1 tensors: the outputs of sign (no input type holds them: 1-bit codes are 0/1 or -1/0)
        self.binary = {i.name: False for i in inputs}
        unshaped = ir.Model(name.text, tuple(inputs), tuple(lay for _, lay in layers), tuple(i.text for i in outputs.names))
        done: dict[str, ir.Layer] = {}
        for lay in unshaped.topo_order():
            out = self.out_shape(node_of[lay.name], lay, shapes)
            shapes[lay.name] = out
            self.binary[lay.name] = lay.op.binary_out(tuple(self.binary[i] for i in lay.inputs))
            done[lay.name] = ir.Layer(lay.name, lay.op, lay.inputs, lay.annotations, out, span=lay.span)
        final = [done[lay.name] for _, lay in layers]
        model = ir.Model(name.text, tuple(inputs), tuple(final), tuple(i.text for i in outputs.names), span=sec.span)

        # Every input and layer must reach an output.
        read = {src for lay in final for src in lay.inputs}
        for node, lay in layers:
            if lay.name not in seen_out and lay.name not in read:
                raise self.error(
                    f"layer '{lay.name}' is never used: no layer reads it and it is not an output",
                    node.name.span,
                    f"'{lay.name}' as the input of a layer, or in 'output'",
                )
        for inp in inputs:
            if inp.name not in read:
                raise self.error(f"input '{inp.name}' is never used", inp.span, f"'{inp.name}' as the input of a layer")
        for lay in final:
            self.check_annotations(node_of[lay.name], lay, tuple(shapes[i] for i in lay.inputs))
        return model, node_of

    def input(self, node: T.InputAst) -> ir.Input:
        tname = node.dtype_name.text
        m = re.fullmatch(r"(u?)int([0-9]+)", tname)
        if m:
            if node.dtype_params is not None:
                raise self.error(f"'{tname}' takes no <bits,frac>; write fixed<B,F> or ufixed<B,F> for fractions", node.dtype_span)
            bits, frac, signed = int(m.group(2)), 0, m.group(1) == ""
            bits_span = node.dtype_name.span
        elif tname in ("fixed", "ufixed"):
            if node.dtype_params is None:
                raise self.error(f"'{tname}' needs <bits,frac>, e.g. {tname}<8,4>", node.dtype_span, f"{tname}<B,F>")
            bits, frac = node.dtype_params[0].value, node.dtype_params[1].value
            signed = tname == "fixed"
            bits_span = node.dtype_params[0].span
            if not 0 <= frac <= bits:
                raise self.error(
                    f"fractional bits must be from 0 to the total bits ({bits}), got {frac}",
                    node.dtype_params[1].span, f"a whole number from 0 to {bits}",
                )
        else:
            raise self.error(
                f"unknown type '{tname}'{did_you_mean(tname, ('int8', 'uint8', 'fixed', 'ufixed'))}",
                node.dtype_name.span,
                "intB, uintB, fixed<B,F> or ufixed<B,F> (e.g. int8, ufixed<8,4>)",
            )
        if not 1 <= bits <= 16:
            raise self.error(f"input bit width must be from 1 to 16, got {bits}", bits_span, "a width from 1 to 16")
        dims = node.shape
        if not 1 <= len(dims) <= 3:
            raise self.error(
                f"an input shape has 1 to 3 dimensions ([K], [N, D] or [C, H, W]), got {len(dims)}",
                node.shape_span, "[K], [N, D] or [C, H, W]",
            )
        for d in dims:
            if not 1 <= d.value <= 1 << 20:
                raise self.error(f"a dimension must be from 1 to {1 << 20}, got {d.value}", d.span, "a positive size")
        return ir.Input(node.name.text, ir.FixedType(bits, frac, signed), tuple(d.value for d in dims), span=node.span)

    # ------------------------------------------------------------ layers

    def layer(self, node: T.LayerAst) -> ir.Layer:
        opname = node.op.text
        kind = ir.OPS.get(opname)
        if kind is None:
            raise self.error(
                f"unknown op '{opname}'{did_you_mean(opname, ir.OPS)}",
                node.op.span,
                "one of: " + ", ".join(ir.OPS),
            )
        b = bind(
            node.args, kind.schema, what=opname, source=self.source, at=node.op.span,
            positional_ok=True, check_required=False,
        )
        inputs = self.layer_inputs(node, kind, b.positional)
        require(b, kind.schema, what=opname, source=self.source, at=node.op.span)
        anns = self.annotations(node, kind)
        return ir.Layer(node.name.text, kind.build(opname, b.values), inputs, anns, span=node.span)

    def layer_inputs(self, node: T.LayerAst, kind: type[ir.Op], positional: list[T.Value]) -> tuple[str, ...]:
        """The input tensor names of a layer: `kind.arity` of them, written first and positionally."""
        opname, n = node.op.text, kind.arity
        if not positional and n == 1:
            raise self.error(f"{opname} needs an input tensor, e.g. {opname}(x, ...)", node.op.span, "the name of an input or a layer")
        for value in positional[:n]:
            if value.kind != "name":
                which = "the input" if n == 1 else "each input"
                raise self.error(
                    f"{which} of {opname} must be a tensor name, got {describe_value(value)}", value.span,
                    "the name of an input or a layer",
                )
        if len(positional) == n:
            return tuple(str(value.value) for value in positional)
        params = ", ".join(f"{p.name}=..." for p in kind.schema) or "')'"
        if n == 1:
            raise self.error(f"{opname} takes one input tensor; parameters are written name=value", positional[1].span, params)
        takes = f"{opname} takes {_count_words(n)} input tensors, got {len(positional)}"
        if len(positional) > n:
            raise self.error(takes, positional[n].span, params)
        example = f"{opname}({', '.join('abcdefgh'[:n])}{', ...' if kind.schema else ''})"
        raise self.error(takes, node.op.span, f"{_count_words(n)} tensor names, e.g. {example}")

    def annotations(self, node: T.LayerAst, kind: type[ir.Op]) -> ir.Annotations:
        opname = node.op.text
        found: dict[str, object] = {}
        where: dict[str, T.AnnotationAst] = {}
        for ann in node.annotations:
            aname = ann.name.text
            if aname not in ANNOTATION_PARAMS:
                raise self.error(
                    f"unknown annotation '@{aname}'{did_you_mean(aname, ANNOTATION_PARAMS)}",
                    ann.name.span,
                    "one of: " + ", ".join("@" + n for n in ANNOTATION_PARAMS),
                )
            if aname in where:
                first = where[aname].span
                raise self.error(
                    f"duplicate annotation @{aname} (the first is at line {first.line}:{first.col})", ann.span,
                    "at most one of each annotation per layer",
                )
            where[aname] = ann
            if aname not in kind.applies:
                raise self.error(
                    f"@{aname} does not apply to {opname}",
                    ann.span,
                    f"@{aname} on " + ", ".join(n for n, k in ir.OPS.items() if aname in k.applies),
                )
            if ann.args is None and any(p.required for p in ANNOTATION_PARAMS[aname]):
                needed = ", ".join(p.hint or p.name + "=..." for p in ANNOTATION_PARAMS[aname] if p.required)
                raise self.error(f"@{aname} needs parameters: @{aname}({needed})", ann.span, f"@{aname}({needed})")
            found[aname] = self.annotation(ann, aname, opname, kind)
        # Conflicts and requirements that need no shapes.
        q = found.get("quant")
        has_w = isinstance(q, ir.Quant) and q.w is not None

        def clash(a: str, b: str, why: str = ""):
            raise self.error(f"@{a} conflicts with @{b}" + (f": {why}" if why else ""), where[a].span, f"remove @{a} or @{b}")

        if "binary" in found and has_w:
            clash("binary", "quant", "binary weights are 1 bit; keep @quant for activations only (a=...)")
        if "aqfp" in found and "binary" not in found:
            raise self.error("@aqfp needs @binary (AQFP accumulates binary XNOR products)", where["aqfp"].span, "@binary @aqfp(...)")
        if "bitserial" in found and "cim" in found:
            clash("bitserial", "cim", "a layer maps to one kind of hardware")
        if "bitserial" in found and "binary" in found:
            clash("bitserial", "binary", "binary layers map to XNOR-popcount (or @aqfp), not a bit-serial MAC")
        if "cim" in found and "binary" in found:
            clash("cim", "binary")
        for need in ("bitsparse", "trunc", "bitserial", "cim"):
            if need in found and not has_w:
                at = where["quant"].span if "quant" in where else where[need].span
                raise self.error(
                    f"@{need} needs @quant with a weight width (w=...)", at, "@quant(w=BITS, ...) on this layer"
                )
        return ir.Annotations(**found)

    def annotation(self, ann: T.AnnotationAst, aname: str, opname: str, kind: type[ir.Op]):
        b = bind(ann.args, ANNOTATION_PARAMS[aname], what=f"@{aname}", source=self.source, at=ann.span)
        self.check_only_params(b, aname, opname, kind)
        v = b.values
        span = ann.span
        if aname == "quant":
            if "w" not in v and "a" not in v:
                widths = {"w": "w=... (weight bits)", "a": "a=... (activation bits)"}
                takes = [k for k in widths if k in kind.only_params.get("quant", widths)]
                raise self.error(
                    "@quant needs " + " or ".join(widths[k] for k in takes) + (", or both" if len(takes) > 1 else ""),
                    span, "@quant(" + ", ".join(f"{k}=8" for k in takes) + ")",
                )
            per = ir.Granularity(v.get("per", "tensor"))
            return ir.Quant(v.get("w"), v.get("a"), per, v.get("signed"), span=span)
        if aname == "prune":
            has = [k for k in ("sparsity", "nm", "block") if k in v]
            if "nm" in v:
                if has != ["nm"]:
                    other = "sparsity" if "sparsity" in v else "block"
                    raise self.error("@prune(nm=N:M) takes no sparsity or block: N:M fixes the sparsity", b.nodes[other].span)
                n, m = v["nm"]
                if not (1 <= n < m <= 64):
                    raise self.error(
                        f"@prune: nm={n}:{m} must keep N of M weights with 1 <= N < M <= 64", b.nodes["nm"].value.span,
                        "a ratio such as 2:4 or 1:8",
                    )
                pattern = ir.PrunePattern.NM
            elif "block" in v:
                if "sparsity" not in v:
                    raise self.error("@prune(block=...) needs sparsity=...", span, "@prune(block=[4, 4], sparsity=0.5)")
                pattern = ir.PrunePattern.BLOCK
            elif "sparsity" in v:
                pattern = ir.PrunePattern.UNSTRUCTURED
            else:
                raise self.error(
                    "@prune needs sparsity=..., nm=N:M, or block=[R, C] with sparsity=...", span,
                    "@prune(sparsity=0.5), @prune(nm=2:4) or @prune(block=[4, 4], sparsity=0.5)",
                )
            start, end = v.get("start", 0), v.get("end")
            if end is not None and end <= start:
                raise self.error(f"@prune: end={end} must come after start={start}", b.nodes["end"].value.span, f"an epoch after {start}")
            nm = v.get("nm", (0, 0))
            return ir.Prune(
                pattern, v.get("sparsity", 0.0) if pattern is not ir.PrunePattern.NM else 0.0, nm[0], nm[1],
                v.get("block", (0, 0)), start, end, span=span,
            )
        if aname == "bitsparse":
            return ir.BitSparse(v["target"], v.get("strength", 1e-4), span=span)
        if aname == "trunc":
            bits = v["bits"]
            seen = set()
            for item, val in zip(b.nodes["bits"].value.value, bits):
                if val in seen:
                    raise self.error(f"@trunc: {val} bits is listed twice", item.span)
                seen.add(val)
            return ir.Trunc(bits, span=span)
        if aname == "bitserial":
            return ir.BitSerial(v["lanes"], span=span)
        if aname == "cim":
            return ir.Cim(
                v["rows"], v["cols"], v.get("cell", 1), v.get("dac", 1), v.get("adc", 8),
                ir.Granularity(v.get("scale", "channel")), v.get("noise", 0.0), span=span,
            )
        if aname == "binary":
            return ir.Binary(span=span)
        if aname == "aqfp":
            return ir.Aqfp(v["group"], v["T"], v.get("seed", 1), v.get("gray", ir.Aqfp.gray),
                           v.get("atten", ir.Aqfp.atten), span=span)
        return ir.Tokens(v["keep"], v.get("heads", 1), span=span)

    def check_only_params(self, b: Bound, aname: str, opname: str, kind: type[ir.Op]) -> None:
        """Refuse an annotation parameter the op does not take (e.g. `@quant(w=...)` on add)."""
        only = kind.only_params.get(aname)
        if only is None:
            return
        for key, arg in b.nodes.items():
            if key not in only:
                raise self.error(
                    f"@{aname}({key}=...) does not apply to {opname}" + ("" if kind.weighted else f": {opname} has no weights"),
                    arg.span,
                    f"@{aname} on {opname} takes only " + ", ".join(f"{k}=..." for k in only),
                )

    # ------------------------------------------------------------ graph

    def check_cycles(self, layers: list[tuple[T.LayerAst, ir.Layer]]) -> None:
        """Iterative DFS; reports the first cycle found (in source order) with its names in data-flow order."""
        deps = {lay.name: [i for i in lay.inputs] for _, lay in layers}
        node_of = {lay.name: node for node, lay in layers}
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        for root, _ in ((lay.name, None) for _, lay in layers):
            if state.get(root):
                continue
            stack = [(root, iter(deps[root]))]
            path = [root]
            state[root] = 1
            while stack:
                name, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[name] = 2
                    continue
                if nxt not in deps:
                    continue  # a model input
                if state.get(nxt) == 1:
                    cyc = path[path.index(nxt):]
                    flow = list(reversed(cyc)) + [cyc[-1]]  # producer -> consumer
                    j = min(range(len(cyc)), key=lambda i: node_of[cyc[i]].start)
                    node, producer = node_of[cyc[j]], cyc[(j + 1) % len(cyc)]  # cyc[i] reads cyc[i + 1]
                    arg = next(a for a in node.args if a.name is None and a.value.value == producer)
                    raise self.error(
                        "cycle in the model graph: " + " -> ".join(flow),
                        arg.span,
                        "layers that only read tensors computed without them",
                    )
                if state.get(nxt) == 2:
                    continue
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(deps[nxt])))

    # ------------------------------------------------------------ shapes

    def out_shape(self, node: T.LayerAst, lay: ir.Layer, shapes: dict[str, ir.Shape]) -> ir.Shape:
        """The layer's output shape by its op's rule; a refusal becomes a located error."""
        try:
            return lay.op.out_shape(tuple(ir.Operand(i, shapes[i]) for i in lay.inputs))
        except ir.ShapeError as err:
            if err.param is not None:
                at = _param_span(node, err.param)
            elif err.operand is not None:
                at = node.args[err.operand].span
            else:
                at = node.op.span
            raise self.error(err.message, at, err.expected) from None

    # ------------------------------------------------------------ annotations, with shapes

    def check_annotations(self, node: T.LayerAst, lay: ir.Layer, in_shapes: tuple[ir.Shape, ...]) -> None:
        a = lay.annotations
        w = a.quant.w if a.quant is not None else None
        mats = lay.op.weight_matrices(in_shapes)
        if a.prune is not None and a.prune.pattern is ir.PrunePattern.NM:
            m = a.prune.m
            for rows, cols in mats:
                if cols % m:
                    raise self.error(
                        f"@prune(nm={a.prune.n}:{m}): groups of {m} run along the inputs, but a weight matrix of "
                        f"'{lay.name}' has {cols} inputs (not a multiple of {m})",
                        a.prune.span, f"M dividing {cols}",
                    )
        if a.prune is not None and a.prune.pattern is ir.PrunePattern.BLOCK:
            br, bc = a.prune.block
            for rows, cols in mats:
                if rows % br or cols % bc:
                    raise self.error(
                        f"@prune: blocks of {br}x{bc} do not tile the {rows}x{cols} weight matrix of '{lay.name}'",
                        a.prune.span, f"a block shape dividing {rows}x{cols}",
                    )
        if a.bitserial is not None:
            most, over = lay.op.max_lanes(in_shapes)
            if a.bitserial.lanes > most:
                raise self.error(
                    f"@bitserial: lanes={a.bitserial.lanes} is more than the {most} {over} of '{lay.name}' "
                    "(lanes run over a weight matrix's inputs)", a.bitserial.span, f"lanes from 1 to {most}",
                )
        if a.tokens is not None and in_shapes[0][0] < 2:
            raise self.error(
                f"@tokens: the input of '{lay.name}' has {in_shapes[0][0]} token (the class token only): the selector "
                "has no candidate to keep or prune", a.tokens.span, "a token stream of at least 2 tokens",
            )
        if a.tokens is not None and in_shapes[0][-1] % a.tokens.heads:
            d = in_shapes[0][-1]
            raise self.error(
                f"@tokens: the selector's heads={a.tokens.heads} do not divide the width {d} of '{lay.name}' "
                "(each head scores D/heads features)", a.tokens.span, f"heads dividing {d}",
            )
        if a.bitsparse is not None and w is not None and a.bitsparse.target > w:
            raise self.error(
                f"@bitsparse: target={a.bitsparse.target} bits is more than the weight width w={w}", a.bitsparse.span,
                f"a target from 1 to {w}",
            )
        if a.trunc is not None and w is not None:
            for b in a.trunc.bits:
                if b > w:
                    raise self.error(
                        f"@trunc: {b} bits is more than the weight width w={w}", a.trunc.span, f"precisions from 1 to {w}"
                    )
        if a.cim is not None and w is not None:
            c = a.cim
            if c.cell > w:
                raise self.error(f"@cim: cell={c.cell} bits is more than the weight width w={w}", c.span, f"cell from 1 to {w}")
            need = -(-w // c.cell)
            if c.cols < need:
                raise self.error(
                    f"@cim: a {c.rows}x{c.cols} array cannot hold one column slice: w={w} bits in {c.cell}-bit cells "
                    f"need {need} columns",
                    c.span, f"cols >= {need}",
                )
        if a.aqfp is not None:
            # A crossbar group holds input channels at one kernel position (a dense layer has one position,
            # its channels are its fan-in): a larger group would only be a group of all of them.
            channels, taps = in_shapes[0][0], mats[0][1] // in_shapes[0][0]
            if a.aqfp.group > channels:
                where = "inputs of each output" if taps == 1 else f"input channels at each of the {taps} kernel positions"
                raise self.error(
                    f"@aqfp: group={a.aqfp.group} is larger than the {channels} {where} of '{lay.name}' "
                    "(a crossbar group holds input channels at one kernel position)",
                    a.aqfp.span, f"a group of at most {channels}",
                )
        if a.binary is not None:
            for arg, src in zip(node.args, lay.inputs):
                if not self.binary[src]:
                    raise self.error(
                        f"@binary needs +1/-1 inputs, but '{src}' is not the output of sign(...)",
                        arg.span, f"a sign layer in front: s = sign({src})",
                    )

    # ------------------------------------------------------------ train

    def train(self, sec: T.SectionAst) -> ir.Train:
        settings = [s for s in sec.stmts if isinstance(s, T.SettingAst)]
        args = [T.Arg(s.span, s.start, s.end, s.key, s.value) for s in settings]
        b = bind(args, TRAIN_PARAMS, what="train", source=self.source, at=sec.keyword.span)
        v = b.values
        stages: list[ir.Stage] = []
        seen: dict[str, T.StageAst] = {}
        for st in sec.stmts:
            if not isinstance(st, T.StageAst):
                continue
            if st.name.text in seen:
                first = seen[st.name.text].span
                raise self.error(f"duplicate stage '{st.name.text}' (the first is at line {first.line})", st.name.span)
            seen[st.name.text] = st
            sb = bind(st.args, STAGE_PARAMS, what=f"stage '{st.name.text}'", source=self.source, at=st.name.span)
            sv = sb.values
            stages.append(ir.Stage(st.name.text, sv["epochs"], sv.get("lr"), sv.get("compress"), span=st.span))
        epochs = v.get("epochs")
        if stages:
            total = sum(s.epochs for s in stages)
            if epochs is not None and epochs != total:
                parts = " + ".join(f"{s.name} {s.epochs}" for s in stages)
                raise self.error(
                    f"epochs = {epochs}, but the stages add up to {total} ({parts})",
                    b.nodes["epochs"].value.span,
                    f"epochs = {total}, or leave epochs out (it is then the sum of the stages)",
                )
            epochs = total
        d = ir.Train()
        return ir.Train(
            data=v.get("data", d.data),
            epochs=epochs if epochs is not None else d.epochs,
            batch=v.get("batch", d.batch),
            optimizer=ir.Optimizer(v["optimizer"]) if "optimizer" in v else d.optimizer,
            lr=v.get("lr", d.lr),
            weight_decay=v.get("weight_decay", d.weight_decay),
            seed=v.get("seed", d.seed),
            stages=tuple(stages),
            span=sec.span,
            data_span=b.nodes["data"].span if "data" in b.nodes else sec.keyword.span,
        )

    def cross_checks(self, model: ir.Model, node_of, train: ir.Train, sec: T.SectionAst | None) -> None:
        for lay in model.layers:
            p = lay.annotations.prune
            if p is None:
                continue
            if p.start >= train.epochs:
                raise self.error(
                    f"@prune: start={p.start} is not before the end of training ({train.epochs} epochs)", p.span,
                    f"a start epoch below {train.epochs}",
                )
            if p.end is not None and p.end > train.epochs:
                raise self.error(
                    f"@prune: end={p.end} is after the end of training ({train.epochs} epochs)", p.span,
                    f"an end epoch of at most {train.epochs}",
                )
        present = {n for lay in model.layers for n in lay.annotations.present()}
        for st in train.stages:
            for n in st.compress or ():
                if n not in present:
                    raise self.error(
                        f"stage '{st.name}' compresses '{n}', but no layer has @{n}", st.span,
                        "annotation names used in the model: " + (", ".join(sorted(present)) or "none"),
                    )


def _param_span(node: T.LayerAst, key: str) -> Span:
    for arg in node.args:
        if arg.name is not None and arg.name.text == key:
            return arg.span
    return node.op.span


def lower(file: T.FileAst, source: Source) -> ir.Spec:
    """Check a syntax tree and build the IR (shapes inferred, pool strides filled)."""
    return _Checker(source).file(file)
