"""Occupational bias reproduction (Gorti, Chadha & Gaur, "Unboxing Occupational Bias: Grounded Debiasing of LLMs
with U.S. Labor Data", AAAI Symposium Series 2024, arXiv:2408.11247): SmolLM2-135M-Instruct's implied share of
women per occupation against the BLS 2022 table (CPS Table 11), without and with BLS facts in the prompt.

Claim tested: (1) the model's shares depart from the table's; (2) grounding (k BLS facts before each prompt,
fairalign.eval.occupation.debias) narrows the gap on held-out occupations. Held out: with --holdout evaluated (the
default) no prompt's facts are about any scored occupation, so the model never sees a figure it is scored on; with
--holdout asked (the paper's rule) only the asked occupation's own figure is kept out of its prompt.

Measurement (fairalign.eval.occupation, unchanged): the three gender templates of eval/tasks/occupation.yaml,
probability scoring (forced choice between the woman and man words; no generation, no parsing); an occupation's
model share = mean over the templates of 100 P(woman). One job = one template under one fact draw (seed: which k
facts each prompt gets): evaluate_occupational_bias on every occupation, baseline and grounded (the baseline does
not depend on the draw; it is recomputed per draw and checked to be identical). Metrics over occupations
(eval/occupation/metrics.py): MAE (pp) and mean JSD (bits, of the (women, men) distributions), with 95% percentile
bootstrap intervals over occupations. The grounded - baseline differences are paired: the same occupations in both
arms, every bootstrap resample drawn once for both (the same seed and n give the same resamples).

Cost, measured with SmolLM2 at 1 torch thread on this 2-core CPU (8 prompts per setting, under load): ~0.2 CPU s
per baseline prompt, ~0.41 + 0.167 k CPU s per grounded prompt (k = 32: ~590 tokens, 5.7 s; k = 8: 1.7 s).
Default (100 occupations x 3 templates x 3 draws, k = 32): ~5,400 CPU s, i.e. ~45 min with 2 workers on an idle
2-core CPU (~90 min with --workers 1); every job (one template, one draw) ~10 CPU min. All 230 occupations
(--occupations 0): ~105 min with 2 workers; k = 8: ~15 min. The run logs its own estimate before it starts.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict

import numpy as np

from fairalign.eval.occupation import metrics as M
from fairalign.eval.occupation.debias import HOLDOUTS
from fairalign.scripts.repro import harness

NAME = "occupation"
RESUMABLE = True  # a job is deterministic given (draw, template): a resumed run equals an uninterrupted one
TEMPLATES = ("gender_completion_pronoun", "gender_completion_noun", "gender_question")
BLS_YEAR = 2022
EXTREME_PP = 5.0  # "at an extreme": a share within 5 pp of 0 or 100 (one gender named for the whole job)
# CPU seconds per prompt, SmolLM2-135M, 1 thread, this CPU (see the docstring): the run's own time estimate
CPU_S_BASELINE, CPU_S_GROUNDED, CPU_S_PER_FACT = 0.2, 0.41, 0.167


def add_arguments(parser) -> None:
    parser.add_argument("--occupations", type=int, default=100,
                        help="score the N most employed occupations of the default selection (0: all 230)")
    parser.add_argument("--k", type=int, default=32, help="BLS facts per grounded prompt (the paper reports 32)")
    parser.add_argument("--holdout", choices=HOLDOUTS, default="evaluated",
                        help="evaluated: facts never about a scored occupation; asked: never about the asked one")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per interval")
    parser.add_argument("--batch", type=int, default=8, help="prompts per forward pass")
    parser.add_argument("--chat_template", action="store_true",
                        help="wrap prompts as a chat user turn (default: raw text, as the templates are written)")


def held_out_check(table, names, k: int, holdout: str, seeds: list[int], header: str) -> dict:
    """Re-draws every prompt's facts exactly as evaluate_occupational_bias does and counts facts about the asked
    occupation and about any scored one (both 0 under holdout "evaluated"), so the JSON shows what "held out" meant."""
    from fairalign.eval.occupation.debias import BLSContext

    evaluated = {n.bls.lower() for n in names}
    out = {"holdout": holdout, "k": k, "prompts": 0, "facts": 0, "about_the_asked_occupation": 0,
           "about_a_scored_occupation": 0}
    used = set()
    for seed in seeds:
        context = BLSContext(table, k, holdout, seed, tuple(n.bls for n in names), header)
        for n in names:
            facts = [r["occupation"].lower() for r in context.facts(n.bls)]
            used |= set(facts)
            out["prompts"] += 1
            out["facts"] += len(facts)
            out["about_the_asked_occupation"] += sum(f == n.bls.lower() for f in facts)
            out["about_a_scored_occupation"] += sum(f in evaluated for f in facts)
    out["distinct_fact_occupations"] = len(used)
    out["pool"] = len(context.base_pool)
    return out


def score(lm, table, names, template: str, seed: int, k: int, holdout: str) -> dict:
    """One job: every occupation's P(woman) under one template, baseline and grounded with draw `seed`."""
    from fairalign.eval.occupation import evaluate_occupational_bias

    result = evaluate_occupational_bias(lm, table, occupations=[n.bls for n in names], templates=[template],
                                        debias="bls-context", k=k, holdout=holdout,
                                        scoring="loglikelihood", directions=("o2d",), seed=seed, num_resamples=1,
                                        progress=False)
    if result.occupations != [asdict(n) for n in names]:  # the prompts must name the occupations the table lists
        raise RuntimeError(f"evaluate_occupational_bias named the occupations differently from the selection "
                           f"(template {template}, draw {seed})")
    row = {"seed": seed, "template": template}
    for arm, condition in (("baseline", "baseline"), ("grounded", "bls-context")):
        per = result.conditions[condition]["o2d"]["loglikelihood"]["gender"]["per_occupation"]
        row[f"{arm}_women_pct"] = [r["model_woman"] for r in per]
    return row


def estimate_cpu_s(n_occupations: int, templates: int, draws: int, k: int) -> float:
    return n_occupations * templates * draws * (CPU_S_BASELINE + CPU_S_GROUNDED + CPU_S_PER_FACT * k)


def run(args, log) -> dict:
    from fairalign.eval.lm import HFLM
    from fairalign.eval.occupation import load_bls_table, select_occupations
    from fairalign.eval.occupation.evaluate import bls_shares
    from fairalign.eval.occupation.templates import load_task

    quick = args.quick
    n_occupations = 4 if quick else args.occupations
    k = 2 if quick else args.k
    resamples = 50 if quick else args.resamples
    if n_occupations < 0 or k < 1 or resamples < 1 or args.batch < 1:
        raise SystemExit(f"--occupations must be >= 0, --k, --resamples and --batch >= 1; got {n_occupations}, "
                         f"{k}, {resamples}, {args.batch}")
    table = load_bls_table(BLS_YEAR)  # the packaged copy: offline
    task = load_task()
    names = select_occupations(table, max_occupations=n_occupations or None, task=task)
    seeds = list(range(args.seeds))
    check = held_out_check(table, names, k, args.holdout, seeds, task["debias"]["header"])
    settings = {"model": "tiny random Llama" if quick else "SmolLM2-135M-Instruct (embedded, float32)",
                "bls_year": BLS_YEAR, "templates": list(TEMPLATES), "scoring": "loglikelihood (forced choice)",
                "k": k, "holdout": args.holdout, "chat_template": args.chat_template,
                "selection": f"the {len(names)} most employed of the default selection" if n_occupations else
                             f"the default selection ({len(names)} occupations)",
                "occupations": [n.bls for n in names], "names": [n.singular for n in names],
                "bls_women_pct": [bls_shares(table.row(n.bls), "gender", task)["woman"] for n in names],
                "all_workers_women_pct": bls_shares(table.total, "gender", task)["woman"],
                "resamples": resamples, "extreme_pp": EXTREME_PP, "task_version": task["version"]}
    todo = [(seed, t) for seed in seeds for t in TEMPLATES]  # draw by draw: each finished draw is a whole result
    cpu = estimate_cpu_s(len(names), len(TEMPLATES), len(seeds), k)
    # "cost" (the only part of the results that depends on the machine's load): estimate, then each job's CPU and wall s
    results = {"settings": settings, "held_out_check": check, "runs": [],
               "cost": {"estimated_cpu_s": round(cpu), "jobs": []}}
    log(f"{len(names)} occupations x {len(TEMPLATES)} templates x {len(seeds)} draws, k = {k} "
        f"(holdout {args.holdout}: {check['about_a_scored_occupation']} facts about a scored occupation, "
        f"{check['about_the_asked_occupation']} about the asked one); estimated {cpu / 60:.1f} CPU min, "
        f"~{cpu / 60 / args.workers:.1f} min with {args.workers} worker(s) on an idle CPU"
        + (" (SmolLM2's figures: meaningless for --quick)" if quick else ""))
    if args.prior is not None:  # --resume: the same settings, or refuse
        harness.same_or_exit("settings", args.prior["settings"], settings)
        results["runs"] = harness.kept_runs(args.prior, _job, todo)
        kept = {_job(r) for r in results["runs"]}
        results["cost"]["jobs"] = [c for c in args.prior.get("cost", {}).get("jobs", []) if _job(c) in kept]
    finished = {_job(r) for r in results["runs"]}
    if finished:
        log(f"resume: {len(finished)} of {len(todo)} jobs finished earlier")

    if quick:
        from fairalign.align.testing import tiny_llama, tiny_tokenizer

        model, tokenizer = tiny_llama(), tiny_tokenizer()
    else:
        from fairalign.scripts.repro.sentiment import load_base

        model, tokenizer, _ = load_base(False)
    lm = HFLM(model, tokenizer, batch_size=args.batch, use_chat_template=args.chat_template,
              name=settings["model"])
    scratch = harness.Scratch(NAME, args.out, log)

    def work(job):  # in a worker process when --workers > 1
        seed, template = job
        cpu, wall = time.process_time(), time.perf_counter()
        row = score(lm, table, names, template, seed, k, args.holdout)
        return row, {"seed": seed, "template": template, "cpu_s": round(time.process_time() - cpu, 1),
                     "wall_s": round(time.perf_counter() - wall, 1)}

    def done(job, out):
        row, cost = out
        results["runs"].append(row)
        results["cost"]["jobs"].append(cost)
        log(f"draw {row['seed']} {row['template']}: mean P(woman) baseline "
            f"{np.mean(row['baseline_women_pct']):.1f}%, grounded {np.mean(row['grounded_women_pct']):.1f}% "
            f"({cost['cpu_s']:.0f} CPU s)")
        scratch.save_partial(results)

    harness.run_jobs([j for j in todo if j not in finished], work, done, args.workers, args.threads)
    scratch.close()
    results["runs"].sort(key=lambda r: todo.index(_job(r)))
    results["cost"]["jobs"].sort(key=lambda r: todo.index(_job(r)))
    results["summary"] = summarise(results)
    return results


def _job(row: dict) -> tuple[int, str]:
    return row["seed"], row["template"]


# ------------------------------------------------------------------------------------------------ statistics
def shares(results) -> tuple[np.ndarray, dict, dict, float]:
    """(BLS shares, {arm: model shares}, {arm: {template: shares}}, largest baseline difference between draws).
    Arms: "baseline" and "grounded, draw s" for every draw whose templates all finished; a share is the mean
    over the templates of 100 P(woman)."""
    s = results["settings"]
    by = {_job(r): r for r in results["runs"]}
    draws = sorted({r["seed"] for r in results["runs"]})
    draws = [d for d in draws if all((d, t) in by for t in s["templates"])]
    if not draws:
        raise ValueError("no fact draw has all its templates finished: nothing to summarise")
    per_template = {"baseline": {t: np.array(by[draws[0], t]["baseline_women_pct"]) for t in s["templates"]}}
    drift = max(float(np.max(np.abs(np.array(by[d, t]["baseline_women_pct"]) - per_template["baseline"][t])))
                for d in draws for t in s["templates"])
    for d in draws:
        per_template[f"grounded, draw {d}"] = {t: np.array(by[d, t]["grounded_women_pct"]) for t in s["templates"]}
    arms = {arm: np.mean(list(by_t.values()), axis=0) for arm, by_t in per_template.items()}
    return np.array(s["bls_women_pct"]), arms, per_template, drift


def _binary(m) -> list:
    return [[x, 100.0 - x] for x in m]


def describe(m, b, pivot: float, resamples: int) -> dict:
    """One arm's metrics (eval/occupation/metrics.py) with intervals, and the degeneracy figures as points."""
    cm = M.category_metrics(m, b, pivot, resamples, 0)
    dm = M.distribution_metrics(_binary(m), _binary(b), resamples, 0)
    out = {key: est.to_dict() for key, est in {**cm, **dm}.items()}
    out.update(mean_pct=float(np.mean(m)), sd_pp=float(np.std(m)), at_extremes=M.share_at_extremes(m, EXTREME_PP),
               min_pct=float(np.min(m)), max_pct=float(np.max(m)))
    return out


def summarise(results) -> dict:
    from fairalign.eval.stats import bootstrap_ci

    s = results["settings"]
    b, arms, per_template, drift = shares(results)
    resamples, pivot = s["resamples"], s["all_workers_women_pct"]
    grounded = [a for a in arms if a != "baseline"]
    references = {"BLS itself": b, f"constant {pivot:g}% (all workers)": np.full_like(b, pivot),
                  "constant 50%": np.full_like(b, 50.0)}
    out = {"draws": len(grounded), "baseline_drift_pp": drift,
           "arms": {a: describe(m, b, pivot, resamples) for a, m in {**arms, **references}.items()}}
    deltas = {}
    for a in grounded:
        deltas[a] = {"delta_mae_pp": M.paired_delta_mae(arms["baseline"], arms[a], b, resamples, 0).to_dict(),
                     "delta_jsd_bits": M.paired_delta_jsd(_binary(arms["baseline"]), _binary(arms[a]), _binary(b),
                                                          resamples, 0).to_dict(),
                     "error_fell": float(np.mean(np.abs(arms[a] - b) < np.abs(arms["baseline"] - b)))}
    # Every draw at once: per occupation, the mean over draws of its error (the expected error under a random
    # draw of k facts), bootstrapped over occupations with the draws kept together (the occupations are the units).
    error = {a: np.abs(m - b) for a, m in arms.items()}
    jsd = {a: np.array([M.jsd_bits(p, q) for p, q in zip(_binary(m), _binary(b))]) for a, m in arms.items()}
    for a in arms:  # the per-occupation values average to the metrics' own definitions
        assert math.isclose(float(np.mean(error[a])), M.mae_pp(arms[a], b), rel_tol=1e-9, abs_tol=1e-12)
    g_error, g_jsd = np.mean([error[a] for a in grounded], axis=0), np.mean([jsd[a] for a in grounded], axis=0)
    idx = list(range(len(b)))

    def boot(values):
        return bootstrap_ci(idx, lambda rs: float(np.mean(values[rs])), num_resamples=resamples, seed=0).to_dict()

    out["all_draws"] = {"mae_pp": boot(g_error), "jsd_bits": boot(g_jsd),
                        "delta_mae_pp": boot(g_error - error["baseline"]),
                        "delta_jsd_bits": boot(g_jsd - jsd["baseline"]),
                        "error_fell": float(np.mean(g_error < error["baseline"]))}
    out["deltas"] = deltas
    out["templates"] = {a: {t: {"mean_pct": float(np.mean(m)), "sd_pp": float(np.std(m)),
                                "at_extremes": M.share_at_extremes(m, EXTREME_PP), "spearman": M.spearman(m, b),
                                "mae_pp": M.mae_pp(m, b)} for t, m in by_t.items()}
                        for a, by_t in per_template.items()}
    return out


# ------------------------------------------------------------------------------------------------ report
def _est(e: dict, digits: int) -> str:
    if e["value"] is None:
        return "n/a"
    if e["low"] is None:
        return f"{e['value']:.{digits}f}"
    return f"{e['value']:.{digits}f} [{e['low']:.{digits}f}, {e['high']:.{digits}f}]"


def _num(x, digits: int) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def tables(results) -> dict:
    s = results["settings"]
    sm = results.get("summary") or summarise(results)
    check = results["held_out_check"]
    ext = f"≤ {s['extreme_pp']:g} or ≥ {100 - s['extreme_pp']:g} % women"
    rows = []
    for arm, d in sm["arms"].items():
        is_bls = arm == "BLS itself"
        is_const = arm.startswith("constant")
        rows.append([arm, "0" if is_bls else _est(d["mae_pp"], 1), "0" if is_bls else _est(d["jsd_bits"], 3),
                     "0" if is_bls else _est(d["signed_error_pp"], 1),
                     "1" if is_bls else ("–" if is_const else _est(d["spearman"], 2)),
                     "1" if is_bls else _est(d["amplification_slope"], 2),
                     f"{d['mean_pct']:.1f}", f"{d['sd_pp']:.1f}", f"{d['min_pct']:.1f}–{d['max_pct']:.1f}",
                     f"{100 * d['at_extremes']:.0f}%", d["mae_pp"]["n"]])
        if arm == list(sm["arms"])[sm["draws"]] and sm["draws"] > 1:  # after the last draw: the draws together
            a = sm["all_draws"]
            rows.append([f"grounded, all {sm['draws']} draws", _est(a["mae_pp"], 1), _est(a["jsd_bits"], 3)]
                        + ["–"] * 7 + [a["mae_pp"]["n"]])
    main = harness.markdown_table(
        ["arm", "MAE (pp)", "mean JSD (bits)", "signed error (pp)", "Spearman", "slope on BLS", "mean share of women (%)",
         "SD over occupations (pp)", "range (%)", f"at an extreme ({ext})", "occupations"], rows)
    diff_rows = [[f"{arm} − baseline", _est(d["delta_mae_pp"], 1), _est(d["delta_jsd_bits"], 3),
                  f"{100 * d['error_fell']:.0f}%", d["delta_mae_pp"]["n"]] for arm, d in sm["deltas"].items()]
    a = sm["all_draws"]
    if sm["draws"] > 1:  # one draw: the same row again
        diff_rows.append([f"grounded, all {sm['draws']} draws − baseline", _est(a["delta_mae_pp"], 1),
                          _est(a["delta_jsd_bits"], 3), f"{100 * a['error_fell']:.0f}%", a["delta_mae_pp"]["n"]])
    diffs = harness.markdown_table(["paired difference (same occupations)", "Δ MAE (pp)", "Δ mean JSD (bits)",
                                    "occupations whose error fell", "occupations"], diff_rows)
    tpl_rows = [[t, arm, f"{d['mean_pct']:.1f}", f"{d['sd_pp']:.1f}", f"{100 * d['at_extremes']:.0f}%",
                 _num(d["spearman"], 2), f"{d['mae_pp']:.1f}"]
                for arm, by_t in sm["templates"].items() for t, d in by_t.items()]
    per_template = harness.markdown_table(["template", "arm", "mean P(woman) (%)", "SD over occupations (pp)",
                                           f"at an extreme ({ext})", "Spearman with BLS", "MAE (pp)"], tpl_rows)
    prompts = "chat template" if s["chat_template"] else "raw prompts"
    draws = f"{sm['draws']} draw{'s' * (sm['draws'] != 1)}"
    setting = (f"{s['model']}, BLS {s['bls_year']} (CPS Table 11), {s['selection']}; templates "
               f"{', '.join(s['templates'])}, {s['scoring']}, {prompts}; share of women = mean over the templates of "
               f"100·P(woman). Grounded: k = {s['k']} BLS facts per prompt, {draws} (seeds), holdout "
               f"\"{s['holdout']}\": {check['facts']} facts in {check['prompts']} prompts, "
               f"{check['about_a_scored_occupation']} about a scored occupation, "
               f"{check['about_the_asked_occupation']} about the asked one ({check['distinct_fact_occupations']} "
               f"distinct fact occupations from a pool of {check['pool']}). 95% percentile bootstrap intervals over "
               f"occupations ({s['resamples']} resamples), paired: the same occupations and resamples in every arm. "
               f"Baseline identical across draws to {sm['baseline_drift_pp']:.1e} pp.")
    if results.get("meta", {}).get("note"):
        setting = f"**{results['meta']['note']}**\n\n{setting}"
    notes = ("JSD: Jensen–Shannon divergence of (women, men) per occupation, base 2. Slope: OLS slope of the model "
             "share on the BLS share (1 = follows the table, 0 = ignores the occupation). The constant rows need no "
             "model: a predictor that knows nothing about occupations.")
    jobs = results.get("cost", {}).get("jobs", [])
    if jobs:
        notes += (f" Cost: {sum(j['cpu_s'] for j in jobs):,.0f} CPU s over {len(jobs)} jobs (estimated beforehand: "
                  f"{results['cost']['estimated_cpu_s']:,} CPU s).")
    figure = "![model vs BLS share of women per occupation, without and with BLS facts](repro/occupation.png)"
    return {NAME: "\n\n".join([setting, main, notes, diffs, "Per template (points, no intervals):", per_template,
                                 figure])}


def plot(results, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b, arms, _, _ = shares(results)
    sm = results.get("summary") or summarise(results)
    pivot = results["settings"]["all_workers_women_pct"]
    grounded = [a for a in arms if a != "baseline"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharex=True, sharey=True)
    panels = ((axes[0], ["baseline"], f"baseline: MAE {_est(sm['arms']['baseline']['mae_pp'], 1)} pp"),
              (axes[1], grounded, f"grounded ({len(grounded)} draw{'s' * (len(grounded) != 1)}): MAE "
                                  f"{_est(sm['all_draws']['mae_pp'], 1)} pp"))
    colours = ["tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for ax, arm_list, title in panels:
        ax.plot([0, 100], [0, 100], color="grey", linewidth=1, label="model = BLS")
        ax.axhline(pivot, color="grey", linestyle=":", linewidth=1, label=f"all workers ({pivot:g}%)")
        if arm_list != ["baseline"]:  # the baseline faintly behind the grounded points: where each one moved from
            ax.scatter(b, arms["baseline"], s=8, color="lightgrey", label="baseline")
        for i, arm in enumerate(arm_list):
            ax.scatter(b, arms[arm], s=12, alpha=0.6, marker="os^Dv"[i % 5],
                       color="tab:blue" if arm == "baseline" else colours[i % len(colours)], label=arm)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xlabel("BLS share of women (%)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("model share of women (%)")
    s = results["settings"]
    fig.suptitle(f"{s['model']}: share of women per occupation vs BLS {s['bls_year']}, {len(b)} occupations\n"
                 f"model share = mean over the templates of 100·P(woman); grounded: k = {s['k']} BLS facts, "
                 f"holdout {s['holdout']}", fontsize=9)
    harness.save_figure(fig, path)


def main(argv=None):
    return harness.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
