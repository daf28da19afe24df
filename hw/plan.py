"""The hardware plan of an IntModel: a graph of engines, the streams between them, the buffers a
join needs, the runtime-setting registers, and the cycle model. Pure Python (no Amaranth).

`plan_network(intmodel)` asks each layer's kind (`cdsl.hw.registry.plan_layer`) for its `Node`
(an engine), a sub-graph (a tuple of nodes in topological order, for a layer built from several
engines: an encoder block; each node's name is `<layer>.<part>`, the last one's is `<layer>` and it
produces the layer's tensor; the others read the layer's inputs or each other), or an `Alias` (no
hardware: a flatten, a ReLU fused into the layer before it: the layer's tensor is then its input's
stream). Node names become Verilog instance and port names through `instance_name` ("." -> "__"). `cdsl.hw.network.Network` elaborates a plan;
`cdsl gen` writes it into the manifest (`NetworkPlan.to_json`), and `cdsl sim`/`verify` read it
back from there, so the cycle model and the harness follow the generated design, never a re-plan.

Streams. Every tensor that flows in hardware is a stream of `StreamType`: one activation per
transfer, row-major order of its shape, `bits` wide, with a `last` flag on the final word of an
inference (`cdsl.hw.streams.frame_layout`). A stream read by several consumers is forked in
lock step. Every input of a join (a node with several inputs) gets a FIFO holding one whole
inference of that stream (`Buffer`), so no producer ever waits for a join: a join cannot deadlock
and the cycle model below stays exact.

Cycle model (single inference, inputs offered every cycle from the first cycle, outputs always
taken). t(s) is the cycle (0-based) of the last transfer on stream s: t(input) = words - 1; for a
node, t(out) = max over its inputs of (t(in) + buffer latency) + node.delay(settings), where
`delay` is the engine's cycles from its last input transfer to its last output transfer. Cycles
per inference = max over the outputs of t + 1, i.e. from the first input offered to the last output
taken, inclusive. (Why max composes exactly: each stream carries at most one word per cycle and no
producer is ever stalled, so a lock-step join's k-th output follows the later of its k-th inputs.)

Token streams. A stream of shape [N, D] carries tokens, token-major, and may hold fewer than its N
tokens in an inference when a token selector upstream pruned some (StreamType keeps the largest
shape). The cycle model follows each token stream's count: a node reading token streams is charged
`delay_tokens(settings, n, kept)` with n its input's count, and its output holds `out_tokens(n)`
tokens; a node whose count the data decides (`out_tokens` is None: the selector) takes it from
`tokens` (node name -> count, e.g. {"e2.select": 13}, from the golden trace), or, when not given,
its full N (`kept` None: the node's worst case). So `network_cycles(plan)` is the figure at full
token counts, and `network_cycles(plan, tokens=...)` (`sample_cycles` per sample) the cycles of an
inference that kept those counts.

Throughput model (back to back: inputs offered every cycle, one inference after another, outputs
always taken). Every engine that holds a frame double-buffers it (`cdsl.hw.frame_buffer`): it loads
frame k+1 while it computes frame k, so in the steady state each engine starts a frame every
`node.interval(settings)` cycles at best (its busy cycles plus what its restart costs; a streaming
engine moves one word per cycle), and the network's initiation interval (II) is the largest of
these and of the inputs' words (one per cycle): II = max(max over inputs of words, max over nodes
of interval). The join FIFOs are sized so that no fork ever waits on them back to back: input k
of a join holds `words * (1 + 2 * e)` words, e the engines feeding the join's other inputs that do
not feed input k (each holds at most two frames). A node whose interval depends on the data (the
token selector's kept count) states a bound (`interval_exact = False`), and the report says so.

Folding: a node that can trade area for cycles is `Foldable`, in two dimensions as FINN folds: its
`lanes` (SIMD, input channels per step) and its `pe` (processing elements, output channels computed
at once; `pe_problem` says when a node cannot take a PE). Lanes come from the spec's mapping
annotation (fixed), the `lanes` override, `default_lanes`, or folding; PE is 1 unless folding raises
it (the spec's lanes fix SIMD only, so PE may still grow there). Folding starts every free node at 1
lane (PE 1) and then
- for `target_ii`: gives each foldable node the cheapest (lanes * pe MAC lanes, then fewer PE)
  configuration whose back-to-back interval is at most the target; when some engine (or an input)
  cannot go below the target, the plan falls short (`fold_report` says which and why) and the other
  engines are balanced against the II that one reaches instead (none is made faster than needed);
- for `target_cycles` (latency, after any II folding): moves the slowest node (largest `delay`) that
  can still speed up to its cheapest configuration with a smaller delay, until the predicted cycles
  meet the target or every node is at its smallest delay (the latency is then the bound: it grows
  with every node's delay).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from cdsl.contract import codec
from cdsl.contract.intmodel import IntLayer, IntModel, Setting
from cdsl.hw.registry import UnsupportedModel, load_all, plan_layer
from cdsl.hw.stream_fifo import entries

__all__ = [
    "StreamType", "Node", "Foldable", "Alias", "PlanInput", "PlanOutput", "Buffer", "Register", "NetworkPlan",
    "PlanContext", "plan_network", "fold", "fold_report", "network_cycles", "output_cycles", "initiation_interval", "cycle_report",
    "UnsupportedModel", "instance_name", "token_nodes", "sample_cycles",
]

NodeSettings = Mapping[str, Mapping[str, int]]  # node name -> setting name -> value


@codec.serializable()
@dataclass(frozen=True)
class StreamType:
    """What one stream carries per inference: `words` activations of `bits` bits (signed or not),
    the row-major elements of a tensor of `shape`."""

    bits: int
    signed: bool
    shape: tuple[int, ...]

    @property
    def words(self) -> int:
        return math.prod(self.shape)

    @property
    def range(self) -> tuple[int, int]:
        from cdsl.dsl.ir import int_range

        return int_range(self.bits, self.signed)


class Node(codec.ArrayEq):
    """An engine of the plan (a frozen dataclass, eq=False, registered with `codec.serializable`).

    Fields every node has: `name` (the layer it implements; also its output stream), `inputs`
    (the streams it reads), `in_types`, `out_type`. Its component has a stream input port per
    input (`in_port(k)`), a stream output `o`, and one `In` port per runtime setting, named after
    the setting.
    """

    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType

    def in_port(self, index: int) -> str:
        return "i" if len(self.inputs) == 1 else f"i{index}"

    def component(self):
        """The Amaranth component of this engine."""
        raise NotImplementedError

    def settings(self) -> tuple[Setting, ...]:
        return ()

    def delay(self, settings: Mapping[str, int]) -> int:
        """Cycles from the engine's last input transfer to its last output transfer."""
        raise NotImplementedError

    def delay_tokens(self, settings: Mapping[str, int], tokens: int, kept: int | None = None) -> int:
        """`delay` when the input frame holds `tokens` tokens: a token stream (shape [N, D], one token
        a row) may carry fewer than its N rows when a token selector upstream pruned some; an engine
        whose schedule follows the count overrides this (`tokens` from 1 to N). `kept`: the output
        frame's tokens when they depend on the data (`out_tokens` is None: a token selector's count,
        taken from the golden trace), else None. Default: `delay`."""
        return self.delay(settings)

    def out_tokens(self, tokens: int) -> int | None:
        """Tokens in the output frame given `tokens` in the input frame: the same by default; None
        when the data decides (a token selector; the cycle model then takes the count from the trace)."""
        return tokens

    interval_exact = True  # False when `interval` is a bound (a data-dependent schedule)

    def interval(self, settings: Mapping[str, int]) -> int:
        """Back to back, the fewest cycles between the starts of two inferences in this engine.
        The default is a streaming engine's: one word per cycle, nothing held."""
        return self.out_type.words

    def memory_bits(self) -> int:
        """Bits of frame storage the engine holds (double-buffered frames included)."""
        return 0

    def describe(self) -> str:
        """One line for `cdsl gen`: what the engine is and how it is mapped."""
        return type(self).__name__

    def figures(self, settings: Mapping[str, int]) -> dict:
        """Per-engine figures for the manifest and reports (cycles, widths, memory words...)."""
        return {"delay": self.delay(settings), "interval": self.interval(settings)}


class Foldable:
    """A node whose parallelism can grow to save cycles: `lanes` (SIMD) up to `max_lanes`, `lanes_fixed`
    when the spec or an override chose them (folding leaves them alone), and `pe` (parallel output
    channels), which `pe_problem` allows or refuses."""

    lanes: int
    lanes_fixed: bool
    pe: int

    @property
    def max_lanes(self) -> int:
        raise NotImplementedError

    def with_lanes(self, lanes: int) -> "Node":
        return dataclasses.replace(self, lanes=lanes)  # type: ignore[type-var]

    def with_folding(self, lanes: int, pe: int) -> "Node":
        return dataclasses.replace(self, lanes=lanes, pe=pe)  # type: ignore[type-var]

    def pe_problem(self, pe: int, lanes: int | None = None) -> str | None:
        """Why the node cannot run `pe` output channels at once (None when it can)."""
        return None if pe == 1 else f"{type(self).__name__} runs one output channel at a time (PE 1)"

    def pe_choices(self, lanes: int) -> tuple[int, ...]:
        return (1,)

    def lane_choices(self) -> tuple[int, ...]:
        """The lanes worth trying: for each number of lane groups, the fewest lanes that give it."""
        if self.lanes_fixed:
            return (self.lanes,)
        top = self.max_lanes
        return tuple(sorted({-(-top // g) for g in range(1, top + 1)}))

    def foldings(self) -> list[tuple[int, int]]:
        """Every (lanes, pe) folding can choose, cheapest (lanes * pe) first, then fewer PE."""
        return sorted(((la, pe) for la in self.lane_choices() for pe in self.pe_choices(la)),
                      key=lambda c: (c[0] * c[1], c[1], c[0]))

    def busy_cycles(self, settings: Mapping[str, int]) -> int:
        """Cycles the engine's datapath is busy per inference (what more lanes shorten)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Alias:
    """The layer needs no hardware: its tensor is the stream `stream`."""

    stream: str


@codec.serializable()
@dataclass(frozen=True)
class PlanInput:
    name: str
    type: StreamType


@codec.serializable()
@dataclass(frozen=True)
class PlanOutput:
    name: str  # the model output (a layer name)
    stream: str  # the stream that carries it (the layer itself, or what it aliases)
    type: StreamType


@codec.serializable()
@dataclass(frozen=True)
class Buffer:
    """A FIFO of `depth` words in front of input `index` of node `node`."""

    node: str
    index: int
    depth: int


@codec.serializable()
@dataclass(frozen=True)
class Register:
    """A runtime-setting register at `addr` of the control interface, driving `setting` of `node`."""

    addr: int
    node: str
    setting: Setting

    @property
    def width(self) -> int:
        return max(1, self.setting.hi.bit_length())


@dataclass(frozen=True)
class PlanContext:
    """What a kind's planner sees besides its layer: the streams it reads and the lane choices."""

    in_streams: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    default_lanes: int = 8
    lanes: Mapping[str, int] = field(default_factory=dict)  # per-layer overrides
    folding: bool = False  # a target cycle count was given: free layers start at 1 lane

    def lanes_for(self, layer: str, spec_lanes: int | None) -> tuple[int, bool]:
        """(lanes, fixed) for a layer: the override, then the spec's, then the default (1 when folding)."""
        chosen = self.lanes.get(layer, spec_lanes)
        if chosen is not None:
            return chosen, True
        return (1 if self.folding else self.default_lanes), False


@codec.serializable("network_plan")
@dataclass(frozen=True, eq=False)
class NetworkPlan(codec.ArrayEq):
    name: str
    inputs: tuple[PlanInput, ...]
    outputs: tuple[PlanOutput, ...]
    nodes: tuple[Node, ...]  # topological order
    buffers: tuple[Buffer, ...]
    registers: tuple[Register, ...]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def buffer(self, node: str, index: int) -> Buffer | None:
        for b in self.buffers:
            if b.node == node and b.index == index:
                return b
        return None

    def node_settings(self, settings: NodeSettings | None) -> dict[str, dict[str, int]]:
        """Every node's settings: its declared defaults overridden by `settings` (checked)."""
        given = self._route_settings(settings)
        out: dict[str, dict[str, int]] = {}
        for n in self.nodes:
            declared = {s.name: s for s in n.settings()}
            values = {s.name: s.default for s in declared.values()}
            layer = n.name.split(".", 1)[0]  # what the user names: e1.threshold, not e1.select's
            for name, value in given.pop(n.name, {}).items():
                if name not in declared:
                    raise ValueError(f"engine {n.name!r} has no runtime setting {name!r}")
                values[name] = declared[name].check(layer, value)
            out[n.name] = values
        if given:
            raise ValueError(f"no engine named {sorted(given)[0]!r} in the plan of {self.name!r} "
                             f"(engines: {', '.join(n.name for n in self.nodes)})")
        return out

    def _route_settings(self, settings: NodeSettings | None) -> dict[str, dict[str, int]]:
        """Settings per node. A layer planned as several engines takes its settings under the layer's
        name (as the golden model does: `e2.threshold`): each goes to the layer's one engine
        (`<layer>` or `<layer>.<part>`) that declares it."""
        names = {n.name for n in self.nodes}
        out: dict[str, dict[str, int]] = {}
        for key, items in (settings or {}).items():
            for setting, value in dict(items).items():
                target = key
                if key not in names or setting not in {s.name for s in self.node(key).settings()}:
                    owners = [n.name for n in self.nodes if n.name.startswith(key + ".")
                              and setting in {s.name for s in n.settings()}]
                    if len(owners) == 1:
                        target = owners[0]
                out.setdefault(target, {})[setting] = value
        return out

    # ------------------------------------------------------------ persistence (the manifest's plan)

    def to_json(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        return codec.encode(self, arrays, "plan"), arrays

    @classmethod
    def from_json(cls, obj: dict, arrays: Mapping[str, np.ndarray]) -> "NetworkPlan":
        load_all()  # registers every node type with the codec
        plan = codec.decode(obj, dict(arrays))
        if not isinstance(plan, NetworkPlan):
            raise ValueError("the manifest's plan is not a network plan")
        errors = codec.type_errors(plan)
        if errors:
            raise ValueError(errors[0])
        return plan


# ---------------------------------------------------------------- planning


def stream_type(intmodel: IntModel, tensor: str) -> StreamType:
    qt = intmodel.type_of(tensor)
    return StreamType(qt.bits, qt.signed, tuple(intmodel.shape_of(tensor)))


def plan_network(intmodel: IntModel, *, default_lanes: int = 8, target_cycles: int | None = None,
                 target_ii: int | None = None, lanes: Mapping[str, int] | None = None) -> NetworkPlan:
    """The engines of `intmodel` (see the module docstring for streams, lanes and folding)."""
    from cdsl.hw._checks import check_int

    check_int("default_lanes", default_lanes, lo=1)
    if target_cycles is not None:
        check_int("target_cycles", target_cycles, lo=1)
    if target_ii is not None:
        check_int("target_ii", target_ii, lo=1)
    folding = target_cycles is not None or target_ii is not None
    overrides = dict(lanes or {})
    unknown = sorted(set(overrides) - {lay.name for lay in intmodel.layers})
    if unknown:
        raise UnsupportedModel(f"lanes given for {unknown[0]!r}, which is not a layer of {intmodel.name!r}")
    inputs = tuple(PlanInput(i.name, stream_type(intmodel, i.name)) for i in intmodel.inputs)
    streams: dict[str, str] = {i.name: i.name for i in intmodel.inputs}  # tensor -> the stream carrying it
    types: dict[str, StreamType] = {i.name: i.type for i in inputs}
    nodes: list[Node] = []
    for lay in intmodel.layers:
        in_streams = tuple(streams[n] for n in lay.inputs)
        ctx = PlanContext(in_streams=in_streams, in_types=tuple(types[s] for s in in_streams),
                          default_lanes=default_lanes, lanes=overrides, folding=folding)
        planned = plan_layer(lay, ctx)
        if isinstance(planned, Alias):
            streams[lay.name] = planned.stream
            continue
        group = tuple(planned) if isinstance(planned, (tuple, list)) else (planned,)
        _check_group(lay, group, ctx)
        for node in group:
            nodes.append(node)
            types[node.name] = node.out_type
        streams[lay.name] = lay.name
    if not nodes:
        raise UnsupportedModel(f"{intmodel.name!r} has no layer that needs hardware")
    _check_instance_names(inputs, nodes)
    outputs = tuple(PlanOutput(o, streams[o], types[streams[o]]) for o in intmodel.outputs)
    buffers = join_buffers(inputs, nodes)
    registers = tuple(Register(addr, node, setting) for addr, (node, setting) in enumerate(
        (n.name, s) for n in nodes for s in n.settings()))
    plan = NetworkPlan(intmodel.name, inputs, outputs, tuple(nodes), buffers, registers)
    if folding:
        plan = fold(plan, target_cycles=target_cycles, target_ii=target_ii)
    return plan


def join_buffers(inputs: tuple[PlanInput, ...], nodes: list[Node]) -> tuple[Buffer, ...]:
    """The FIFOs in front of every input of every join, sized for back-to-back inferences (module docstring)."""
    feeders: dict[str, frozenset[str]] = {i.name: frozenset() for i in inputs}  # stream -> engines upstream, itself included
    for n in nodes:
        feeders[n.name] = frozenset({n.name}).union(*(feeders[s] for s in n.inputs))
    out = []
    for n in nodes:
        if len(n.inputs) < 2:
            continue
        for k, (s, t) in enumerate(zip(n.inputs, n.in_types)):
            others = frozenset().union(*(feeders[o] for j, o in enumerate(n.inputs) if j != k))
            out.append(Buffer(n.name, k, t.words * (1 + 2 * len(others - feeders[s]))))
    return tuple(out)


def _check_group(lay: IntLayer, group: tuple[Node, ...], ctx: PlanContext) -> None:
    """A layer's nodes: the last is named after the layer; the others `<layer>.<part>`, each reading
    the layer's inputs or the nodes before it, with the types they carry; every input of the layer read."""
    bad = f"the planner of {lay.kind} returned nodes that do not match layer {lay.name!r}"
    if not group or group[-1].name != lay.name:
        raise AssertionError(f"{bad}: its last node must be named {lay.name!r}")
    known = dict(zip(ctx.in_streams, ctx.in_types))
    read: set[str] = set()
    for node in group:
        if node is not group[-1] and not (node.name.startswith(lay.name + ".") and len(node.name) > len(lay.name) + 1):
            raise AssertionError(f"{bad}: node {node.name!r} is not named {lay.name + '.<part>'!r}")
        if node.name in known:
            raise AssertionError(f"{bad}: two streams are named {node.name!r}")
        if len(node.inputs) != len(node.in_types) or any(known.get(s) != t for s, t in zip(node.inputs, node.in_types)):
            raise AssertionError(f"{bad}: node {node.name!r} reads {list(node.inputs)}, not streams before it of "
                                 "the types it states")
        read.update(node.inputs)
        known[node.name] = node.out_type
    if set(ctx.in_streams) - read:
        raise AssertionError(f"{bad}: no node reads {sorted(set(ctx.in_streams) - read)[0]!r}")


def instance_name(node: str) -> str:
    """The Verilog-safe name of node `node` (instances, probe ports): "e1.qkv" -> "e1__qkv"."""
    return node.replace(".", "__")


def _check_instance_names(inputs: tuple[PlanInput, ...], nodes: list[Node]) -> None:
    seen: dict[str, str] = {}
    for name in [i.name for i in inputs] + [n.name for n in nodes]:
        other = seen.setdefault(instance_name(name), name)
        if other != name:
            raise UnsupportedModel(f"the engines {other!r} and {name!r} would share the hardware name "
                                   f"{instance_name(name)!r}: rename the layer")


def fold(plan: NetworkPlan, *, target_cycles: int | None = None, target_ii: int | None = None) -> NetworkPlan:
    """Choose every free foldable node's (lanes, pe) for the targets (see the module docstring)."""
    defaults = plan.node_settings(None)
    nodes = list(plan.nodes)
    goal = None
    if target_ii is not None:
        foldings = {n.name: [n.with_folding(la, pe) for la, pe in n.foldings()] if isinstance(n, Foldable) else [n]
                    for n in nodes}
        # the II the slowest engine can reach bounds the network's: no engine is made faster than that
        bound = max([i.type.words for i in plan.inputs]
                    + [min(c.interval(defaults[name]) for c in configs) for name, configs in foldings.items()])
        goal = max(target_ii, bound)
        nodes = [next(c for c in foldings[n.name] if c.interval(defaults[n.name]) <= goal) for n in nodes]
    current = dataclasses.replace(plan, nodes=tuple(nodes))
    if target_cycles is None:
        return current
    options: dict[int, list[tuple[int, Node]]] = {}  # node index -> (delay, folding), cheapest first
    for i, n in enumerate(nodes):
        if isinstance(n, Foldable):
            configs = (n.with_folding(la, pe) for la, pe in n.foldings())
            options[i] = [(c.delay(defaults[n.name]), c) for c in configs  # keeping any II reached
                          if goal is None or c.interval(defaults[n.name]) <= max(goal, n.interval(defaults[n.name]))]
    delay = {i: nodes[i].delay(defaults[nodes[i].name]) for i in options}
    while network_cycles(current) > target_cycles:
        moves = []
        for i, configs in options.items():
            faster = next((c for d, c in configs if d < delay[i]), None)
            if faster is not None:
                moves.append((delay[i], -i, faster))
        if not moves:
            break
        _, neg_i, nxt = max(moves, key=lambda mv: (mv[0], mv[1]))
        nodes[-neg_i] = nxt
        delay[-neg_i] = nxt.delay(defaults[nxt.name])
        current = dataclasses.replace(plan, nodes=tuple(nodes))
    return current


def fold_report(plan: NetworkPlan, *, target_cycles: int | None = None, target_ii: int | None = None) -> list[str]:
    """What folding reached against each target, and when it falls short, why (one line each)."""
    lines = []
    if target_ii is not None:
        ii, pace = initiation_interval(plan)
        if ii <= target_ii:
            lines.append(f"--target-ii {target_ii}: reached, II {ii} (set by {pace})")
        else:
            lines.append(f"--target-ii {target_ii} is out of reach: II {ii}, set by {pace}{_why(plan, pace)}")
    if target_cycles is not None:
        cycles = network_cycles(plan)
        if cycles <= target_cycles:
            lines.append(f"--target-cycles {target_cycles}: reached, {cycles} cycles per inference")
        else:
            lines.append(f"--target-cycles {target_cycles} is out of reach: {cycles} cycles per inference with "
                         "every foldable engine at its fastest folding (lanes fixed by the spec stay)")
    return lines


def _why(plan: NetworkPlan, pace: str) -> str:
    if pace.startswith("input "):
        return " (an input's words arrive one per cycle)"
    node = plan.node(pace)
    if not isinstance(node, Foldable):
        return f" ({node.describe()} does not fold)"
    parts = [f"lanes {node.lanes}" + (" fixed by the spec" if node.lanes_fixed else f" of at most {node.max_lanes}")]
    channels = node.out_type.shape[0] if node.out_type.shape else 1
    bigger = [pe for pe in range(node.pe + 1, channels + 1) if channels % pe == 0]
    problem = node.pe_problem(bigger[0]) if bigger else f"PE {node.pe} covers all its output channels"
    parts.append(f"PE {node.pe}" + (f": {problem}" if problem else ""))
    if node.out_type.words >= node.interval(plan.node_settings(None)[node.name]):
        parts.append(f"its {node.out_type.words} outputs leave one per cycle")
    return " (" + "; ".join(parts) + ")"


# ---------------------------------------------------------------- cycle model


Tokens = Mapping[str, int]  # node name -> its output's token count (data-dependent nodes only)


def _token_count(t: StreamType) -> int | None:
    """The tokens a full stream of this type holds: N for tokens [N, D], None for other tensors."""
    return t.shape[0] if len(t.shape) == 2 else None


def _walk(plan: NetworkPlan, settings: NodeSettings | None, tokens: Tokens | None):
    """Per node in plan order: (node, its delay, its input token count or None, whether its output
    count is data-dependent). See "Token streams" in the module docstring."""
    values = plan.node_settings(settings)
    given = dict(tokens or {})
    count: dict[str, int | None] = {i.name: _token_count(i.type) for i in plan.inputs}
    for n in plan.nodes:
        full = _token_count(n.out_type)
        ins = [count[s] for s in n.inputs if count[s] is not None]
        data_dependent = False
        if ins:
            n_in = max(ins)
            out = n.out_tokens(n_in)
            kept = None
            if out is None:
                data_dependent = True
                kept = given.pop(n.name, None)
                if kept is not None and (isinstance(kept, bool) or not 1 <= int(kept) <= (full or 1)):
                    raise ValueError(f"engine {n.name!r}: a token count must be in 1..{full}, got {kept!r}")
                kept = None if kept is None else int(kept)
                out = kept if kept is not None else full
            delay = n.delay_tokens(values[n.name], n_in, kept)
        else:
            n_in, out = None, full
            delay = n.delay(values[n.name])
        count[n.name] = None if full is None else min(out, full)
        yield n, delay, n_in, data_dependent
    if given:
        raise ValueError(f"token counts given for {sorted(given)[0]!r}, which is not an engine whose output count "
                         f"the data decides (those of {plan.name!r}: {', '.join(token_nodes(plan)) or 'none'})")


def token_nodes(plan: NetworkPlan) -> tuple[str, ...]:
    """The engines whose output token count the data decides (a token selector): the keys of `tokens`."""
    return tuple(n.name for n, _, _, dd in _walk(plan, None, None) if dd)


def _last_transfers(plan: NetworkPlan, settings: NodeSettings | None, tokens: Tokens | None = None) -> dict[str, int]:
    """Cycle of the last transfer on every stream (see the module docstring)."""
    from cdsl.hw.stream_fifo import LATENCY as FIFO_LATENCY

    t: dict[str, int] = {i.name: i.type.words - 1 for i in plan.inputs}
    for n, delay, _, _ in _walk(plan, settings, tokens):
        arrive = [t[s] + (FIFO_LATENCY if plan.buffer(n.name, k) else 0) for k, s in enumerate(n.inputs)]
        t[n.name] = max(arrive) + delay
    return t


def output_cycles(plan: NetworkPlan, *, settings: NodeSettings | None = None,
                  tokens: Tokens | None = None) -> dict[str, int]:
    """Per output: cycles from the first input offered to its last word taken, inclusive."""
    t = _last_transfers(plan, settings, tokens)
    return {o.name: t[o.stream] + 1 for o in plan.outputs}


def network_cycles(plan: NetworkPlan, *, settings: NodeSettings | None = None, tokens: Tokens | None = None) -> int:
    """Predicted cycles per inference: first input offered to the last output taken, inclusive
    (`tokens`: the data-dependent engines' token counts; full counts when not given)."""
    return max(output_cycles(plan, settings=settings, tokens=tokens).values())


def sample_cycles(plan: NetworkPlan, counts: Mapping[str, "np.ndarray"], *, samples: int,
                  settings: NodeSettings | None = None) -> np.ndarray:
    """Predicted cycles of each of `samples` inferences, int64 [samples]: `counts` holds, per
    data-dependent engine (`token_nodes`), each sample's token count (from the golden trace)."""
    names = token_nodes(plan)
    missing = [n for n in names if n not in counts]
    if missing:
        raise ValueError(f"no token counts for engine {missing[0]!r}, whose output count the data decides")
    columns = [np.asarray(counts[n], dtype=np.int64).reshape(-1) for n in names]
    if any(len(c) != samples for c in columns):
        raise ValueError(f"token counts: expected {samples} per engine")
    memo: dict[tuple[int, ...], int] = {}
    out = np.empty(samples, dtype=np.int64)
    for s in range(samples):
        key = tuple(int(c[s]) for c in columns)
        if key not in memo:
            memo[key] = network_cycles(plan, settings=settings, tokens=dict(zip(names, key)))
        out[s] = memo[key]
    return out


def initiation_interval(plan: NetworkPlan, *, settings: NodeSettings | None = None) -> tuple[int, str]:
    """Back to back: (cycles between inferences in the steady state, the engine or input that sets it)."""
    values = plan.node_settings(settings)
    paces = [(i.type.words, f"input {i.name}") for i in plan.inputs]
    paces += [(n.interval(values[n.name]), n.name) for n in plan.nodes]
    ii, _ = max(paces, key=lambda p: p[0])
    return ii, next(name for cycles, name in paces if cycles == ii)


def memory_bits(plan: NetworkPlan) -> dict[str, int]:
    """Bits of storage for frames in flight: the engines' frame buffers and the join FIFOs."""
    engines = sum(n.memory_bits() for n in plan.nodes)
    fifos = sum(entries(b.depth) * (plan.node(b.node).in_types[b.index].bits + 1)  # + `last`
                for b in plan.buffers)
    return {"engines": engines, "join_fifos": fifos, "total": engines + fifos}


def cycle_report(plan: NetworkPlan, *, settings: NodeSettings | None = None, tokens: Tokens | None = None) -> dict:
    """The cycle figures of the manifest and the reports (`tokens`: as for `network_cycles`)."""
    values = plan.node_settings(settings)
    ii, pace = initiation_interval(plan, settings=settings)
    delays = {n.name: d for n, d, _, _ in _walk(plan, settings, tokens)}
    return {
        "cycles_per_inference": network_cycles(plan, settings=settings, tokens=tokens),
        "token_nodes": list(token_nodes(plan)),
        "initiation_interval": ii,
        "initiation_interval_exact": all(n.interval_exact for n in plan.nodes),
        "bottleneck": pace,
        "memory_bits": memory_bits(plan),
        "per_output": output_cycles(plan, settings=settings),
        "engines": {n.name: {**n.figures(values[n.name]), "delay": delays[n.name], "interval": n.interval(values[n.name]),
                             "frame_bits": n.memory_bits()} for n in plan.nodes},
    }
