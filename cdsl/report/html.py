"""Figures as data, drawn with matplotlib into one self-contained HTML file (images embedded as PNG).

A figure is a dict: {"id", "title", "kind": "bar" | "stacked" | "line" | "scatter", "x_label",
"y_label", "categories" (bar/stacked), "series": [{"name", "x" or "values", "y", ...}]}. The same
dicts are written to the JSON file beside the HTML, so a script reads exactly what the plots show.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

COLORS = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]


def draw(fig: dict) -> bytes:
    """One figure as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    kind = fig["kind"]
    if kind in ("bar", "stacked"):
        cats = fig["categories"]
        xs = range(len(cats))
        bottom = [0.0] * len(cats)
        n = len(fig["series"])
        width = 0.8 if kind == "stacked" else 0.8 / max(n, 1)
        for i, s in enumerate(fig["series"]):
            vals = [v or 0 for v in s["values"]]
            if kind == "stacked":
                ax.bar(xs, vals, width, bottom=bottom, label=s["name"], color=COLORS[i % len(COLORS)])
                bottom = [b + v for b, v in zip(bottom, vals)]
            else:
                ax.bar([x + (i - (n - 1) / 2) * width for x in xs], vals, width, label=s["name"],
                       color=COLORS[i % len(COLORS)])
        ax.set_xticks(list(xs), cats, rotation=20 if len(cats) > 6 else 0)
        if fig.get("log"):
            ax.set_yscale("log")
    elif kind == "line":
        right = None
        for i, s in enumerate(fig["series"]):
            target = ax
            if s.get("axis") == "right":
                right = right or ax.twinx()
                target = right
                right.set_ylabel(s["name"])
            target.plot(s["x"], s["y"], marker="os^Dv"[i % 5], linestyle=("-", "--", ":", "-.")[i % 4],
                        label=s["name"], color=COLORS[i % len(COLORS)])
        if right is not None:
            lines = ax.get_legend_handles_labels()
            more = right.get_legend_handles_labels()
            ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)
    elif kind == "scatter":
        for i, s in enumerate(fig["series"]):
            ax.scatter(s["x"], s["y"], s=s.get("size", 40), label=s["name"], color=COLORS[i % len(COLORS)],
                       marker=s.get("marker", "o"), zorder=3)
            for x, y, text in zip(s["x"], s["y"], s.get("labels", [])):
                ax.annotate(text, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
            if s.get("connect"):
                pts = sorted(zip(s["x"], s["y"]))
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[i % len(COLORS)], lw=1, zorder=2)
        if fig.get("log_x"):
            ax.set_xscale("log")
    ax.set_title(fig["title"], fontsize=11)
    ax.set_xlabel(fig.get("x_label", ""))
    ax.set_ylabel(fig.get("y_label", ""))
    ax.grid(True, alpha=0.3, zorder=0)
    if kind != "line" and len(fig["series"]) > 1:
        ax.legend(fontsize=8)
    elif kind == "line" and len(fig["series"]) > 1 and not any(s.get("axis") == "right" for s in fig["series"]):
        ax.legend(fontsize=8)
    f.tight_layout()
    buf = io.BytesIO()
    f.savefig(buf, format="png")
    plt.close(f)
    return buf.getvalue()


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; } .figs figure { margin: 0; } .figs img { width: 530px; border: 1px solid #ddd; }
.note { color: #555; font-size: 0.85em; } tr.pareto td { font-weight: bold; }
"""


def table(headers: list[str], rows: list[list], *, row_class: list[str] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in headers) + "</tr>"]
    for i, r in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def page(title: str, sections: list[tuple[str, str]], figures: list[dict]) -> str:
    """The HTML document: sections (heading, HTML body) then every figure embedded."""
    imgs = "".join(f'<figure><img alt="{html.escape(f["title"])}" id="fig-{html.escape(f["id"])}" '
                   f'src="data:image/png;base64,{base64.b64encode(draw(f)).decode()}"></figure>' for f in figures)
    body = "".join(f"<h2>{html.escape(h)}</h2>{b}" for h, b in sections if b)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<h2>Figures</h2><div class=\"figs\">{imgs}</div>{body}</body></html>\n")


def write(out_dir: Path, stem: str, title: str, sections: list[tuple[str, str]], figures: list[dict],
          data: dict) -> tuple[Path, Path]:
    """`<stem>.html` and `<stem>.json` (the figures and the data behind the tables) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    h = out_dir / f"{stem}.html"
    j = out_dir / f"{stem}.json"
    h.write_text(page(title, sections, figures))
    j.write_text(json.dumps({**data, "figures": figures}, indent=1, sort_keys=True, default=str) + "\n")
    return h, j


def si(x: float | None, unit: str) -> str:
    """1.23e-9 J -> '1.23 nJ'."""
    if x is None:
        return "-"
    if x == 0:
        return f"0 {unit}"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"),
                           (1e-12, "p"), (1e-15, "f"), (1e-18, "a")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"
