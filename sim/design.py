"""A generated design as `cdsl sim` and `cdsl verify` take it: `network.sv` plus `manifest.json`, checked.

    design = Design.load(run_dir / "rtl")       # DesignError (file: field: what is wrong) otherwise
    design.check_intmodel(intmodel)              # the design was generated from this integer model
    design.plan                                  # the plan, read back from the manifest (never re-planned)
    design.verilog, design.sha256                # the exact text that is simulated, and its hash

Checks on load: the manifest parses, has this cdsl's format, follows its schema
(`cdsl.hw.generate.DesignManifest`) and its digest (nothing edited since `cdsl gen`); `network.sv` exists and its SHA-256
is the one the manifest recorded (a hand-edited `network.sv` is refused); the plan decodes; the
Verilog module `network` declares exactly the ports the plan implies, with the same widths, so the
black box that stands in for it in the harness (`Design.black_box`) cannot silently truncate.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cdsl.contract.intmodel import IntModel
from cdsl.contract.schema import first_error
from cdsl.hw.generate import (MANIFEST_FILE, MANIFEST_FORMAT, TOP, VERILOG_FILE, DesignManifest, manifest_digest,
                              plan_fields, plan_from_options, ports, target_reached)
from cdsl.hw.network import network_signature
from cdsl.hw.plan import NetworkPlan
from cdsl.sim.harness import BlackBox

__all__ = ["Design", "DesignError", "verilog_ports"]


class DesignError(ValueError):
    """The generated design is missing, inconsistent or edited; the message names the file and field."""


_PORT_DECL = re.compile(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?\\?([A-Za-z_][\w$]*)\s*;", re.M)


def verilog_ports(text: str, module: str) -> dict[str, tuple[str, int]]:
    """{port: (direction, width)} declared in `module` of Verilog text written by Yosys."""
    head = re.search(r"^\s*module\s+\\?" + re.escape(module) + r"\s*\(", text, re.M)
    if head is None:
        return {}
    end = text.find("endmodule", head.end())
    body = text[head.end():end if end >= 0 else len(text)]
    return {name: (direction, int(msb) + 1 if msb else 1)
            for direction, msb, name in _PORT_DECL.findall(body)}


@dataclass(frozen=True)
class Design:
    folder: Path
    manifest: dict
    plan: NetworkPlan
    verilog: str
    sha256: str

    @property
    def verilog_path(self) -> Path:
        return self.folder / VERILOG_FILE

    @property
    def top(self) -> str:
        return self.manifest.get("top", TOP)

    @classmethod
    def load(cls, folder: str | Path) -> "Design":
        folder = Path(folder)
        mpath, vpath = folder / MANIFEST_FILE, folder / VERILOG_FILE
        for path in (mpath, vpath):
            if not path.is_file():
                raise DesignError(f"{path}: missing (generate the design with `cdsl gen`)")
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DesignError(f"{mpath}: not a readable JSON manifest ({err})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise DesignError(f"{mpath}: format: expected {MANIFEST_FORMAT}, found {found!r} (generate it again)")
        try:
            DesignManifest.model_validate(manifest)
        except ValueError as err:
            raise DesignError(f"{mpath}: {first_error(err)}") from None
        if manifest_digest(manifest) != manifest["digest"]:
            raise DesignError(f"{mpath}: digest: the manifest was changed after `cdsl gen` (generate it again)")
        try:
            raw = vpath.read_bytes()
        except OSError as err:
            raise DesignError(f"{vpath}: cannot be read ({err})") from None
        digest = hashlib.sha256(raw).hexdigest()
        recorded = (manifest.get("verilog") or {}).get("sha256")
        if digest != recorded:
            raise DesignError(f"{vpath}: SHA-256 {digest[:16]}... does not match the manifest's verilog.sha256 "
                              f"{str(recorded)[:16]}...: the Verilog was changed after `cdsl gen` (generate again)")
        text = raw.decode()  # the bytes `cdsl gen` wrote (their hash matched): UTF-8
        try:
            arrays = {k: np.array(v["data"], dtype=v["dtype"]).reshape(v["shape"])
                      for k, v in manifest["plan_arrays"].items()}
            plan = NetworkPlan.from_json(manifest["plan"], arrays)
            derived = plan_fields(plan)
        except Exception as err:  # noqa: BLE001 - whatever a damaged plan breaks, the file is at fault
            raise DesignError(f"{mpath}: plan: cannot be read back ({type(err).__name__}: {err})") from None
        for key, value in derived.items():
            if manifest[key] != value:
                raise DesignError(f"{mpath}: {key}: does not follow from the manifest's plan (generate it again)")
        if manifest["options"]["target_reached"] != target_reached(plan, manifest["options"]):
            raise DesignError(f"{mpath}: options.target_reached: does not follow from the plan's cycles")
        design = cls(folder, manifest, plan, text, digest)
        design._check_ports()
        return design

    def black_box(self) -> BlackBox:
        """A component standing for the Verilog module, with the ports the plan implies."""
        return BlackBox(module=self.top, signature=network_signature(self.plan))

    def _check_ports(self) -> None:
        declared = verilog_ports(self.verilog, self.top)
        implied = {p["name"]: (p["direction"], p["width"]) for p in ports(network_signature(self.plan))}
        if declared != implied:
            diff = sorted(set(declared.items()) ^ set(implied.items()))
            raise DesignError(f"{self.verilog_path}: the ports of module {self.top!r} differ from those of the "
                              f"manifest's plan (name, (direction, width)): {diff[:4]}")

    def check_intmodel(self, intmodel: IntModel) -> None:
        """Refuse a design generated from another integer model than `intmodel`, or whose recorded plan
        is not the one `intmodel` and the recorded options give (the plan is not used to simulate, but
        it names what the Verilog holds: its cycle model, registers and engines)."""
        where = self.folder / MANIFEST_FILE
        if self.manifest.get("intmodel_sha256") != intmodel.digest():
            raise DesignError(f"{where}: intmodel_sha256: the design was generated from "
                              f"another integer model than {intmodel.name!r} (generate it again with `cdsl gen`)")
        opts = self.manifest["options"]
        try:
            planned = plan_from_options(intmodel, opts)
        except Exception as err:  # noqa: BLE001 - options the planner refuses are the file's fault
            raise DesignError(f"{where}: options: not options this integer model can be planned with "
                              f"({type(err).__name__}: {err})") from None
        if planned != self.plan:
            raise DesignError(f"{where}: plan: not the plan of {intmodel.name!r} with the recorded options "
                              "(generate it again with `cdsl gen`)")
