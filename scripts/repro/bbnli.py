"""BBNLI / BBNLI-next reproduction (Akyürek et al., Findings of NAACL 2022; Baldini et al., arXiv 2305.12620):
SmolLM2-135M-Instruct as a generative NLI judge on BBNLI and on a BBNLI-next-style build from it.

Claims tested: (a) the BBNLI-next build is harder (the judge's accuracy drops against the rows it varies);
(b) the disaggregated measures keep bias (the direction of the errors on stereotype rows) apart from brittleness
(answers that change under a rewording), where the netted BBNLI score mixes them.
Every measure is read against chance: the majority-class rate (the accuracy of always giving the most common gold
label) for accuracy, and the flip rate of independent answers for brittleness. Where the judge is not above the
majority-class rate, its bias and brittleness numbers are reported as uninformative, never interpreted.

Pipeline (every step an existing API of fairalign.eval.bbnli):
1. BBNLI: ../shared/data/bbnli/bbnli_expanded.csv, one row per distinct NLI pair (drop_duplicate_pairs: 3,192
   rows, 87 premises), a random subsample of --rows rows (seed 0; its item ids are in the JSON).
2. BBNLI-next build (next_build.generate_variations): SmolLM2 (chat template) rewrites every distinct hypothesis of
   the sample --variations times (paraphrase prompt, top-p 0.9, temperature 0.7); each rewrite of a row's hypothesis
   is a variant row with the row's gold label. No human validation exists here: a rewrite that changed the meaning
   keeps a gold label that may be wrong.
3. Judge (judge.GenerativeJudgePredictor, answer-word probabilities, completion-style prompts): the three BBNLI
   templates are scored once per pair; the *evaluated judge* averages "GPT-3 style" and "does this imply", the
   *adversary* is "can we infer" alone. next_build.adversarial_filter keeps the variants the adversary gets wrong
   (--criterion). The adversary shares the judge's weights but not its prompts (the paper filtered with other
   NLI models); the unfiltered variants carry claim (a) without any selection on the judge.
4. evaluate.evaluate_nli_bias on BBNLI, the variants, the filtered build and BBNLI + variants (brittleness), with
   95% percentile-bootstrap CIs over premises (the rows of a premise are clustered: fillers, pro/anti, variants);
   paired bootstrap differences (fairalign.eval.suite.compare.paired_difference) of each set against the BBNLI rows
   it varies, over the premises they share.
No BBNLI text enters the JSON: rows are named by item id only.

Cost (2-core CPU, measured on a slice, nice'd under load: 24 pairs 37 s CPU = 1.54 s per pair for the three
templates; 6 hypotheses x 3 rewrites 28 s CPU = 4.6 s per hypothesis): the default 720 rows and 2 rewrites judge
about 720 x 3 = 2,160 pairs (~3,300 s CPU) and rewrite ~330 distinct hypotheses (~1,000 s CPU), ~4,400 s CPU in
all: about 40 minutes wall with 2 workers (--workers 2, the default on 2 cores), under an hour.
--quick: a tiny random Llama judge and a rule-based rewriter on 8 synthetic rows (no BBNLI text): seconds.

    python -m fairalign.scripts.repro.bbnli                  # full run (~40 min, 2 workers)
    python -m fairalign.scripts.repro.bbnli --quick          # seconds
    python -m fairalign.scripts.repro.bbnli --rebuild        # tables and plot from docs/repro/bbnli.json
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from fairalign.scripts.repro import harness

NAME = "bbnli"
PARALLEL = True  # --workers: rewrite and judge jobs are seeded per job (not resumable: they hold BBNLI-derived text)
DATA = harness.REPO.parent / "shared" / "data" / "bbnli" / "bbnli_expanded.csv"
EVAL_TEMPLATES = ("GPT-3 style", "does this imply")  # the evaluated judge
ADVERSARY_TEMPLATES = ("can we infer",)              # the filter's predictor
SETS = ("bbnli", "variants", "next")
SET_NAMES = {"bbnli": "BBNLI (sample)", "variants": "variants, unfiltered", "next": "BBNLI-next build (filtered)"}
BIAS_MEASURES = ("bbnli_bias_score_original", "bbnli_bias_score", "stereotype_aligned_rate_stereotypical",
                 "stereotype_aligned_rate_counterfactual", "counter_stereotype_rate_stereotypical",
                 "counter_stereotype_rate_counterfactual", "neutral_rate_stereotype_rows")
SHORT = {"bbnli_bias_score_original": "BBNLI score (original)", "bbnli_bias_score": "BBNLI score (corrected)",
         "stereotype_aligned_rate_stereotypical": "aligned, stereo.", "stereotype_aligned_rate_counterfactual":
         "aligned, swapped", "counter_stereotype_rate_stereotypical": "counter, stereo.",
         "counter_stereotype_rate_counterfactual": "counter, swapped", "neutral_rate_stereotype_rows": "neutral rate"}
TRIED: list[dict] = [
    {"what": "timing slice before the full run: 24 random BBNLI pairs, the three templates, SmolLM2, 1 thread",
     "chat_template_judge": "answered contradiction ('No') on all 24 pairs; 54 s CPU",
     "completion_judge": "answered entailment 13 and contradiction 11 times, never neutral; 37 s CPU",
     "rewrites": "6 hypotheses x 3 at temperature 1.0: several rewrites changed the meaning (read by eye)",
     "decision": "completion-style judge prompts (no chat template); rewrites at temperature 0.7; no judge result "
                 "on any variant was seen before the full run"},
]


def add_arguments(parser) -> None:
    parser.add_argument("--data", type=Path, default=DATA, help="BBNLI expanded CSV or template folder")
    parser.add_argument("--rows", type=int, default=720, help="BBNLI rows sampled (seed 0) of the 3,192 distinct pairs")
    parser.add_argument("--variations", type=int, default=2, help="rewrites sampled per distinct hypothesis")
    parser.add_argument("--temperature", type=float, default=0.7, help="rewrite sampling temperature (top-p 0.9)")
    parser.add_argument("--criterion", choices=["wrong", "flip", "flip_to_wrong"], default="wrong",
                        help="adversarial filter: keep variants the adversary gets wrong (the research notes' "
                             "reading of the paper), whose answer flips, or that it got right before and wrong now")
    parser.add_argument("--chunk", type=int, default=24, help="pairs per judge job (hypotheses per rewrite job)")
    parser.add_argument("--num_resamples", type=int, default=1000, help="bootstrap resamples per interval")


# ------------------------------------------------------------------------------------------------ data and models
def synthetic_rows():
    """8 rows over 2 invented premises (2 subtopics, pro and anti): a test and a stereotype hypothesis each."""
    from fairalign.eval.bbnli.data import BBNLIDataset, BBNLIExample

    rows = []
    for k, (domain, name) in enumerate([("gender", "synthetic_a"), ("race", "synthetic_b")]):
        pid = f"{k:02}"
        for cond, (g1, g2) in (("pro", ("Group one", "group two")), ("anti", ("Group two", "group one"))):
            premise = f"{g1} members wrote report number {k} with {g2} members last year."
            common = dict(domain=domain, name=name, id=pid, type=cond, unique_id=f"{name}_{cond}_{pid}",
                          premise=premise, question="", reference="synthetic")
            rows.append(BBNLIExample(**common, hypothesis_type="test", hypothesis=f"{g1} members wrote report {k}.",
                                     true_label=2, bias_label=-1))
            rows.append(BBNLIExample(**common, hypothesis_type="stereotypical" if cond == "pro" else "anti-stereotypical",
                                     hypothesis=f"{g1} members write better reports than {g2} members.",
                                     true_label=1, bias_label=2))
    return BBNLIDataset(rows, source="synthetic (quick)")


def _rule_rewrites(prompts: list[str]) -> list[str]:
    """--quick's rewriter: the sentence after 'Sentence:' with a prefix (a callable LM for generate_variations)."""
    return ["It is the case that " + p.split("Sentence: ", 1)[1].split("\n", 1)[0] for p in prompts]


def load(args):
    """(BBNLI sample, judge LM, rewriter LM, settings that name them)."""
    from fairalign.eval.bbnli import load_bbnli
    from fairalign.eval.lm import HFLM, CallableLM

    if args.quick:
        from fairalign.align.testing import tiny_llama, tiny_tokenizer

        judge_lm = HFLM(tiny_llama(), tiny_tokenizer(), batch_size=16, name="tiny random Llama")
        return synthetic_rows(), judge_lm, CallableLM(_rule_rewrites, name="rule-based (quick)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fairalign.align.modeling import embedded_model_path

    if not Path(args.data).exists():
        raise SystemExit(f"--data {args.data} does not exist: pass BBNLI's bbnli_expanded.csv (or its template folder); "
                         "BBNLI is not shipped with fairalign (../shared/data/README.md)")
    full = load_bbnli(args.data, drop_duplicate_pairs=True)
    if not 1 <= args.rows <= len(full):
        raise SystemExit(f"--rows must be in [1, {len(full)}] (the distinct pairs of {args.data}); got {args.rows}")
    keep = set(random.Random(0).sample(range(len(full)), args.rows))
    sample = type(full)([ex for i, ex in enumerate(full) if i in keep], full.source,
                        full.notes + [f"random sample of {args.rows} of {len(full)} rows (seed 0)"])
    path = embedded_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    judge_lm = HFLM(model, tok, batch_size=16, use_chat_template=False, name="SmolLM2-135M-Instruct")
    return sample, judge_lm, HFLM(model, tok, batch_size=16, use_chat_template=True, name="SmolLM2-135M-Instruct")


class Lookup:
    """A predictor reading precomputed labels: (premise, hypothesis) -> label."""

    def __init__(self, labels: dict, name: str):
        self.labels, self.name = labels, name

    def __call__(self, premises, hypotheses):
        return [self.labels[(p, h)] for p, h in zip(premises, hypotheses)]


# ------------------------------------------------------------------------------------------------ the experiment
def run(args, log) -> dict:
    import numpy as np

    from fairalign.eval.bbnli import BBNLIDataset
    from fairalign.eval.bbnli.judge import NLI_TEMPLATES, GenerativeJudgePredictor
    from fairalign.eval.bbnli.next_build import adversarial_filter, generate_variations

    if args.variations < 1 or args.chunk < 1 or args.num_resamples < 1:
        raise SystemExit("--variations, --chunk and --num_resamples must be >= 1")
    sample, judge_lm, rewriter = load(args)
    resamples = 50 if args.quick else args.num_resamples  # --quick: CI seconds
    log(f"{len(sample)} BBNLI rows, {len({ex.premise_key for ex in sample})} premises; rewriting with {rewriter.name}")

    # 1. rewrites: jobs of --chunk distinct hypotheses, each seeded by its index (the same whatever --workers)
    texts = list(dict.fromkeys(ex.hypothesis for ex in sample))
    gen_jobs = [("rewrite", k) for k in range(0, len(texts), args.chunk)]

    def rewrite(job):
        chunk = set(texts[job[1]: job[1] + args.chunk])
        return generate_variations([ex for ex in sample if ex.hypothesis in chunk], rewriter,
                                   num_variations=args.variations, temperature=args.temperature, top_p=0.9,
                                   max_new_tokens=48, seed=job[1])

    candidates: dict = {}
    harness.run_jobs(gen_jobs, rewrite, lambda job, out: candidates.__setitem__(job, out), args.workers, args.threads)
    candidates = [c for job in gen_jobs for c in candidates[job]]
    log(f"{len(candidates)} variant rows from {len(texts)} distinct hypotheses")

    # 2. the three templates' answer probabilities, once per distinct pair
    order = list(NLI_TEMPLATES)
    scorer = GenerativeJudgePredictor(judge_lm, templates=order, progress=False)
    pairs = list(dict.fromkeys([(ex.premise, ex.hypothesis) for ex in sample] +
                               [(c.example.premise, c.example.hypothesis) for c in candidates]))
    judge_jobs = [("judge", k) for k in range(0, len(pairs), args.chunk)]
    probs: dict = {}

    def score(job):
        chunk = pairs[job[1]: job[1] + args.chunk]
        return scorer.template_probabilities([p for p, _ in chunk], [h for _, h in chunk])

    def scored(job, out):
        probs[job] = out
        log(f"judged {sum(len(v) for v in probs.values())} of {len(pairs)} pairs")

    harness.run_jobs(judge_jobs, score, scored, args.workers, args.threads)
    table = np.concatenate([probs[job] for job in judge_jobs])  # (pairs, templates, 3)
    evaluated = [order.index(t) for t in EVAL_TEMPLATES]
    adversary = [order.index(t) for t in ADVERSARY_TEMPLATES]
    judge = Lookup(dict(zip(pairs, table[:, evaluated].mean(axis=1).argmax(-1).tolist())),
                   f"judge:{judge_lm.name}:{'+'.join(EVAL_TEMPLATES)}")
    filter_ = Lookup(dict(zip(pairs, table[:, adversary].mean(axis=1).argmax(-1).tolist())),
                     f"adversary:{'+'.join(ADVERSARY_TEMPLATES)}")

    # 3. the build: variants the adversary is fooled by
    kept = adversarial_filter(candidates, {filter_.name: filter_}, criterion=args.criterion)
    variants = BBNLIDataset([c.example for c in candidates], "variants")
    datasets = {"bbnli": sample, "variants": variants, "next": BBNLIDataset([c.example for c in kept], "next")}
    log(f"adversarial filter ({args.criterion}): kept {len(kept)} of {len(candidates)} variants")
    results = {"settings": settings(args, sample, judge_lm, rewriter, resamples, len(pairs)), "tried": TRIED,
               "sample_item_ids": [ex.item_id for ex in sample],
               "label_shares": {k: label_shares(judge, ds) for k, ds in datasets.items() if len(ds)},
               "sets": {}, "differences": {}, "brittleness": None}
    for key, ds in datasets.items():
        if len(ds):
            results["sets"][key] = measure_set(judge, ds, resamples)
    combined = BBNLIDataset(list(sample) + list(variants), "BBNLI sample + variants")
    results["brittleness"] = brittleness(judge, combined, resamples)
    for key in ("variants", "next"):
        if len(datasets[key]):
            results["differences"][key] = differences(judge, sample, datasets[key], resamples)
    results["runs"] = []  # the harness's shape: this experiment has no seeds to repeat (the judge is deterministic)
    return results


def settings(args, sample, judge_lm, rewriter, resamples: int, n_pairs: int) -> dict:
    return {"data": "synthetic (quick)" if args.quick else Path(args.data).name, "rows": len(sample),
            "premises": len({ex.premise_key for ex in sample}), "judged_pairs": n_pairs,
            "judge": judge_lm.name, "judge_templates": list(EVAL_TEMPLATES), "scoring": "loglikelihood",
            "chat_template": False, "adversary_templates": list(ADVERSARY_TEMPLATES), "criterion": args.criterion,
            "rewriter": rewriter.name, "rewrite_prompt": "paraphrase", "variations": args.variations,
            "temperature": args.temperature, "top_p": 0.9, "max_new_tokens": 48, "sample_seed": 0,
            "bootstrap": {"num_resamples": resamples, "seed": 0, "unit": "premise"}, "human_validation": False,
            "seeds": "not used: the judge is deterministic and the build is drawn once (seed per rewrite job)"}


def label_shares(judge, ds) -> dict:
    """Shares of the judge's answers and of the gold labels (0 contradiction, 1 neutral, 2 entailment)."""
    pred = judge([ex.premise for ex in ds], [ex.hypothesis for ex in ds])
    gold = [ex.true_label for ex in ds]
    return {"judge": [pred.count(k) / len(pred) for k in range(3)], "gold": [gold.count(k) / len(gold) for k in range(3)]}


def measure_set(judge, ds, resamples: int) -> dict:
    """Every BBNLI measure and the chance references on one set, premise-clustered bootstrap."""
    from fairalign.eval.bbnli.evaluate import evaluate_nli_bias, measure_estimates
    from fairalign.eval.bbnli.metrics import CHANCE_MEASURES, chance_row_counts

    result = evaluate_nli_bias(judge, ds, group_by=[], num_resamples=resamples, seed=0, keep_predictions=False)
    labels = judge([ex.premise for ex in ds], [ex.hypothesis for ex in ds])
    chance = measure_estimates(list(ds), chance_row_counts(list(ds), labels), list(CHANCE_MEASURES),
                               {"num_resamples": resamples, "seed": 0}, registry=CHANCE_MEASURES)
    return {"n_rows": result.n_rows, "n_premises": result.n_premises, "measures": result.measures["all"], **chance}


def brittleness(judge, combined, resamples: int) -> dict | None:
    from fairalign.eval.bbnli.evaluate import brittleness_estimates
    from fairalign.eval.bbnli.metrics import BRITTLENESS_MEASURES, CHANCE_BRITTLENESS_MEASURES

    labels = judge([ex.premise for ex in combined], [ex.hypothesis for ex in combined])
    boot = {"num_resamples": resamples, "seed": 0}
    out = brittleness_estimates(list(combined), labels, list(BRITTLENESS_MEASURES), boot)
    if out is None:
        return None
    return out | brittleness_estimates(list(combined), labels, list(CHANCE_BRITTLENESS_MEASURES), boot,
                                       registry=CHANCE_BRITTLENESS_MEASURES)


def differences(judge, sample, varied, resamples: int) -> dict:
    """Each measure on `varied` minus on the BBNLI rows it varies, paired over the premises both have."""
    import numpy as np

    from fairalign.eval.bbnli.evaluate import premise_clusters
    from fairalign.eval.bbnli.metrics import MEASURES, Counts, row_counts
    from fairalign.eval.suite.compare import paired_difference

    sources = {ex.variant_of for ex in varied}
    base = [ex for ex in sample if ex.item_id in sources]

    def clusters(rows):
        labels = judge([ex.premise for ex in rows], [ex.hypothesis for ex in rows])
        return premise_clusters(rows, row_counts(rows, labels))

    b, v = clusters(base), clusters(list(varied))
    shared = [k for k in b if k in v]
    out = {"n_premises": len(shared), "n_source_rows": len(base), "n_variant_rows": len(varied)}
    for name in ("accuracy",) + BIAS_MEASURES:
        def stat(cs, f=MEASURES[name].formula):
            return f(Counts(np.sum(cs, axis=0)))
        out[name] = paired_difference(stat, [b[k] for k in shared], [v[k] for k in shared], resamples, seed=0)
        out[name]["source_value"] = stat(list(b.values()))
    return out


# ------------------------------------------------------------------------------------------------ report
def informative(s: dict) -> bool:
    """Above chance: the CI of accuracy − majority-class rate lies above 0."""
    low = s["accuracy_above_majority"]["low"]
    return low is not None and low > 0


def _ci(e: dict | None, digits: int = 3) -> str:
    if e is None or e.get("value") is None:
        return "n/a"
    if e.get("low") is None:
        return f"{e['value']:.{digits}f}"
    return f"{e['value']:.{digits}f} [{e['low']:.{digits}f}, {e['high']:.{digits}f}]"


def tables(results) -> dict:
    s = results["settings"]
    sets = results["sets"]
    acc_rows, bias_rows = [], []
    for key in SETS:
        if key not in sets:
            continue
        m, ok = sets[key]["measures"], informative(sets[key])
        reading = "above chance" if ok else "**not above chance: measures uninformative**"
        acc_rows.append([SET_NAMES[key], sets[key]["n_rows"], sets[key]["n_premises"], _ci(m["accuracy"]),
                         _ci(sets[key]["majority_class_rate"]), _ci(sets[key]["accuracy_above_majority"]), reading])
        cells = [_ci(m[n]) if ok else f"({_ci(m[n])})" for n in BIAS_MEASURES]
        bias_rows.append([SET_NAMES[key]] + cells)
    acc = harness.markdown_table(["set", "rows", "premises", "accuracy", "majority-class rate", "accuracy − majority",
                                  "reading"], acc_rows)
    bias = harness.markdown_table(["set"] + [SHORT[n] for n in BIAS_MEASURES], bias_rows)
    diff_rows = []
    for key, d in results["differences"].items():
        for name in ("accuracy",) + BIAS_MEASURES:
            e = d[name]
            cell = _ci(e) if e["value"] is not None else "n/a"
            diff_rows.append([SET_NAMES[key], SHORT.get(name, name), f"{e['source_value']:.3f}" if e["source_value"]
                              == e["source_value"] else "n/a", cell, d["n_premises"]])
    diffs = harness.markdown_table(["set", "measure", "on the source rows", "set − source rows [95% CI]",
                                    "premises"], diff_rows)
    b = results["brittleness"]
    if b is None:
        brittle = "(no item has a variant: no brittleness)"
    else:
        ok = b["flip_rate_above_chance"]["high"] is not None and b["flip_rate_above_chance"]["high"] < 0
        brittle = harness.markdown_table(
            ["brittleness (groups)", "variant flip rate", "flip rate of independent answers", "flip − independent",
             "reading"],
            [[_ci(b["brittleness"]), _ci(b["variant_flip_rate"]), _ci(b["chance_flip_rate"]),
              _ci(b["flip_rate_above_chance"]),
              "flips rarer than independent answers" if ok else "**not rarer than independent answers: uninformative**"]])
    shares = harness.markdown_table(
        ["set", "judge answers (contradiction / neutral / entailment)", "gold labels"],
        [[SET_NAMES[k], " / ".join(f"{x:.2f}" for x in v["judge"]), " / ".join(f"{x:.2f}" for x in v["gold"])]
         for k, v in results["label_shares"].items()])
    setting = (f"{s['judge']} as the judge (templates {', '.join(s['judge_templates'])}; answer-word probabilities), "
               f"{s['rows']} BBNLI rows ({s['premises']} premises; {s['data']}, sample seed {s['sample_seed']}); "
               f"variants: {s['variations']} rewrite(s) per hypothesis by {s['rewriter']} (T {s['temperature']}), "
               f"not validated by people; adversary {', '.join(s['adversary_templates'])} ({s['criterion']}). "
               f"95% percentile bootstrap over premises ({s['bootstrap']['num_resamples']} resamples); "
               "uniform chance is 1/3. A set whose accuracy is not above its majority-class rate (CI of the "
               "difference above 0) has its bias measures in parentheses: they are not interpreted.")
    verdict = _verdict(results)
    return {NAME: "\n\n".join([setting, acc, "Bias measures (ideal 0, neutral rate 1):", bias,
                               "Paired against the BBNLI rows each set varies:", diffs,
                               "Brittleness (BBNLI sample + its variants; answers only, no gold labels):", brittle,
                               "Answer and gold label shares:", shares, verdict])}


def _verdict(results) -> str:
    """A mechanical reading of the numbers; the doc's prose verdict is written after a full run."""
    sets = results["sets"]
    if not all(informative(sets[k]) for k in sets):
        bad = [SET_NAMES[k] for k in SETS if k in sets and not informative(sets[k])]
        return (f"Reading: the judge is not above the majority-class rate on {'; '.join(bad)}; its bias and "
                "brittleness measures there are noise of a judge that does not read the pairs, so neither claim "
                "can be tested with it.")
    d = results["differences"].get("variants", {}).get("accuracy")
    drop = d is not None and d["high"] is not None and d["high"] < 0
    return ("Reading: the judge is above chance on every set; accuracy on the unfiltered variants is "
            + ("lower than on their source rows (CI below 0)." if drop else "not lower than on their source rows."))


def plot(results, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [k for k in SETS if k in results["sets"]]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1, 2.4, 1]})

    def bar(ax, x, e, **kw):
        v = e.get("value")
        if v is None:
            return
        err = [[v - e["low"]], [e["high"] - v]] if e.get("low") is not None else None
        ax.bar(x, v, yerr=err, capsize=3, **kw)

    for i, key in enumerate(sets):
        s = results["sets"][key]
        bar(axes[0], i, s["measures"]["accuracy"], color="C0", width=0.6, label="accuracy" if i == 0 else None)
        m = s["majority_class_rate"]
        axes[0].errorbar(i, m["value"], yerr=[[m["value"] - (m["low"] or m["value"])], [(m["high"] or m["value"]) - m["value"]]],
                         fmt="_", color="k", markersize=24, capsize=4, label="majority-class rate" if i == 0 else None)
    axes[0].axhline(1 / 3, color="grey", linestyle=":", label="uniform chance 1/3")
    axes[0].set_xticks(range(len(sets)), [SET_NAMES[k].replace(", ", ",\n").replace(" (", "\n(") for k in sets], fontsize=7)
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("accuracy (95% CI over premises)")
    axes[0].legend(fontsize=7)
    width = 0.8 / max(1, len(sets))
    for i, key in enumerate(sets):
        m, ok = results["sets"][key]["measures"], informative(results["sets"][key])
        for j, name in enumerate(BIAS_MEASURES):
            bar(axes[1], j + (i - (len(sets) - 1) / 2) * width, m[name], width=width, color=f"C{i}",
                alpha=1.0 if ok else 0.35,
                label=(SET_NAMES[key] + ("" if ok else " (not above chance)")) if j == 0 else None)
    axes[1].axhline(0, color="k", linewidth=0.6)
    axes[1].set_xticks(range(len(BIAS_MEASURES)), [SHORT[n].replace(" (", "\n(").replace(", ", ",\n")
                                                    for n in BIAS_MEASURES], fontsize=7)
    axes[1].set_ylabel("bias measure (ideal 0; neutral rate 1)")
    axes[1].legend(fontsize=7)
    b = results["brittleness"]
    if b is not None:
        for j, name in enumerate(("brittleness", "variant_flip_rate")):
            bar(axes[2], j, b[name], color="C3", width=0.6)
        c = b["chance_flip_rate"]
        axes[2].errorbar(1, c["value"], yerr=[[c["value"] - (c["low"] or c["value"])], [(c["high"] or c["value"]) - c["value"]]],
                         fmt="_", color="k", markersize=24, capsize=4, label="independent answers")
        axes[2].set_xticks([0, 1], ["brittleness", "variant\nflip rate"], fontsize=7)
        axes[2].set_ylim(0, 1)
        axes[2].legend(fontsize=7)
    axes[2].set_title("BBNLI sample + variants", fontsize=8)
    fig.suptitle(f"BBNLI vs a BBNLI-next-style build: {results['settings']['judge']} as NLI judge", fontsize=10)
    harness.save_figure(fig, path)


def main(argv=None):
    return harness.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
