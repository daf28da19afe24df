"""IntModel -> Verilog + manifest (what `cdsl gen` writes).

    result = generate(intmodel, out_dir, default_lanes=8, target_cycles=None, lanes=None)

writes
- `out_dir/network.v`: `amaranth.back.verilog.convert(Network, name="network", emit_src=False)`.
  Deterministic: the same IntModel and options give the same bytes (no source paths, no
  timestamps). Weight and mask ROMs are initialized inside the Verilog: no memory init files.
- `out_dir/manifest.json`: top module name, ports (Verilog names, directions, widths,
  signedness, meaning), the stream protocol, per-engine configuration (kind, shapes, types,
  lanes, steps, accumulator width and range, requant parameters, plane masks), predicted cycles
  per inference (full precision, and for every runtime precision of the bit-serial layers).

`lint(verilog_path)` runs `verilator --lint-only` with the documented WIDTH waivers only
(`LINT_WAIVERS`): Yosys' Verilog relies on context-determined operand widths, which Verilator
reports as WIDTHEXPAND/WIDTHTRUNC though Amaranth already fixed every width.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import stream, wiring

from cdsl.hw.network import Network, precision_port
from cdsl.hw.plan import NetworkPlan, cycle_report, network_cycles, plan_network
from cdsl.contract.intmodel import IntModel

TOP = "network"
MANIFEST_FORMAT = 1
LINT_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC")


@dataclass(frozen=True)
class GenResult:
    verilog_path: Path
    manifest_path: Path
    plan: NetworkPlan
    manifest: dict


def verilog_text(network: Network) -> str:
    return verilog.convert(network, name=TOP, emit_src=False)


def _ports(network: Network) -> list[dict]:
    ports = []
    for name, member in network.signature.members.items():
        direction = "input" if member.flow == wiring.In else "output"
        if member.is_signature and isinstance(member.signature, stream.Signature):
            shape = Shape.cast(member.signature.members["payload"].shape)
            ports.append({"name": name, "kind": "stream", "direction": direction,
                          "payload": f"{name}__payload", "valid": f"{name}__valid", "ready": f"{name}__ready",
                          "width": shape.width, "signed": shape.signed})
        else:
            shape = Shape.cast(member.shape)
            ports.append({"name": name, "kind": "signal", "direction": direction, "width": shape.width,
                          "signed": shape.signed})
    ports += [{"name": "clk", "kind": "clock", "direction": "input", "width": 1, "signed": False},
              {"name": "rst", "kind": "reset", "direction": "input", "width": 1, "signed": False}]
    return ports


def manifest(network: Network) -> dict:
    plan = network.plan
    bitserial = plan.bitserial_engines()
    precisions = {}
    if bitserial:
        top = max(e.w_bits for e in bitserial)
        for p in range(1, top + 1):
            chosen = {e.name: min(p, e.w_bits) for e in bitserial}
            precisions[str(p)] = network_cycles(plan, precisions=chosen)
    return {
        "format": MANIFEST_FORMAT,
        "model": plan.name,
        "top": TOP,
        "ports": _ports(network),
        "protocol": {
            "input": f"{plan.n_in} activations per inference on i, row-major {list(plan.in_shape)}",
            "output": f"{plan.n_out} activations per inference on o, row-major",
            "precision": "precision_<layer>: runtime weight precision of a bit-serial layer in planes; "
                         "0 = full precision",
            "reset": "rst high for at least one cycle before use",
        },
        "input": {"name": plan.in_name, "shape": list(plan.in_shape), "bits": plan.in_bits, "signed": plan.in_signed},
        "output": {"words": plan.n_out, "bits": plan.out_bits, "signed": plan.out_signed},
        "engines": [e.manifest() for e in plan.engines],
        "precision_ports": {e.name: precision_port(e.name) for e in bitserial},
        "cycles": {
            "definition": "first input offered to last output taken, inclusive; one inference, no stalls",
            **cycle_report(plan),
            "by_precision": precisions,
        },
    }


def generate(intmodel: IntModel, out_dir: str | Path, *, default_lanes: int = 8, target_cycles: int | None = None,
             lanes: dict[str, int] | None = None) -> GenResult:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_network(intmodel, default_lanes=default_lanes, target_cycles=target_cycles, lanes=lanes)
    network = Network(plan=plan)
    text = verilog_text(network)
    data = manifest(network)
    vpath = out / "network.v"
    mpath = out / "manifest.json"
    vpath.write_text(text)
    mpath.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return GenResult(verilog_path=vpath, manifest_path=mpath, plan=plan, manifest=data)


def lint(verilog_path: str | Path, *, top: str = TOP) -> subprocess.CompletedProcess:
    """`verilator --lint-only -Wall`-free default lint with the WIDTH waivers; returncode 0 = clean."""
    from cdsl.sim.toolchain import require_toolchain, verilator_env

    tc = require_toolchain()
    cmd = [str(tc.verilator_bin), "--lint-only", *LINT_WAIVERS, "--top-module", top, str(verilog_path)]
    return subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)
