"""`cdsl sweep`: every grid point through train -> export -> gen -> verify -> report, on Ray.

Each point has its own folder `SWEEP_DIR/<point>/`: `spec.cdsl` (the point's spec), `run/` (the run
folder `cdsl run` writes, with `run/report/`), `log.txt` (everything the point's commands printed)
and, once it has finished, `point.json` (its parameters, the hash of its spec and options, and the
figures the sweep compares). A point whose `point.json` matches its spec and options is not run
again. A point runs as two child processes (`cdsl run`, then `cdsl report`), so a failing or
crashing point is recorded (`point.json` with `status: failed` and the error) and the others go on.

Ray runs the points: locally by default (`ray.init(num_cpus=...)`, Ray's documented local mode on
one machine, no set-up), or on a cluster with `--address`. Each point takes one CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FORMAT = 1


def point_key(spec_text: str, options: list[str]) -> str:
    return hashlib.sha256(json.dumps([FORMAT, spec_text, options]).encode()).hexdigest()


def finished(folder: Path, key: str) -> dict | None:
    """The point's record if it finished (either way) with this spec and these options."""
    try:
        rec = json.loads((folder / "point.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return rec if rec.get("key") == key and rec.get("status") == "ok" else None


def run_point(folder: str, spec_text: str, params: dict, run_opts: list[str], report_opts: list[str], key: str,
              cwd: str | None) -> dict:
    """Run one point in child processes (the body of the Ray task); returns its record."""
    folder_p = Path(folder)
    folder_p.mkdir(parents=True, exist_ok=True)
    (folder_p / "spec.cdsl").write_text(spec_text)
    run_dir = folder_p / "run"
    t0 = time.perf_counter()
    rec = {"key": key, "params": params, "status": "failed", "error": None, "summary": None}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cwd = cwd if cwd and Path(cwd).is_dir() else None
    with open(folder_p / "log.txt", "w") as log:
        for step, cmd in (("run", [sys.executable, "-m", "cdsl", "run", str(folder_p / "spec.cdsl"), "-o", str(run_dir),
                                   *run_opts]),
                          ("report", [sys.executable, "-m", "cdsl", "report", str(run_dir), *report_opts])):
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env)
            log.write(done.stdout)
            log.flush()
            if done.returncode != 0:
                lines = [ln for ln in done.stdout.strip().splitlines() if ln.strip()]
                rec["error"] = f"cdsl {step} exited {done.returncode}: {lines[-1] if lines else 'no output'}"
                break
        else:
            from cdsl.report.build import summary

            report = json.loads((run_dir / "report" / "report.json").read_text())
            rec["summary"] = summary(report)
            rec["notes"] = report["notes"]
            rec["status"] = "ok"
    rec["seconds"] = time.perf_counter() - t0
    (folder_p / "point.json").write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    return rec


def pareto(rows: list[dict]) -> list[bool]:
    """Whether each finished point is Pareto-optimal: no other point is at least as good in accuracy
    (higher), cycles, LUTs and energy (lower) and better in one. A figure missing from either point
    is not compared."""
    def better_eq(a, b):
        pairs = [(a["accuracy"], b["accuracy"], 1)] + [(a[k], b[k], -1) for k in ("cycles", "luts", "energy_j")]
        pairs = [(x, y, s) for x, y, s in pairs if x is not None and y is not None]
        return all(s * x >= s * y for x, y, s in pairs), any(s * x > s * y for x, y, s in pairs)

    out = []
    for r in rows:
        if r["summary"] is None:
            out.append(False)
            continue
        dominated = False
        for o in rows:
            if o is r or o["summary"] is None:
                continue
            ge, gt = better_eq(o["summary"], r["summary"])
            if ge and gt:
                dominated = True
                break
        out.append(not dominated)
    return out


def run_sweep(points, out_dir: Path, *, run_opts: list[str], report_opts: list[str], address: str | None,
              cpus: int | None, log) -> list[dict]:
    """Run every point not finished yet on Ray; return every point's record (in grid order)."""
    from cdsl.report.html import si

    out_dir = out_dir.resolve()
    records: dict[int, dict] = {}
    todo = []
    for i, p in enumerate(points):
        folder = out_dir / p.name
        opts = [*run_opts, *(["--lanes", str(p.lanes)] if p.lanes else [])]
        key = point_key(p.spec_text, [*opts, "|", *report_opts])
        if p.error:
            records[i] = {"key": key, "params": p.params, "status": "failed", "error": f"spec refused: {p.error}",
                          "summary": None, "seconds": 0.0}
            log(f"[red]refused[/red] {p.label}: {p.error}")
            continue
        rec = finished(folder, key)
        if rec is not None:
            records[i] = rec
            log(f"[dim]finished before, not rerun[/dim] {p.label} ({folder})")
            continue
        todo.append((i, p, folder, opts, key))
    total = len(points)
    if todo:
        import ray

        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(run_point)
            cwd = os.getcwd()
            futures = {task.remote(str(folder), p.spec_text, p.params, opts, report_opts, key, cwd): (i, p, folder)
                       for i, p, folder, opts, key in todo}
            log(f"{len(todo)} point(s) to run on Ray ({'cluster ' + address if address else 'local'}, "
                f"{int(ray.cluster_resources().get('CPU', 0))} CPUs), {total - len(todo)} already done or refused")
            pending = list(futures)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                i, p, folder = futures[ready[0]]
                try:
                    rec = ray.get(ready[0])
                except Exception as err:  # a worker that died: the point fails, the others go on
                    rec = {"params": p.params, "status": "failed", "error": f"Ray task failed: {err}".splitlines()[0],
                           "summary": None, "seconds": 0.0}
                records[i] = rec
                done = len(records)
                if rec["status"] == "ok":
                    s = rec["summary"]
                    log(f"[{done}/{total}] [green]done[/green] {p.label}: accuracy {100 * s['accuracy']:.2f}%, "
                        f"{s['cycles']:g} cycles, {s['luts'] if s['luts'] is not None else '-'} LUT4, "
                        f"{si(s['energy_j'], 'J')} ({rec['seconds']:.0f} s)")
                else:
                    log(f"[{done}/{total}] [red]failed[/red] {p.label}: {rec['error']} (log: {folder / 'log.txt'})")
        finally:
            ray.shutdown()
    return [records[i] for i in range(total)]


def sweep_figures(points, records: list[dict], optimal: list[bool], axes) -> list[dict]:
    ok = [(p, r, o) for p, r, o in zip(points, records, optimal) if r["summary"] is not None]
    figs = []
    for metric, label, scale in (("cycles", "cycles per inference", 1), ("luts", "LUT4", 1),
                                 ("energy_j", "energy per inference (nJ)", 1e9)):
        have = [(p, r, o) for p, r, o in ok if r["summary"][metric] is not None]
        if not have:
            continue
        series = [{"name": "grid points", "x": [r["summary"][metric] * scale for _, r, _ in have],
                   "y": [100 * r["summary"]["accuracy"] for _, r, _ in have],
                   "labels": [p.label for p, _, _ in have]}]
        front = [(p, r) for p, r, o in have if o]
        series.append({"name": "Pareto-optimal (accuracy, cycles, LUTs, energy)", "marker": "*", "size": 140,
                       "x": [r["summary"][metric] * scale for _, r in front],
                       "y": [100 * r["summary"]["accuracy"] for _, r in front], "labels": []})
        figs.append({"id": f"pareto_{metric}", "title": f"Accuracy vs {label}", "kind": "scatter",
                     "x_label": label, "y_label": "golden accuracy (%), RTL bit-exact", "series": series})
    for axis in axes:
        if axis.name not in ("bits", "sparsity", "adc", "T", "keep") or len(axis.values) < 2:
            continue
        others = [a for a in axes if a is not axis]
        groups: dict[str, list] = {}
        for p, r, _ in ok:
            tag = ", ".join(f"{a.key}={p.params[a.key]}" for a in others) or "all"
            groups.setdefault(tag, []).append((p.params[axis.key], 100 * r["summary"]["accuracy"]))
        figs.append({"id": f"accuracy_vs_{axis.key}", "title": f"Accuracy vs {axis.key}", "kind": "line",
                     "x_label": axis.key, "y_label": "golden accuracy (%), RTL bit-exact",
                     "series": [{"name": tag, "x": [v for v, _ in sorted(pts)], "y": [a for _, a in sorted(pts)]}
                                for tag, pts in groups.items()]})
    return figs


def write_sweep(points, records, axes, out_dir: Path, title: str) -> tuple[Path, Path, list[bool]]:
    from cdsl.report.html import si, table, write

    optimal = pareto(records)
    rows, classes = [], []
    for p, r, o in zip(points, records, optimal):
        s = r["summary"]
        if s is None:
            rows.append([p.label, "failed", "-", "-", "-", "-", "-", "-", "-", r.get("error") or ""])
            classes.append("")
            continue
        exact = f"{s['bit_exact']}/{s['rtl_samples']}" if s.get("rtl_samples") else "-"
        rows.append([p.label, "Pareto" if o else "", f"{100 * s['accuracy']:.2f}%", exact, f"{s['cycles']:g}",
                     s["luts"] if s["luts"] is not None else "-", s["ffs"] if s["ffs"] is not None else "-",
                     f"{s['fmax_mhz']:.1f}" if s["fmax_mhz"] else "-", si(s["energy_j"], "J"), p.name])
        classes.append("pareto" if o else "")
    sections = [("Points", table(["point", "Pareto", "accuracy (golden)", "RTL bit-exact", "cycles", "LUT4", "FF", "fmax MHz",
                                  "energy / inference", "folder or error"], rows, row_class=classes)
                 + "<p class=note>Pareto-optimal: no other point has at least the accuracy and at most the cycles, "
                   "LUTs and energy, and is better in one. Each point's own report: &lt;folder&gt;/run/report/"
                   "report.html.</p>")]
    figs = sweep_figures(points, records, optimal, axes)
    data = {"format": FORMAT, "axes": {a.key: list(a.values) for a in axes},
            "points": [{"name": p.name, "params": p.params, "pareto": o, **r}
                       for p, r, o in zip(points, records, optimal)]}
    h, j = write(out_dir, "sweep", title, sections, figs, data)
    return h, j, optimal
