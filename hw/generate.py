"""IntModel -> the generated design: `network.sv` and `manifest.json` (what `cdsl gen` writes, and what
`cdsl sim` and `cdsl verify` simulate and check, unchanged).

    result = generate(intmodel, out_dir, default_lanes=8, target_cycles=None, target_ii=None, lanes=None)

writes, into a temporary folder renamed to `out_dir` when complete:
- `network.sv`: the Network as Yosys writes it from Amaranth (`cdsl.hw.verilog_text`: SystemVerilog's
  `always_comb`/`always_ff`, so that every simulator starts it from its reset values).
  Deterministic: the same IntModel and options give the same bytes (no source paths, no
  timestamps). Weight and mask ROMs are initialized inside the Verilog.
- `manifest.json` (schema `DesignManifest`, sealed by its own `digest`): the SHA-256 of `network.sv`
  and of the IntModel it was generated from, the
  options, the ports (Verilog names, directions, widths), the stream protocol, the runtime-setting
  registers, a summary per engine, the cycle model's figures (latency, and back to back the
  initiation interval, the engine that sets it, and the memory the frames in flight take; each
  engine's lanes and PE), and the whole plan (`plan`, its
  arrays inlined as `plan_arrays`), from which `cdsl.sim` rebuilds the harness and the cycle model
  without planning again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import numpy as np
from amaranth.hdl import Value
from amaranth.lib import wiring
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cdsl.contract.intmodel import IntModel
from cdsl.files import staged
from cdsl.hw.network import Network, network_signature
from cdsl.hw.plan import NetworkPlan, cycle_report, initiation_interval, network_cycles, plan_network
from cdsl.hw.verilog_text import verilog_text

TOP = "network"
MANIFEST_FORMAT = 5
VERILOG_FILE = "network.sv"
MANIFEST_FILE = "manifest.json"
_OURS = {VERILOG_FILE, MANIFEST_FILE}
_SWEEP_LIMIT = 32  # a register's cycles are listed per value when it has at most this many values


Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _VerilogJ(_Strict):
    file: Literal["network.sv"]
    sha256: Sha256


class _PortJ(_Strict):
    name: str
    direction: Literal["input", "output"]
    width: Annotated[int, Field(ge=1, strict=True)]


class _TensorJ(_Strict):
    name: str
    shape: list[Annotated[int, Field(ge=1, strict=True)]]
    bits: Annotated[int, Field(ge=1, strict=True)]
    signed: bool


class _ArrayJ(_Strict):
    dtype: Literal["int64", "int32", "int16", "int8", "uint8", "bool", "float64"]
    shape: list[Count]
    data: list[Any]


class _OptionsJ(_Strict):
    default_lanes: Annotated[int, Field(ge=1, strict=True)]
    target_cycles: Annotated[int, Field(ge=1, strict=True)] | None
    target_ii: Annotated[int, Field(ge=1, strict=True)] | None
    lanes: dict[str, Annotated[int, Field(ge=1, strict=True)]]
    target_reached: bool | None


class _MemoryJ(_Strict):
    engines: Count
    join_fifos: Count
    total: Count


class _CyclesJ(_Strict):
    definition: str
    cycles_per_inference: Annotated[int, Field(ge=1, strict=True)]
    token_nodes: list[str]  # engines whose output token count the data decides (cycles at full counts)
    ii_definition: str
    initiation_interval: Annotated[int, Field(ge=1, strict=True)]
    initiation_interval_exact: bool
    bottleneck: str
    memory_bits: _MemoryJ
    per_output: dict[str, Annotated[int, Field(ge=1, strict=True)]]
    engines: dict[str, dict[str, Any]]
    by_register: dict[str, dict[str, int]]


class DesignManifest(_Strict):
    """The schema of rtl/manifest.json, checked by `cdsl.sim.design.Design.load` before its digest."""

    format: Literal[5]
    model: str
    top: str
    verilog: _VerilogJ
    intmodel_sha256: Sha256
    options: _OptionsJ
    ports: list[_PortJ]
    protocol: dict[str, str]
    inputs: list[_TensorJ]
    outputs: list[_TensorJ]
    registers: list[dict[str, Any]]
    engines: list[dict[str, Any]]
    cycles: _CyclesJ
    plan: dict[str, Any]
    plan_arrays: dict[str, _ArrayJ]
    digest: Sha256


def manifest_digest(data: Mapping[str, Any]) -> str:
    """SHA-256 of the manifest without its `digest` (canonical JSON): an edited manifest is refused."""
    return sha256_text(json.dumps({k: v for k, v in data.items() if k != "digest"}, sort_keys=True))


@dataclass(frozen=True)
class GenResult:
    verilog_path: Path
    manifest_path: Path
    plan: NetworkPlan
    manifest: dict


def network_text(network: Network) -> str:
    return verilog_text(network, name=TOP)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ports(signature: wiring.Signature) -> list[dict]:
    """Every Verilog port of a component with this signature: name (`<port>__<member>`), direction, width."""
    out = [{"name": "__".join(str(p) for p in path), "direction": "input" if member.flow == wiring.In else "output",
            "width": len(Value.cast(value))}
           for path, member, value in signature.flatten(signature.create())]
    return out + [{"name": "clk", "direction": "input", "width": 1}, {"name": "rst", "direction": "input", "width": 1}]


def register_table(plan: NetworkPlan) -> list[dict]:
    return [{"addr": r.addr, "engine": r.node, "setting": r.setting.name, "width": r.width, "lo": r.setting.lo,
             "hi": r.setting.hi, "default": r.setting.default, "doc": r.setting.doc} for r in plan.registers]


def register_sweeps(plan: NetworkPlan) -> dict[str, dict[str, int]]:
    """Cycles per inference with one register at each of its values (the others at their defaults)."""
    out = {}
    for r in plan.registers:
        s = r.setting
        if s.hi - s.lo < _SWEEP_LIMIT:
            out[f"{r.node}.{s.name}"] = {str(v): network_cycles(plan, settings={r.node: {s.name: v}})
                                         for v in range(s.lo, s.hi + 1)}
    return out


def inline_arrays(arrays: Mapping[str, np.ndarray]) -> dict:
    return {k: {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.reshape(-1).tolist()}
            for k, a in sorted(arrays.items())}


def plan_fields(plan: NetworkPlan) -> dict:
    """The manifest's fields that follow from the plan alone (as JSON reads them back): the plan
    itself, the ports, protocol, inputs, outputs, registers, engines and cycle figures.
    `cdsl.sim.design.Design.load` recomputes them and refuses a manifest that disagrees."""
    plan_json, arrays = plan.to_json()
    data = {
        "model": plan.name,
        "top": TOP,
        "ports": ports(network_signature(plan)),
        "protocol": {
            "streams": "i_<input>, o_<output>: valid/ready streams, one activation per transfer, row-major; "
                       "payload = data (low bits) and last (top bit, on an inference's final word)",
            "ctrl": "register writes {addr, data} before a run; they take effect from the next inference",
            "probes": "p_<engine>: an engine's output payload and fire (valid & ready), for debugging",
            "reset": "rst high for at least one cycle before use",
        },
        "inputs": [{"name": i.name, "shape": list(i.type.shape), "bits": i.type.bits, "signed": i.type.signed}
                   for i in plan.inputs],
        "outputs": [{"name": o.name, "shape": list(o.type.shape), "bits": o.type.bits, "signed": o.type.signed}
                    for o in plan.outputs],
        "registers": register_table(plan),
        "engines": [{"name": n.name, "inputs": list(n.inputs), "engine": n.describe()} for n in plan.nodes],
        "cycles": {
            "definition": "first input offered to last output taken, inclusive; one inference, no stalls; "
                          "token streams at their full counts (token_nodes: engines whose count the data decides)",
            "ii_definition": "back to back (inputs always offered, outputs always taken): cycles between the "
                             "ends of consecutive inferences in the steady state (a bound when not exact)",
            **cycle_report(plan),
            "by_register": register_sweeps(plan),
        },
        "plan": plan_json,
        "plan_arrays": inline_arrays(arrays),
    }
    return json.loads(json.dumps(data))  # as it is read back (tuples as lists)


def manifest(intmodel: IntModel, plan: NetworkPlan, text: str, options: dict) -> dict:
    data = {
        "format": MANIFEST_FORMAT,
        "verilog": {"file": VERILOG_FILE, "sha256": sha256_text(text)},
        "intmodel_sha256": intmodel.digest(),
        "options": options,
        **plan_fields(plan),
    }
    data["digest"] = manifest_digest(data)
    return data


def plan_from_options(intmodel: IntModel, options: Mapping[str, Any]) -> NetworkPlan:
    """The plan `generate` makes with these (recorded) options."""
    return plan_network(intmodel, default_lanes=options["default_lanes"], target_cycles=options["target_cycles"],
                        target_ii=options["target_ii"], lanes=options["lanes"])


def target_reached(plan: NetworkPlan, options: Mapping[str, Any]) -> bool | None:
    """Whether the plan meets every target given (None: no target)."""
    cycles, ii = options.get("target_cycles"), options.get("target_ii")
    if cycles is None and ii is None:
        return None
    return ((cycles is None or network_cycles(plan) <= cycles)
            and (ii is None or initiation_interval(plan)[0] <= ii))


def generate(intmodel: IntModel, out_dir: str | Path, *, default_lanes: int = 8, target_cycles: int | None = None,
             target_ii: int | None = None, lanes: Mapping[str, int] | None = None) -> GenResult:
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or set(p.name for p in out.iterdir()) - _OURS):
        raise FileExistsError(f"{out} exists and holds other files than {', '.join(sorted(_OURS))}: "
                              "choose an empty or new folder")
    options = {"default_lanes": default_lanes, "target_cycles": target_cycles, "target_ii": target_ii,
               "lanes": dict(lanes or {})}
    plan = plan_from_options(intmodel, options)
    network = Network(plan=plan)
    text = network_text(network)
    options["target_reached"] = target_reached(plan, options)
    data = manifest(intmodel, plan, text, options)
    with staged(out) as tmp:
        (tmp / VERILOG_FILE).write_bytes(text.encode())  # the bytes its sha256 names
        (tmp / MANIFEST_FILE).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return GenResult(verilog_path=out / VERILOG_FILE, manifest_path=out / MANIFEST_FILE, plan=plan, manifest=data)
