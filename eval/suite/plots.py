"""Figures for the suite report, drawn from results.json alone (PNG bytes; no pyplot state, no display).

Per finished task:
- `<task>_metrics`: one panel per metric, each system's value with its 95% interval, ideal value dashed;
- `<task>_differences` (two or more systems): forest plot of system - baseline with 95% intervals, filled
  markers for paired differences, hollow for unpaired; the zero line is "no difference".
"""
from __future__ import annotations

import io
import math

COLS = 3


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _err(value, low, high) -> tuple[float, float]:
    if value is None or low is None or high is None:
        return 0.0, 0.0
    return max(0.0, value - low), max(0.0, high - value)


def metrics_figure(results: dict, task: str) -> bytes | None:
    from matplotlib.figure import Figure

    systems = [s for s in results["systems"] if s["tasks"].get(task, {}).get("status") == "ok"]
    if not systems:
        return None
    keys = list(systems[0]["tasks"][task]["metrics"])
    rows = math.ceil(len(keys) / COLS)
    fig = Figure(figsize=(4.2 * min(COLS, len(keys)), 2.6 * rows + 1.0))
    for k, key in enumerate(keys):
        ax = fig.add_subplot(rows, min(COLS, len(keys)), k + 1)
        info = systems[0]["tasks"][task]["metrics"][key]
        for i, system in enumerate(systems):
            m = system["tasks"][task]["metrics"].get(key)
            if m is None or m["value"] is None:
                ax.text(i, 0, "n/a", ha="center", fontsize=8)
                continue
            lo, hi = _err(m["value"], m["low"], m["high"])
            ax.errorbar([i], [m["value"]], yerr=[[lo], [hi]], fmt="o", capsize=4, color=f"C{i}")
        if info.get("ideal") is not None:
            ax.axhline(info["ideal"], color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(systems)), [s["name"] for s in systems], fontsize=8)
        ax.set_xlim(-0.6, len(systems) - 0.4)
        better = {True: "higher is better", False: "lower is better", None: "closer to ideal"}[info.get("higher_is_better")]
        ax.set_title(f"{info['label']}\n({better})", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{task}: value and 95% CI per system", fontsize=10)
    # Fixed margins: tight_layout re-draws every panel to measure it, several times slower with many panels.
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 0.95 / fig.get_figheight(), bottom=0.3 / fig.get_figheight() + 0.02,
                        hspace=0.75, wspace=0.3)
    return _png(fig)


def differences_figure(results: dict, task: str) -> bytes | None:
    from matplotlib.figure import Figure

    diffs = [d for d in results["comparisons"]["differences"] if d["task"] == task]
    if not diffs:
        return None
    others = list(dict.fromkeys(d["system"] for d in diffs))
    fig = Figure(figsize=(7.5, 0.32 * len(diffs) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    labels = []
    for y, d in enumerate(reversed(diffs)):
        colour = f"C{others.index(d['system']) + 1}"
        if d["value"] is not None:
            lo, hi = _err(d["value"], d["low"], d["high"])
            ax.errorbar([d["value"]], [y], xerr=[[lo], [hi]], fmt="o", capsize=3, color=colour,
                        mfc=colour if d["paired"] else "white")
        else:
            ax.annotate("n/a", (0, y), fontsize=7, ha="left", va="center", color=colour)
        labels.append(f"{d['label']} [{d['system']}]")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel(f"system - {results['comparisons']['baseline']} (95% CI; filled = paired, hollow = unpaired)", fontsize=8)
    ax.set_title(f"{task}: differences to the baseline", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def make_plots(results: dict) -> dict[str, bytes]:
    """{"<task>_metrics": png, "<task>_differences": png, ...} for every task with results."""
    out = {}
    for task in results["tasks"]:
        for kind, fn in (("metrics", metrics_figure), ("differences", differences_figure)):
            png = fn(results, task)
            if png is not None:
                out[f"{task}_{kind}"] = png
    return out
