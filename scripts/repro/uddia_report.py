"""Tables and plot of the UDDIA reproduction (scripts/repro/uddia.py), from its JSON alone.

Per setting and part (provocative / neutral prompts; a bias axis), every number is first computed per prompt
(`prompt_stats`; over its samples, then averaged over seeds) and then averaged over prompts with a bootstrap
interval (`uddia_metrics`); a difference to plain sampling is paired by prompt. Speed and the adapted fraction
are pooled over the part's samples.
"""
from __future__ import annotations

import math

from fairalign.scripts.repro import harness
from fairalign.scripts.repro import uddia_metrics as um

NAME = "uddia"
TOX_PARTS = ("provocative", "neutral")
REF_TH = 30.0  # the paper's redo threshold: "generator perplexity > 30" is reported for every setting


def rows_of(results, setting: str, part: str) -> dict[int, dict[int, list[dict]]]:
    """{prompt index: {seed: [row, ...]}} of one setting on one part; a row is one sample with its numbers."""
    out: dict[int, dict[int, list[dict]]] = {}
    for r in results["runs"]:
        if r["setting"] != setting or r["part"] != part:
            continue
        for i, p in enumerate(r["prompt"]):
            row = {key: r[key][i] for key in ("text", "tokens", "adapted", "ppl_gen", "attempts")}
            row["scores"] = {k: v[i] for k, v in r.get("scores", {}).items()}
            if "eval_nll" in r:
                row["eval_ppl"] = math.exp(r["eval_nll"][i] / r["eval_tokens"][i]) if r["eval_tokens"][i] else None
            if "vader" in r:
                row["vader"] = r["vader"][i]
            out.setdefault(p, {}).setdefault(r["seed"], []).append(row)
    return out


def per_prompt(rows: dict, statistic) -> dict[int, float | None]:
    """{prompt: mean over its seeds of statistic(that seed's rows)}."""
    return {p: um.prompt_value(list(by_seed.values()), statistic) for p, by_seed in rows.items()}


def _mean_of(key):
    def stat(rows):
        values = um.scored([r[key] for r in rows])
        return sum(values) / len(values) if values else None
    return stat


def prompt_stats(results, setting: str, part: str) -> dict[str, dict[int, float | None]]:
    """Every per-prompt number of a setting on a toxicity part, {stat: {prompt: value}}."""
    rows = rows_of(results, setting, part)
    if not rows:
        return {}
    out = {}
    for sc in [s["name"] for s in results["settings"]["scorers"]]:
        out[f"emt:{sc}"] = per_prompt(rows, lambda rs, sc=sc: um.max_toxicity([r["scores"].get(sc) for r in rs]))
        out[f"tp:{sc}"] = per_prompt(rows, lambda rs, sc=sc: um.is_toxic([r["scores"].get(sc) for r in rs]))
    out["eval_ppl"] = per_prompt(rows, _mean_of("eval_ppl"))
    out["ppl_gen"] = per_prompt(rows, _mean_of("ppl_gen"))
    for n in (1, 2, 3):
        out[f"dist{n}"] = per_prompt(rows, lambda rs, n=n: um.distinct([r["text"] for r in rs], n))
    out["same_opening"] = per_prompt(rows, lambda rs: um.same_opening([r["text"] for r in rs], 3))
    out["redone"] = per_prompt(rows, lambda rs: sum(r["attempts"] > 1 for r in rs) / len(rs))
    out["above_th"] = per_prompt(rows, lambda rs: sum((r["ppl_gen"] or 0) > REF_TH for r in rs) / len(rs))
    out["attempts"] = per_prompt(rows, _mean_of("attempts"))
    out["rows_adapted"] = per_prompt(rows, lambda rs: sum(r["adapted"] > 0 for r in rs) / len(rs))
    return out


def _ci(values: dict, reference: dict | None = None):
    """Mean [CI] over prompts; with a reference, the paired difference on the prompts both have."""
    if reference is None:
        return um.mean_ci(list(values.values()))
    common = sorted(set(values) & set(reference))
    return um.paired_difference_ci([values[p] for p in common], [reference[p] for p in common])


def speed(results, setting: str, part: str) -> dict:
    """Returned tokens per second of sampling, and the share of those tokens at which a row was adapted."""
    runs = [r for r in results["runs"] if r["setting"] == setting and r["part"] == part]
    tokens = sum(sum(r["tokens"]) for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    adapted = sum(sum(r["adapted"]) for r in runs)
    return {"tokens_per_s": tokens / seconds if seconds else math.nan,
            "adapted_fraction": adapted / tokens if tokens else math.nan}


def _f(ci, digits=3) -> str:
    return "–" if ci is None else harness.fmt_ci(ci, digits)


def _config_text(name: str, config: dict | None) -> str:
    if config is None:
        return "plain sampling (`model.generate`)"
    c = {"redo_layer_step": 3, **config}
    redo = f"redo TH {c['redo_ppl_threshold']:g}, ΔT {c['redo_layer_step']}" if c["redo_ppl_threshold"] else "no redo"
    trig = "every token" if c["trigger_threshold"] is None else f"trigger {c['trigger_threshold']:g}"
    terms = ("detox" if c.get("head", True) else "") + (" + debias" if c["debias_weight"] else "")
    return f"{terms.strip(' +') or 'none'}; lr {c['lr']:g}; {trig}; look-ahead {c['lookahead_steps']}; {redo}"


def _setting_lines(results) -> str:
    s, ev = results["settings"], results["settings"]["evaluator"]
    k = s["samples_per_prompt"]
    scorers = "; ".join(f"`{x['name']}`" + (" (the proxy the head was distilled from: not independent)"
                                           if x["trained_the_head"] else "")
                        + (f" — {x['notice']}" if x.get("notice") else "") for x in s["scorers"])
    lines = [f"{s['model']}, head: {s['head']}. Prompts: {s['prompts']['provocative']} provocative, "
             f"{s['prompts']['neutral']} neutral (ours); k = {k} samples per prompt, {s['new_tokens']} new tokens, "
             f"top-p {s['top_p']}, top-k 0, temperature 1; seeds: {results.get('meta', {}).get('seeds', '?')}. "
             f"A continuation is toxic when its score is {s['toxic_rule']} {s['toxic_threshold']}; expected max "
             f"toxicity (EMT) and toxicity probability (TP) are over prompts with k = {k} (both grow with k). "
             f"Scorers: {scorers}. Perplexity evaluator: {ev['used']}. {s['ci']}; Δ = setting − plain sampling, "
             "paired by prompt (same sampling seeds)."]
    if ev.get("fallback"):
        lines.insert(0, f"**{ev['fallback']}**")
    if results.get("meta", {}).get("note"):
        lines.insert(0, f"**{results['meta']['note']}**")
    return "\n\n".join(lines)


def _rows(results, stats, cells) -> list[list]:
    """[part, setting, *cells(name, part, its stats, plain's stats or None)] for every setting that ran."""
    rows = []
    for part in TOX_PARTS:
        plain = stats.get(("plain", part)) or None
        for name in results["settings"]["toxicity_settings"]:
            st = stats[(name, part)]
            if st:
                rows.append([part, f"`{name}`", *cells(name, part, st, None if name == "plain" else plain)])
    return rows


def _diff(st, ref, key, digits=3) -> str:
    return _f(_ci(st[key], ref[key]), digits) if ref else "–"


def tables(results) -> dict:
    s = results["settings"]
    stats = {(n, p): prompt_stats(results, n, p) for n in s["toxicity_settings"] for p in TOX_PARTS}
    names = dict.fromkeys(s["toxicity_settings"] + s["bias_settings"])
    blocks = [_setting_lines(results), harness.markdown_table(
        ["setting", "UDDIA configuration"], [[f"`{n}`", _config_text(n, s["configs"][n])] for n in names])]
    for sc, trained in [(x["name"], x["trained_the_head"]) for x in s["scorers"]]:
        def toxicity(name, part, st, ref, sc=sc):
            e, t = f"emt:{sc}", f"tp:{sc}"
            return [_f(_ci(st[e])), _diff(st, ref, e), _f(_ci(st[t])), _diff(st, ref, t), len(st[e])]
        note = " — the proxy the head was distilled from (not independent)" if trained else ""
        blocks += [f"Scorer `{sc}`{note}:", harness.markdown_table(
            ["prompts", "setting", "EMT", "Δ EMT", "TP", "Δ TP", "prompts (n)"], _rows(results, stats, toxicity))]
    plain_speed = {p: speed(results, "plain", p)["tokens_per_s"] for p in TOX_PARTS}

    def fluency(name, part, st, ref):
        sp = speed(results, name, part)
        ratio = f" ({sp['tokens_per_s'] / plain_speed[part]:.2f}×)" if math.isfinite(plain_speed[part]) else ""
        return [_f(_ci(st["eval_ppl"]), 1), _diff(st, ref, "eval_ppl", 1), _f(_ci(st["ppl_gen"]), 1),
                *(_f(_ci(st[f"dist{n}"]), 2) for n in (1, 2, 3)), f"{sp['tokens_per_s']:.1f}{ratio}",
                f"{sp['adapted_fraction']:.3f}", _f(_ci(st["rows_adapted"]), 2)]
    blocks += ["Fluency, diversity, speed. Evaluator perplexity: mean over continuations of exp(mean NLL) given the "
               "prompt; generator perplexity: the unadapted generator's own, the one redo reads; tokens/s: returned "
               "tokens over sampling time (discarded redo attempts count in the time):",
               harness.markdown_table(["prompts", "setting", "evaluator PPL", "Δ PPL", "generator PPL", "Dist-1",
                                       "Dist-2", "Dist-3", "tokens/s (× plain)", "adapted fraction of tokens",
                                       "rows adapted ≥ once"], _rows(results, stats, fluency))]
    out = {NAME: "\n\n".join(blocks), f"{NAME}_behaviour": behaviour_table(results, stats)}
    if s["bias_settings"]:
        out[f"{NAME}_bias"] = bias_table(results)
    return out


def behaviour_table(results, stats) -> str:
    def cells(name, part, st, ref):
        return [_f(_ci(st["same_opening"])), _diff(st, ref, "same_opening"), _f(_ci(st["dist2"]), 2),
                _f(_ci(st["ppl_gen"]), 1), _f(_ci(st["above_th"])), _f(_ci(st["redone"])), _f(_ci(st["attempts"]), 2),
                f"{speed(results, name, part)['adapted_fraction']:.3f}", _f(_ci(st["rows_adapted"])),
                _diff(st, ref, "eval_ppl", 1)]
    head = (f"Same opening: share of prompts whose {results['settings']['samples_per_prompt']} samples all begin with "
            f"the same 3 words. Generator PPL > {REF_TH:g}: share of samples above the paper's redo threshold (for "
            "`redo`: rows still above it after the last try, since redo returns a row above it only when every "
            "attempt was; for the others: rows redo would regenerate). Redone: share of samples that needed more "
            "than one attempt.")
    return head + "\n\n" + harness.markdown_table(
        ["prompts", "setting", "same opening", "Δ same opening", "Dist-2", "generator PPL",
         f"generator PPL > {REF_TH:g}", "redone", "attempts", "adapted fraction", "rows adapted ≥ once",
         "Δ evaluator PPL"], _rows(results, stats, cells))


def bias_cells(results, setting: str, axis: str) -> dict[int, dict[str, float]]:
    """{template: {group: mean VADER compound over its samples (and seeds)}}; templates missing a group (a partial
    run) are left out."""
    groups = set(results["settings"]["axes"][axis]["groups"])
    prompts = results["prompts"][axis]
    by_template: dict[int, dict[str, float]] = {}
    for p, by_seed in rows_of(results, setting, axis).items():
        values = [r["vader"] for rs in by_seed.values() for r in rs]
        template, group, _ = prompts[p]
        by_template.setdefault(template, {})[group] = sum(values) / len(values)
    return {t: cells for t, cells in sorted(by_template.items()) if set(cells) == groups}


def _gap_difference(cells: dict, reference: dict) -> str:
    common = sorted(set(cells) & set(reference))  # paired by template
    if not common:
        return "–"
    return _f(um.gap_difference_ci([cells[t] for t in common], [reference[t] for t in common]))


def bias_table(results) -> str:
    s = results["settings"]
    rows = []
    for axis, spec in s["axes"].items():
        cells = {name: bias_cells(results, name, axis) for name in s["bias_settings"]}
        for name in s["bias_settings"]:
            c = list(cells[name].values())
            if not c:
                continue
            means = " / ".join(f"{g} {sum(t[g] for t in c) / len(c):+.3f}" for g in spec["groups"])
            vs_plain = _gap_difference(cells[name], cells["plain"]) if name != "plain" else "–"
            # vs uddia-t only for uddia-u: the same detox at every token, with and without the debias term
            vs_detox = _gap_difference(cells[name], cells["uddia-t"]) if name == "uddia-u" and "uddia-t" in cells \
                else "–"
            rows.append([axis, f"`{name}`", means, _f(um.gap_ci(c)), vs_plain, vs_detox,
                         f"{speed(results, name, axis)['adapted_fraction']:.3f}", len(c)])
    words = "; ".join(f"{a}: {v['debias_words']} (Q_a threshold {v['token_threshold']})" for a, v in s["axes"].items())
    head = (f"Regard proxy: VADER compound sentiment of the continuation ([-1, 1]); {s['bias_samples_per_prompt']} "
            f"samples per group-swapped prompt, {s['templates']} templates. Gap = max − min of the groups' means over "
            "templates (noise alone makes it positive); CIs and paired differences bootstrap over templates. "
            "`uddia-u` − `uddia-t` isolates the debias term; `uddia-t` − plain is detoxification's own effect on the "
            f"gap. Debias word lists: {words}.")
    return head + "\n\n" + harness.markdown_table(
        ["axis", "setting", "group means", "gap", "Δ gap vs plain", "Δ gap vs `uddia-t`", "adapted fraction",
         "templates"], rows)


def plot(results, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["settings"]
    scorer = s["scorers"][0]["name"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, part in zip(axes[:2], TOX_PARTS):
        for i, name in enumerate(s["toxicity_settings"]):
            st = prompt_stats(results, name, part)
            x, y = (_ci(st["eval_ppl"]), _ci(st[f"emt:{scorer}"])) if st else (None, None)
            if x is None or y is None:
                continue
            ax.errorbar([x["mean"]], [y["mean"]], xerr=[[x["mean"] - x["low"]], [x["high"] - x["mean"]]],
                        yerr=[[y["mean"] - y["low"]], [y["high"] - y["mean"]]], marker="os^Dv<>p*h"[i % 10],
                        capsize=3, label=name)
        fallback = " (FALLBACK: the generator)" if s["evaluator"].get("fallback") else ""
        ax.set_xscale("log")  # one setting (lr 0.06) sits 10x to the right: linear axes crush the rest
        ax.set_xlabel(f"perplexity under {s['evaluator']['used']}{fallback} (log scale)")
        ax.set_ylabel(f"expected max toxicity ({scorer}, k = {s['samples_per_prompt']})")
        ax.set_title(f"{part} prompts", fontsize=10)
    axes[0].legend(fontsize=7)
    ax = axes[2]
    width = 0.8 / max(1, len(s["bias_settings"]))
    for j, name in enumerate(s["bias_settings"]):
        for a, axis in enumerate(s["axes"]):
            ci = um.gap_ci(list(bias_cells(results, name, axis).values()))
            if ci is None:
                continue
            ax.bar(a + j * width, ci["mean"], width, yerr=[[ci["mean"] - ci["low"]], [ci["high"] - ci["mean"]]],
                   capsize=2, color=f"C{j}", label=name if a == 0 else None)
    ax.set_xticks([a + 0.4 - width / 2 for a in range(len(s["axes"]))])
    ax.set_xticklabels(list(s["axes"]))
    ax.set_ylabel("gap in mean VADER compound (max − min group)")
    ax.set_title("demographic gap", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle(f"UDDIA with the {s['head'].split(':')[0]}: toxicity vs perplexity per setting, and the group gap (95% bootstrap CIs)",
                 fontsize=10)
    harness.save_figure(fig, path)
