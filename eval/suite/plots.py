"""Figures for the suite report, drawn from results.json alone (PNG bytes; no pyplot state, no display).

Per finished task:
- `<task>_metrics`: one panel per metric, each system's value with its 95% interval, ideal value dashed;
- `<task>_differences` (two or more systems): forest plot of system - baseline with 95% intervals, filled
  markers for paired differences, hollow for unpaired; the zero line is "no difference". One panel per
  scale (rates, perplexity, pp, ...), each with its own x-axis: on a shared one a perplexity difference
  of 15 would shrink a rate difference of 0.03 to a dot.
Labels are the report's (`report.metric_labels`), so a plot names the scorer, prompt set and evaluator too.
"""
from __future__ import annotations

import io
import math
import textwrap

from fairalign.eval.suite.schema import SCALES

COLS = 3
SCALE_TITLES = {"proportion": "rates and shares (difference of proportions)", "perplexity": "perplexity",
                "pp": "percentage points", "correlation": "correlation", "ratio": "ratio",
                "score": "score"}


def scale_of(key: str, metric: dict) -> str:
    """The metric's `scale` when results.json has it, else a guess from its key and unit (older files)."""
    if metric.get("scale") in SCALES:
        return metric["scale"]
    name = key.rsplit(".", 1)[-1]
    if "perplexity" in name:
        return "perplexity"
    if name.endswith("_pp") or "(pp)" in metric.get("label", "") or metric.get("unit") == "pp":
        return "pp"
    if name in ("spearman", "pearson") or "correlation" in name:
        return "correlation"
    if name.endswith("slope") or name.endswith("_gap"):
        return "ratio"
    shares = ("rate", "accuracy", "toxicity", "probability", "share", "brittleness")
    if any(word in name for word in shares) or name.startswith("dist_"):
        return "proportion"
    return "score"


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
    from fairalign.eval.suite.report import metric_labels

    keys = list(systems[0]["tasks"][task]["metrics"])
    labels = {k: textwrap.wrap(v, 44) for k, v in metric_labels(results, task).items()}
    title_lines = max(len(v) for v in labels.values()) + 1
    rows = math.ceil(len(keys) / COLS)
    fig = Figure(figsize=(4.2 * min(COLS, len(keys)), (2.2 + 0.13 * title_lines) * rows + 1.0))
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
        ax.set_title("\n".join([*labels[key], f"({better})"]), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{task}: value and 95% CI per system", fontsize=10)
    # Fixed margins: tight_layout re-draws every panel to measure it, several times slower with many panels.
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 0.95 / fig.get_figheight(), bottom=0.3 / fig.get_figheight() + 0.02,
                        hspace=0.2 + 0.12 * title_lines, wspace=0.3)
    return _png(fig)


def _wrap(label: str) -> str:
    return "\n".join(textwrap.wrap(label, 48))


def _forest(ax, rows: list[dict], systems: list[str], labels: dict) -> None:
    """One panel: each difference as a point with its 95% CI, the first row on top."""
    names = []
    for y, d in enumerate(reversed(rows)):
        colour = f"C{systems.index(d['system']) + 1}"
        if d["value"] is not None:
            lo, hi = _err(d["value"], d["low"], d["high"])
            ax.errorbar([d["value"]], [y], xerr=[[lo], [hi]], fmt="o", capsize=3, color=colour,
                        mfc=colour if d["paired"] else "white")
        else:
            ax.annotate("n/a", (0, y), fontsize=7, ha="left", va="center", color=colour)
        names.append(f"{_wrap(labels.get(d['metric'], d['label']))} [{d['system']}]")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.tick_params(axis="x", labelsize=7)


def difference_panels(results: dict, task: str) -> dict[str, list[dict]]:
    """The task's differences grouped by scale, in order of first appearance: {scale: [difference, ...]}."""
    diffs = [d for d in results["comparisons"]["differences"] if d["task"] == task]
    done = [s["tasks"][task] for s in results["systems"] if s["tasks"].get(task, {}).get("status") == "ok"]
    metrics = done[0]["metrics"] if done else {}
    panels: dict[str, list[dict]] = {}
    for d in diffs:
        panels.setdefault(scale_of(d["metric"], {**d, **metrics.get(d["metric"], {})}), []).append(d)
    return panels


def differences_plot(results: dict, task: str):
    """The forest plot as a matplotlib Figure (None without differences): one panel per scale."""
    from matplotlib.figure import Figure

    from fairalign.eval.suite.report import metric_labels

    panels = difference_panels(results, task)
    if not panels:
        return None
    systems = list(dict.fromkeys(d["system"] for rows in panels.values() for d in rows))
    labels = metric_labels(results, task)
    heights = [0.42 * len(rows) + 0.9 for rows in panels.values()]
    fig = Figure(figsize=(9.0, sum(heights) + 0.8))
    grid = fig.add_gridspec(len(panels), 1, height_ratios=heights)
    for i, (scale, rows) in enumerate(panels.items()):
        ax = fig.add_subplot(grid[i])
        _forest(ax, rows, systems, labels)
        ax.set_title(SCALE_TITLES.get(scale, scale), fontsize=9, loc="left")
        ax.set_xlabel(f"system - {results['comparisons']['baseline']}", fontsize=8)
    fig.suptitle(f"{task}: differences to the baseline (95% CI; filled = paired, hollow = unpaired)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))  # room for the suptitle above the panels
    return fig


def differences_figure(results: dict, task: str) -> bytes | None:
    fig = differences_plot(results, task)
    return None if fig is None else _png(fig)


def make_plots(results: dict) -> dict[str, bytes]:
    """{"<task>_metrics": png, "<task>_differences": png, ...} for every task with results."""
    out = {}
    for task in results["tasks"]:
        for kind, fn in (("metrics", metrics_figure), ("differences", differences_figure)):
            png = fn(results, task)
            if png is not None:
                out[f"{task}_{kind}"] = png
    return out
