"""A run's report dict (`cdsl.report.build`) as figures, HTML sections and console tables."""

from __future__ import annotations

from pathlib import Path

from cdsl.report.html import si, table, write
from cdsl.report.roles import ROLES


def _int(x) -> str:
    return "-" if x is None else f"{x:g}"


def figures(report: dict) -> list[dict]:
    engines = [e["name"] for e in report["engines"]]
    figs = []
    acc_p = report.get("accuracy_vs_precision")
    if acc_p:
        figs.append({"id": "accuracy_vs_bits", "title": "Accuracy and cycles vs runtime weight precision",
                     "kind": "line", "x_label": "bits of the bit-serial layers", "y_label": "golden accuracy (%)",
                     "series": [{"name": "golden accuracy (%)", "x": [r["bits"] for r in acc_p],
                                 "y": [100 * r["golden_accuracy"] for r in acc_p]},
                                {"name": "cycles per inference", "axis": "right", "x": [r["bits"] for r in acc_p],
                                 "y": [r["cycles"] for r in acc_p]}]})
    per = report["cycles"]["per_engine"]
    figs.append({"id": "cycles_per_layer", "title": "Cycles per layer (after its last input)", "kind": "bar",
                 "x_label": "engine", "y_label": "cycles", "categories": engines,
                 "series": [{"name": "delay", "values": [per[e].get("delay") for e in engines]}]})
    syn = report.get("synthesis")
    if syn:
        cats = [*engines, "(top)"]
        figs.append({"id": "luts_per_layer", "title": f"LUTs per layer and sub-block ({syn['target']})",
                     "kind": "stacked", "x_label": "engine", "y_label": "LUT4", "categories": cats,
                     "series": [{"name": r, "values": [syn["engines"][e][r]["luts"] for e in cats]} for r in ROLES]})
    layers = report["energy"]["layers"]
    if layers:
        parts = [("MACs", "mac_j"), ("weight reads", "weight_read_j"), ("activation reads", "act_read_j"),
                 ("ADC conversions", "adc_j"), ("AQFP switching (cooled)", "aqfp_j")]
        parts = [(n, k) for n, k in parts if any(lay[k] for lay in layers)]
        figs.append({"id": "energy_breakdown", "title": "Energy per inference by layer (pJ)", "kind": "stacked",
                     "x_label": "layer", "y_label": "pJ", "categories": [lay["name"] for lay in layers],
                     "series": [{"name": n, "values": [lay[k] * 1e12 for lay in layers]} for n, k in parts]})
    return figs


def sections(report: dict) -> list[tuple[str, str]]:
    out = []
    acc = report["accuracy"]
    cyc = report["cycles"]
    tim = report["timing"]
    syn = report.get("synthesis")
    summary = [["model", report["model"]], ["network.sv sha256", report["verilog_sha256"][:16]],
               ["accuracy float / compressed / golden",
                f"{100 * acc['float']:.2f}% / {100 * acc['compressed']:.2f}% / {100 * acc['golden']:.2f}%"],
               ["RTL accuracy (bit-exact)", f"{100 * acc['rtl']:.2f}% ({acc['bit_exact']}/{acc['rtl_samples']})"
                if "rtl" in acc else "not verified"],
               ["cycles per inference simulated / modelled", f"{_int(cyc['simulated'])} / {cyc['predicted']}"],
               ["fmax", f"{tim['fmax_mhz']:.1f} MHz on {tim['device']}" if tim["fmax_mhz"] else "-"],
               ["latency / throughput", f"{tim['latency_us']:.1f} us / {tim['throughput_per_s']:,.0f} inferences/s"
                if tim.get("latency_us") else "-"],
               ["LUT4 / FF / carry / BRAM / memory bits",
                " / ".join(str(syn["total"][k]) for k in ("luts", "ffs", "carries", "brams", "memory_bits"))
                if syn else "-"],
               ["energy per inference", si(report["energy"]["total_j"], "J")]]
    out.append(("Summary", table(["figure", "value"], summary)))
    if syn:
        rows = []
        for engine, roles in syn["engines"].items():
            first = True
            for role in [*ROLES, "total"]:
                c = roles[role]
                if role != "total" and not any(c.values()):
                    continue
                rows.append([engine if first else "", role, c["luts"], c["ffs"], c["carries"], c["brams"],
                             c["memory_bits"], c.get("dsps", 0)])
                first = False
        rows.append(["all", "total", *(syn["total"].get(k, 0) for k in ("luts", "ffs", "carries", "brams", "memory_bits",
                                                                         "dsps"))])
        out.append((f"Synthesis ({syn['tool']})",
                    table(["engine", "sub-block", "LUT4", "flip-flops", "carry", "block RAM", "memory bits", "DSP"], rows)
                    + f"<p class=note>Hierarchy {syn['hierarchy']}. Memory bits are the RTL's memories "
                      "(weight ROMs, frame buffers) before mapping; block RAMs are those Yosys mapped them to. "
                      "Control is the window generator, the engine's own sequencing and its weight ROMs; (top) "
                      "is the register bank and the FIFOs and forks between engines.</p>"))
    if tim["fmax_mhz"]:
        util = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in tim.get("utilization", {}).items() if v[0])
        out.append(("Timing", table(["figure", "value"], [
            ["device", tim["device"]], ["tool", tim["tool"]], ["fmax (routed)", f"{tim['fmax_mhz']:.2f} MHz"],
            ["utilization", util], ["latency", f"{tim['latency_us']:.2f} us"],
            ["throughput", f"{tim['throughput_per_s']:,.0f} inferences/s"], ["basis", tim["basis"]],
            ["throughput back to back", f"{tim['throughput_back_to_back_per_s']:,.0f} inferences/s (an inference every "
             f"{cyc['initiation_interval']} cycles, the modelled initiation interval)"]])))
    cyc_rows = [[e, *(v.get(k, "-") for k in ("delay", "interval", "mac_cycles", "lanes", "pe"))]
                for e, v in cyc["per_engine"].items()]
    out.append(("Cycles", table(["engine", "cycles after its last input", "interval back to back", "MAC cycles", "lanes",
                                 "PE"], cyc_rows)
                + f"<p class=note>{cyc['definition']}</p>"))
    en = report["energy"]
    e_rows = [[lay["name"], lay["mapping"], f"{lay['macs']:,}", si(lay["mac_j"], "J"), si(lay["weight_read_j"], "J"),
               si(lay["act_read_j"], "J"), f"{lay['adc_conversions']:,}", si(lay["adc_j"], "J"), si(lay["aqfp_j"], "J"),
               si(lay["total_j"], "J")] for lay in en["layers"]]
    tables = "".join(f"<li>{k}: {en['table_names'][k]} ({v})</li>" for k, v in en["tables"].items())
    out.append(("Energy per inference", table(["layer", "on", "MACs", "MAC energy", "weight reads", "activation reads",
                                                "ADC conversions", "ADC", "AQFP", "total"], e_rows)
                + f"<p class=note>Counted: {en['counted']}. Tables:</p><ul class=note>{tables}</ul>"))
    if report.get("accuracy_vs_precision"):
        out.append(("Accuracy vs runtime precision", table(
            ["bits", "golden accuracy", "cycles (modelled)"],
            [[r["bits"], f"{100 * r['golden_accuracy']:.2f}%", r["cycles"]] for r in report["accuracy_vs_precision"]])))
    out.append(("Notes", "<ul class=note>" + "".join(f"<li>{n}</li>" for n in report["notes"]) + "</ul>"))
    return out


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    return write(out_dir, "report", f"cdsl report: {report['model']}", sections(report), figures(report), report)
