"""The suite report's content, built once from results.json as a list of blocks that report_md.py and
report_html.py render (so the two reports always say the same thing).

Blocks: ("h1" | "h2" | "h3", text), ("p", text), ("list", [text]), ("table", header, rows), ("img", name, caption),
("banner", title, [text]): the caveats a reader needs before any number, shown at the top.
`write_reports(results, out_dir)` writes report.md (+ plots/*.png beside it) and a self-contained report.html.

Fields read beyond the schema's required ones, each optional (older results.json files lack them):
task entry `caveats` (else derived here, `task_caveats`), metric `scale` (plots.py), difference `p`,
`p_holm`, `verdict_holm` (Holm is computed here when only `p` is there).
"""
from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

from fairalign.eval.suite.compare import add_multiplicity, direction

BETTER = {True: "higher", False: "lower", None: "closer to ideal"}
# the toxicity metrics the scorer produces on the prompt set: their labels name both
TOXICITY_SCORED = ("expected_max_toxicity", "toxicity_probability", "per_continuation_toxic_rate")
FLUENCY = ("perplexity", "token_weighted_perplexity")
PROXY_CAVEAT = ("scored by the offline profanity proxy (alt-profanity-check, a word-level profanity model), "
                "not a toxicity classifier")


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
    """What a difference's interval supports, in words (unadjusted for the number of comparisons)."""
    if d.get("low") is None or d.get("value") is None:
        return "no interval"
    if d["low"] <= 0 <= d["high"]:
        return "no clear difference (CI contains 0)"
    return f"{direction(d)} (CI excludes 0)"


# ---- what a number rests on: prompt set, scorer, evaluator LM ------------------------------------------


def _is_demo_prompts(entry: dict) -> bool:
    prompts = (entry.get("settings") or {}).get("prompts")
    chosen = prompts.get("prompts") if isinstance(prompts, dict) else prompts
    return chosen == "demo" or str((entry.get("data") or {}).get("path") or "").endswith("demo_prompts.jsonl")


def _is_proxy_scorer(entry: dict) -> bool:
    """The profanity proxy, asked for or fallen back to ("auto" without the classifier)."""
    used = ((entry.get("details") or {}).get("scorer") or {}).get("name")
    return str((entry.get("settings") or {}).get("scorer")).lower() == "profanity" or used == "profanity-check"


def task_caveats(task: str, entry: dict) -> list[str]:
    """Headline caveats of one finished task entry: the pipeline's `caveats` where it wrote them, else
    derived from what older files hold (toxicity: a demo prompt set, the proxy scorer)."""
    if entry.get("caveats") is not None:
        return list(entry["caveats"])
    if task != "toxicity":
        return []
    out = []
    if _is_demo_prompts(entry):
        out.append(f"demo prompts ({entry['data'].get('rows_used', '?')}, bundled), not RealToxicityPrompts")
    if _is_proxy_scorer(entry):
        out.append(PROXY_CAVEAT)
    return out


def _short_name(model) -> str:
    return Path(str(model).rstrip("/")).name or str(model)


def _scorer_name(entry: dict) -> str:
    if _is_proxy_scorer(entry):
        return "profanity proxy"
    settings = entry.get("settings") or {}
    if str(settings.get("scorer")).lower() == "perspective":
        return "Perspective API"
    return _short_name(settings.get("scorer_model") or settings.get("scorer"))


def _prompt_set(entry: dict) -> str:
    if _is_demo_prompts(entry):
        return "demo prompts"
    data = entry.get("data") or {}
    source = data.get("hub_id") or _short_name(data.get("path") or data.get("source"))
    if source == "allenai/real-toxicity-prompts":
        challenging = ((entry.get("settings") or {}).get("prompts") or {}).get("challenging_only")
        return "RealToxicityPrompts" + (", challenging" if challenging else "")
    return source


def _same_model(a, b) -> bool:
    return a is not None and b is not None and os.path.normpath(str(a)).casefold() == os.path.normpath(str(b)).casefold()


def _evaluator_phrase(results: dict, entry: dict) -> str | None:
    """'under smollm2, the base model of ...: favours blander text' for the perplexity metrics."""
    ppl = (entry.get("settings") or {}).get("ppl_model")
    if not ppl:
        return None
    same = [s["name"] for s in results["systems"] if _same_model(s["spec"].get("model"), ppl)]
    phrase = f"under {_short_name(ppl)}"
    if same:
        # the systems' own base LM rates text like its own as likely: a blander system looks more fluent
        whose = "the systems compared" if len(same) == len(results["systems"]) else ", ".join(same)
        phrase += f", the base model of {whose}: favours blander text"
    return phrase


def metric_labels(results: dict, task: str) -> dict[str, str]:
    """The label each metric of `task` is shown with: toxicity metrics name their scorer and prompt set,
    perplexity its evaluator LM."""
    done = [s["tasks"][task] for s in results["systems"] if s["tasks"].get(task, {}).get("status") == "ok"]
    if not done:
        return {}
    first = done[0]
    labels = {key: info["label"] for key, info in first["metrics"].items()}
    if task != "toxicity":
        return labels
    evaluator = _evaluator_phrase(results, first)
    for key in labels:
        if key in TOXICITY_SCORED:
            labels[key] += f" ({_scorer_name(first)}, {_prompt_set(first)})"
        elif key in FLUENCY and evaluator:
            labels[key] += f" {evaluator}"
    return labels


# ---- blocks -------------------------------------------------------------------------------------------


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


def _who(names: list[str], everyone: list[str]) -> str:
    return "every system" if len(names) == len(everyone) > 1 else ", ".join(names)


def _skip_blocks(results: dict, task: str) -> list:
    """One line per distinct reason (a skip shared by every system is said once), then earlier results."""
    systems = results["systems"]
    skipped = [(s["name"], s["tasks"][task]) for s in systems if s["tasks"].get(task, {}).get("status") == "skipped"]
    by_reason: dict[tuple, list[str]] = {}
    for name, entry in skipped:
        by_reason.setdefault((entry["reason"], entry.get("how_to")), []).append(name)
    blocks = []
    for (reason, how_to), names in by_reason.items():
        how = f" How to get it: {how_to}" if how_to else ""
        blocks.append(("p", f"Skipped for {_who(names, [s['name'] for s in systems])}: {reason}.{how}"))
    for name, entry in skipped:
        if entry.get("earlier"):
            blocks += _earlier_blocks(name, entry["earlier"])
    return blocks


def _results_blocks(task: str, done: list[dict], labels: dict, plots: dict) -> list:
    first = done[0]["tasks"][task]
    header = ["metric", "better", "ideal", *[s["name"] for s in done], "n", "interval"]
    rows = []
    for key, info in first["metrics"].items():
        ms = [s["tasks"][task]["metrics"].get(key) or {} for s in done]
        ns = sorted({m.get("n") for m in ms} - {None})
        methods = " / ".join(dict.fromkeys(m.get("method") or "bootstrap" for m in ms if m))
        rows.append([labels[key], BETTER[info["higher_is_better"]], fmt(info["ideal"]), *map(fmt_ci, ms),
                     " / ".join(map(str, ns)) + f" {info['unit']}", methods])
    blocks = [("h3", "Results (value [95% CI])"), ("table", header, rows)]
    if f"{task}_metrics" in plots:
        blocks.append(("img", f"{task}_metrics", f"{task}: value and 95% CI per system"))
    return blocks


def _group_blocks(task: str, done: list[dict], labels: dict) -> list:
    """Toxicity per value of each `group_by` field (e.g. provocative / neutral prompts): a table per system."""
    if task != "toxicity":
        return []
    blocks = []
    for field in dict.fromkeys(f for s in done for f in (s["tasks"][task].get("details") or {}).get("groups", {})):
        blocks.append(("h3", f"By {field} (value [95% CI])"))
        for s in done:
            groups = s["tasks"][task]["details"].get("groups", {}).get(field)
            if not groups:
                continue
            header = [f"{s['name']}: {field}", *[labels.get(k, k) for k in TOXICITY_SCORED], "prompts"]
            rows = [[value, *[fmt_ci(g.get(k)) for k in TOXICITY_SCORED], str(g.get("num_prompts", "n/a"))]
                    for value, g in groups.items()]
            blocks.append(("table", header, rows))
    return blocks


def _difference_blocks(results: dict, task: str, diffs: list[dict], labels: dict, plots: dict) -> list:
    rows = [[labels.get(d["metric"], d["label"]), d["system"], fmt_ci(d),
             f"{'paired' if d['paired'] else 'unpaired'}, {d['n']} {d['unit']}s", reading(d),
             fmt(d.get("p")), fmt(d.get("p_holm")), d.get("verdict_holm") or "n/a"] for d in diffs]
    blocks = [("h3", f"Differences to {results['comparisons']['baseline']} (system − baseline, 95% CI)"),
              ("table", ["metric", "system", "difference [95% CI]", "resampled", "reading (CI, unadjusted)", "p",
                         "p (Holm)", "reading (Holm)"], rows)]
    notes = sorted({d["note"] for d in diffs if d.get("note")})
    if notes:
        blocks.append(("list", notes))
    if f"{task}_differences" in plots:
        blocks.append(("img", f"{task}_differences", f"{task}: differences to the baseline with 95% CIs, "
                                                     "one panel per scale"))
    return blocks


def _note_blocks(task: str, done: list[dict]) -> list:
    notes = []
    for note in dict.fromkeys(n for s in done for n in s["tasks"][task]["notes"]):
        who = [s["name"] for s in done if note in s["tasks"][task]["notes"]]
        notes.append(f"{'all systems' if len(who) == len(done) > 1 else ', '.join(who)}: {note}")
    return [("h3", "Notes"), ("list", notes)] if notes else []


def _task_blocks(results: dict, task: str, plots: dict, diffs: list[dict]) -> list:
    done = [s for s in results["systems"] if s["tasks"].get(task, {}).get("status") == "ok"]
    blocks: list = [("h2", task), *_skip_blocks(results, task)]
    if not done:
        return blocks
    first = done[0]["tasks"][task]
    labels = metric_labels(results, task)
    blocks.append(("p", f"{_data_line(first['data'])} Task version {first['task_version']}."))
    blocks.append(("p", "Settings: " + json.dumps(first["settings"], sort_keys=True, default=str)))
    blocks += _results_blocks(task, done, labels, plots)
    blocks += _group_blocks(task, done, labels)
    mine = [d for d in diffs if d["task"] == task]
    if mine:
        blocks += _difference_blocks(results, task, mine, labels, plots)
    return blocks + _note_blocks(task, done)


def caveat_banner(results: dict) -> list:
    """Every task's headline caveats once, with the task (and the systems, where not all) they concern."""
    everyone = [s["name"] for s in results["systems"]]
    seen: dict[tuple[str, str], list[str]] = {}
    for task in results["tasks"]:
        for s in results["systems"]:
            entry = s["tasks"].get(task, {})
            if entry.get("status") == "ok":
                for caveat in task_caveats(task, entry):
                    seen.setdefault((task, caveat), []).append(s["name"])
    if not seen:
        return []
    items = [f"{task}{'' if len(names) == len(everyone) else f' ({_who(names, everyone)})'}: {caveat}"
             for (task, caveat), names in seen.items()]
    return [("banner", "Read this first: what these numbers are not", items)]


def with_multiplicity(differences: list[dict]) -> list[dict]:
    """The differences with Holm-adjusted p-values: as stored, or computed here from their `p` (a run whose
    runner did not add them); a file without p-values is left as it is."""
    if not any(d.get("p") is not None for d in differences) or any("p_holm" in d for d in differences):
        return differences
    out = copy.deepcopy(differences)
    add_multiplicity(out)
    return out


def _comparison_summary(results: dict, diffs: list[dict]) -> str:
    base = f"Baseline for differences: {results['comparisons']['baseline']}."
    if not diffs:
        return base
    unadjusted = sum(reading(d).endswith("(CI excludes 0)") for d in diffs)
    text = (f"{base} This run made {len(diffs)} comparisons (differences to the baseline over all tasks, systems "
            f"and metrics); {unadjusted} have a 95% CI that excludes 0. With this many, some such verdicts are "
            "expected by chance alone, so each difference also shows its bootstrap p-value and the verdict after "
            "Holm's adjustment over all of them (family-wise error 5%)")
    tested = [d for d in diffs if d.get("p_holm") is not None]
    if not tested:
        return text + ": not available here, as this results.json holds no p-values."
    holm = sum(d.get("verdict_holm") not in ("no clear difference", "no p-value", None) for d in tested)
    return text + f": {holm} of {len(tested)} with a p-value remain after it." + _resolution_note(results, len(tested))


def _resolution_note(results: dict, m: int) -> str:
    """With B resamples no bootstrap p is below 2 / (B + 1); Holm's smallest threshold is alpha / m."""
    resamples = (results.get("config") or {}).get("num_resamples")
    if not resamples or 2 / (resamples + 1) < 0.05 / m:
        return ""
    needed = math.ceil(2 * m / 0.05)
    return (f" With {resamples} bootstrap resamples no p-value can be below 2 / {resamples + 1} = "
            f"{2 / (resamples + 1):.2g}, while Holm needs the smallest below 0.05 / {m} = {0.05 / m:.2g}: no "
            f"difference can pass it in this run, whatever the data; num_resamples >= {needed} would allow it.")


def build_blocks(results: dict, plots: dict) -> list:
    prov = results["provenance"]
    commit = prov.get("git_commit") or "unknown"
    dirty = " (with uncommitted changes)" if prov.get("git_dirty") else ""
    versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items() if v)
    diffs = with_multiplicity(results["comparisons"]["differences"])
    blocks: list = [
        ("h1", "fairalign evaluation suite"),
        *caveat_banner(results),
        ("p", f"Created {results['created']}; schema version {results['schema_version']}; git {commit}{dirty}; "
              f"Python {prov.get('python')}; {versions}."),
        ("p", "Every number is a value with its 95% interval and n. Intervals: percentile bootstrap over the task's "
              "unit (prompts, occupations or premises); a share of independent units (prompts with a toxic sample) "
              "is a Wilson interval, and a pooled share whose bootstrap collapses to a point (no events) is Wilson "
              "over the units: the 'interval' column says which. Differences to the baseline resample the units "
              "both systems share (paired); without shared units they bootstrap each system separately (unpaired)."),
        ("h2", "Systems"),
        ("table", ["system", "model", "adapter", "UDDIA", "notes"],
         [[s["name"], str(s["spec"].get("model") or s["spec"].get("lm")), str(s["spec"].get("adapter") or "—"),
           (f"{s['spec']['uddia']} {json.dumps(s['spec']['uddia_config'])}" if s["spec"].get("uddia") else "—"),
           "; ".join(s["notes"]) or "—"] for s in results["systems"]]),
        ("p", _comparison_summary(results, diffs)),
    ]
    for task in results["tasks"]:
        blocks += _task_blocks(results, task, plots, diffs)
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
