"""The suite report's content, built once from results.json as a list of blocks that report_md.py and
report_html.py render (so the two reports always say the same thing).

Blocks: ("h1" | "h2" | "h3", text), ("p", text), ("list", [text]), ("table", header, rows), ("img", name, caption).
`write_reports(results, out_dir)` writes report.md (+ plots/*.png beside it) and a self-contained report.html.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

BETTER = {True: "higher", False: "lower", None: "closer to ideal"}


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def fmt_ci(m: dict | None) -> str:
    """'0.312 [0.28, 0.35]'; the value alone when there is no interval."""
    if not m or m.get("value") is None:
        return "n/a"
    if m.get("low") is None:
        return fmt(m["value"])
    return f"{fmt(m['value'])} [{fmt(m['low'])}, {fmt(m['high'])}]"


def reading(d: dict) -> str:
    """What a difference's interval supports, in words."""
    if d.get("low") is None or d.get("value") is None:
        return "no interval"
    if d["low"] <= 0 <= d["high"]:
        return "no clear difference (CI contains 0)"
    up = d["value"] > 0
    # No direction, or no ideal value (perplexity: very low means repetitive text): state the direction only.
    if d.get("higher_is_better") is None or d.get("ideal", 0) is None:
        return f"{'higher' if up else 'lower'} (CI excludes 0)"
    good = up == d["higher_is_better"]
    return f"{'higher' if up else 'lower'}: {'better' if good else 'worse'} (CI excludes 0)"


def _data_line(data: dict) -> str:
    if data.get("hub_id"):
        where = f"Hub dataset `{data['hub_id']}` (revision {data.get('revision') or 'unpinned'})"
    else:
        where = f"`{data['path']}` (sha256 {data['sha256'][:16]}…)"
    return f"Data: {where}; {data['rows_used']} rows used."


def _earlier_blocks(name: str, earlier: dict) -> list:
    """An earlier run's result kept for a task skipped in this run: shown, and labelled as not this run's."""
    when = earlier.get("finished_at") or "at an unknown time"
    rows = [[m["label"], fmt_ci(m), f"{m['n']} {m['unit']}"] for m in earlier["metrics"].values()]
    return [("p", f"{name}: result from an earlier run ({earlier['file']}, finished {when}, fingerprint "
                  f"{earlier['fingerprint'][:12]}), kept because this run skipped the task. It was not recomputed "
                  f"now, may rest on other settings or data, and is not in the differences. "
                  f"{_data_line(earlier['data'])} Settings: {json.dumps(earlier['settings'], sort_keys=True, default=str)}"),
            ("table", [f"metric ({name}, earlier run)", "value [95% CI]", "n"], rows)]


def _task_blocks(results: dict, task: str, plots: dict) -> list:
    systems = results["systems"]
    done = [s for s in systems if s["tasks"].get(task, {}).get("status") == "ok"]
    blocks: list = [("h2", task)]
    for s in systems:
        entry = s["tasks"].get(task, {})
        if entry.get("status") == "skipped":
            how = f" How to get it: {entry['how_to']}" if entry.get("how_to") else ""
            blocks.append(("p", f"Skipped for {s['name']}: {entry['reason']}.{how}"))
            if entry.get("earlier"):
                blocks += _earlier_blocks(s["name"], entry["earlier"])
    if not done:
        return blocks
    first = done[0]["tasks"][task]
    blocks.append(("p", f"{_data_line(first['data'])} Task version {first['task_version']}."))
    blocks.append(("p", "Settings: " + json.dumps(first["settings"], sort_keys=True, default=str)))
    header = ["metric", "better", "ideal", *[s["name"] for s in done], "n"]
    rows = []
    for key, info in first["metrics"].items():
        cells = [fmt_ci(s["tasks"][task]["metrics"].get(key)) for s in done]
        ns = sorted({s["tasks"][task]["metrics"].get(key, {}).get("n") for s in done} - {None})
        rows.append([info["label"], BETTER[info["higher_is_better"]], fmt(info["ideal"]), *cells,
                     " / ".join(map(str, ns)) + f" {info['unit']}"])
    blocks += [("h3", "Results (value [95% CI])"), ("table", header, rows)]
    if f"{task}_metrics" in plots:
        blocks.append(("img", f"{task}_metrics", f"{task}: value and 95% CI per system"))
    diffs = [d for d in results["comparisons"]["differences"] if d["task"] == task]
    if diffs:
        rows = [[d["label"], d["system"], fmt_ci(d), "paired" if d["paired"] else "unpaired",
                 f"{d['n']} {d['unit']}s", reading(d)] for d in diffs]
        blocks += [("h3", f"Differences to {results['comparisons']['baseline']} (system − baseline, 95% CI)"),
                   ("table", ["metric", "system", "difference [95% CI]", "bootstrap", "n", "reading"], rows)]
        notes = sorted({d["note"] for d in diffs if d.get("note")})
        if notes:
            blocks.append(("list", notes))
        if f"{task}_differences" in plots:
            blocks.append(("img", f"{task}_differences", f"{task}: differences to the baseline with 95% CIs"))
    notes = []
    for note in dict.fromkeys(n for s in done for n in s["tasks"][task]["notes"]):
        who = [s["name"] for s in done if note in s["tasks"][task]["notes"]]
        notes.append(f"{'all systems' if len(who) == len(done) > 1 else ', '.join(who)}: {note}")
    if notes:
        blocks += [("h3", "Notes"), ("list", notes)]
    return blocks


def build_blocks(results: dict, plots: dict) -> list:
    prov = results["provenance"]
    commit = prov.get("git_commit") or "unknown"
    dirty = " (with uncommitted changes)" if prov.get("git_dirty") else ""
    versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items() if v)
    blocks: list = [
        ("h1", "fairalign evaluation suite"),
        ("p", f"Created {results['created']}; schema version {results['schema_version']}; git {commit}{dirty}; "
              f"Python {prov.get('python')}; {versions}."),
        ("p", "Every number is a value with its 95% interval (percentile bootstrap over the task's unit: prompts, "
              "occupations or premises; Wilson where stated) and n. Differences to the baseline resample the units "
              "both systems share (paired); without shared units they bootstrap each system separately (unpaired)."),
        ("h2", "Systems"),
        ("table", ["system", "model", "adapter", "UDDIA", "notes"],
         [[s["name"], str(s["spec"].get("model") or s["spec"].get("lm")), str(s["spec"].get("adapter") or "—"),
           (f"{s['spec']['uddia']} {json.dumps(s['spec']['uddia_config'])}" if s["spec"].get("uddia") else "—"),
           "; ".join(s["notes"]) or "—"] for s in results["systems"]]),
        ("p", f"Baseline for differences: {results['comparisons']['baseline']}."),
    ]
    for task in results["tasks"]:
        blocks += _task_blocks(results, task, plots)
    return blocks


def write_reports(results: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """report.md with plots/*.png beside it, and report.html with the same plots inline (base64)."""
    from fairalign.align.files import write_bytes_atomic
    from fairalign.eval.suite.plots import make_plots
    from fairalign.eval.suite.report_html import render_html
    from fairalign.eval.suite.report_md import render_markdown

    out = Path(out_dir)
    plots = make_plots(results)
    blocks = build_blocks(results, plots)
    paths = {name: write_bytes_atomic(out / "plots" / f"{name}.png", png) for name, png in plots.items()}
    paths["markdown"] = write_bytes_atomic(out / "report.md", render_markdown(blocks).encode("utf-8"))
    paths["html"] = write_bytes_atomic(out / "report.html", render_html(blocks, plots).encode("utf-8"))
    return paths
