"""Suite task: toxicity (RealToxicityPrompts protocol, `fairalign.eval.toxicity`) plus fluency and diversity.

Unit: the prompt. Each prompt's value holds its scored samples, its continuations' (NLL, tokens) under the
perplexity evaluator and its Dist-n, so every metric can be recomputed on a resample of prompts:
    expected_max_toxicity, toxicity_probability, per_continuation_toxic_rate   (TOXICITY_AGGREGATIONS)
    perplexity, token_weighted_perplexity   (fluency.py formulas; one evaluator LM for every system)
    dist_1..3                                (mean over prompts of distinct n-grams / n-grams)
Generation and scoring go through the evaluation's resumable JSONL caches under the system's folder, one
cache per set of generation settings, so an interrupted run resumes mid-task.
"""
from __future__ import annotations

import math

from fairalign.eval.stats import bootstrap_ci
from fairalign.eval.suite.sources import toxicity_prompts
from fairalign.eval.suite.systems import fingerprint
from fairalign.eval.suite.tasks.common import TaskOutput, jsonable, metric_entry

NAME = "toxicity"
FLUENCY = ("perplexity", "token_weighted_perplexity")


def _pick(value, default):
    return default if value is None else value


def resolve(config) -> dict:
    from fairalign.eval.toxicity.task import load_task

    task, s = load_task(), config.toxicity
    g = task.generation_kwargs
    ppl = _pick(s.ppl_model, task.fluency.evaluator)
    scorer = _pick(s.scorer, task.scorer.name)
    classifier = scorer.lower() not in ("perspective", "profanity")  # only classifiers read a model and a label
    return {
        "task": task.task, "task_version": task.version,
        "num_samples": _pick(s.num_samples, g.num_samples), "max_new_tokens": _pick(s.max_new_tokens, g.max_new_tokens),
        "top_p": _pick(s.top_p, g.top_p), "temperature": _pick(s.temperature, g.temperature), "do_sample": g.do_sample,
        "scorer": scorer, "scorer_model": _pick(s.scorer_model, task.scorer.model) if classifier else None,
        "scorer_label": _pick(s.scorer_label, task.scorer.label) if classifier else None,
        "threshold": _pick(s.threshold, task.threshold),
        "ppl_model": None if ppl is None or str(ppl).lower() == "none" else ppl,
        "distinct_n": list(task.fluency.distinct_n), "group_by": list(_pick(s.group_by, task.group_by)),
        "use_chat_template": s.use_chat_template, "batch_size": config.batch_size, "seed": config.seed,
        "num_resamples": config.num_resamples,
        "prompts": {k: getattr(s, k) for k in ("prompts", "challenging_only", "limit", "shuffle_seed")},
    }


def load_data(config):
    from fairalign.eval.toxicity.task import load_task

    return toxicity_prompts(config.toxicity, load_task())


def build_scorer(settings: dict):
    """The scorer the settings name (built once per suite by the runner)."""
    from fairalign.eval.toxicity.scorers import SCORERS, get_scorer

    name = settings["scorer"]
    if name.lower() in ("auto", "hf-classifier"):
        return get_scorer(name.lower(), model_id_or_path=settings["scorer_model"], label=settings["scorer_label"])
    if name.lower() in SCORERS:
        return get_scorer(name.lower())
    return get_scorer(name, label=settings["scorer_label"])


def run(system, source, settings: dict, ctx) -> TaskOutput:
    from fairalign.eval.toxicity import compute_toxicity_metrics, generate_continuations, score_records
    from fairalign.eval.toxicity.cache import FORMAT as CACHE_FORMAT
    from fairalign.eval.toxicity.fluency import continuation_nll, distinct_n
    from fairalign.eval.toxicity.scorers import describe_scorer
    from fairalign.eval.toxicity.task import load_task

    gen_keys = ("num_samples", "max_new_tokens", "top_p", "temperature", "do_sample", "seed", "use_chat_template", "batch_size")
    gen = {k: settings[k] for k in gen_keys}
    # One cache folder per system, generation settings and cache format (an older format's folder is left alone).
    cache = ctx.workdir / "cache" / fingerprint({"system": ctx.identity, **gen, "cache_format": CACHE_FORMAT})[:12]
    records = generate_continuations(
        system.lm(settings["use_chat_template"]), source.data, num_samples=gen["num_samples"],
        max_new_tokens=gen["max_new_tokens"], top_p=gen["top_p"], batch_size=gen["batch_size"],
        cache_path=cache / "generations.jsonl", temperature=gen["temperature"], do_sample=gen["do_sample"],
        seed=gen["seed"], progress=False,
    )
    scorer = ctx.scorer()
    info = describe_scorer(scorer)
    scored = score_records(records, scorer, cache_path=cache / f"scores-{fingerprint(info.get('name'))[:8]}.jsonl")
    result = compute_toxicity_metrics(scored, settings["threshold"], settings["num_resamples"], settings["seed"],
                                      settings["group_by"], scorer_info=info, include_rows=False)

    by_prompt: dict[str, list[dict]] = {}
    for r in scored:
        by_prompt.setdefault(str(r["prompt_id"]), []).append(r)
    nll = None
    if settings["ppl_model"]:
        model, tokenizer = ctx.ppl_evaluator(settings["ppl_model"])
        flat = [r for rows in by_prompt.values() for r in rows]
        nll = iter(continuation_nll(model, tokenizer, [(r["prompt"], r["continuation"]) for r in flat], batch_size=16))
    values = []
    for rows in by_prompt.values():
        texts = [r["continuation"] for r in rows]
        scores = [r["toxicity"] for r in rows if r["toxicity"] is not None]
        values.append({
            "scores": scores,
            "num_samples": len(rows),
            "num_toxic": sum(s >= settings["threshold"] for s in scores),  # ">=" as the task (Gehman et al.)
            "nll": [list(x) for x in (next(nll) for _ in rows) if x[1] > 0] if nll is not None else None,
            "dist": {str(n): distinct_n(texts, n) for n in settings["distinct_n"]},
        })
    task = load_task()
    metrics = {}
    for name in result.METRICS:
        metrics[name] = _entry(task, name, getattr(result, name))
    boot = dict(num_resamples=settings["num_resamples"], seed=settings["seed"])
    if nll is not None:
        with_tokens = [v for v in values if v["nll"]]
        for name in FLUENCY:
            metrics[name] = _entry(task, name, bootstrap_ci(with_tokens, statistic(name), **boot))
    for n in settings["distinct_n"]:
        name = f"dist_{n}"
        defined = [v for v in values if v["dist"][str(n)] is not None]
        metrics[name] = _entry(task, name, bootstrap_ci(defined, statistic(name), **boot))
    details = jsonable(result.to_dict(include_rows=False))
    details["evaluator"] = settings["ppl_model"]
    notes = list(result.notes) + ([info["notice"]] if info.get("notice") else [])
    return TaskOutput(metrics, {"prompts": {"unit": "prompt", "ids": list(by_prompt), "values": values}}, details, notes)


def _entry(task, name: str, estimate) -> dict:
    spec = task.metric(name)
    unit = "prompts" if name not in FLUENCY else "prompts (perplexity: mean over their continuations)"
    return metric_entry(estimate, label=name.replace("_", " "), unit=unit, units="prompts",
                        higher_is_better=spec.higher_is_better, ideal=spec.ideal)


def statistic(key: str):
    """fn(list of prompt values) -> the metric (prompts with no scored sample are excluded, as in the task)."""
    from fairalign.eval.toxicity.fluency import _mean_ppl, _token_weighted_ppl
    from fairalign.eval.toxicity.metrics import TOXICITY_AGGREGATIONS, PromptScores

    if key in TOXICITY_AGGREGATIONS:
        fn = TOXICITY_AGGREGATIONS[key]

        def toxicity_stat(values):
            prompts = [PromptScores(str(i), None, tuple(v["scores"]), v["num_samples"], v["num_toxic"])
                       for i, v in enumerate(values) if v["scores"]]
            return fn(prompts)

        return toxicity_stat
    if key == "perplexity":
        return lambda values: _mean_ppl([v["nll"] for v in values if v.get("nll")])
    if key == "token_weighted_perplexity":
        return lambda values: _token_weighted_ppl([v["nll"] for v in values if v.get("nll")])
    if key.startswith("dist_"):
        n = key.split("_", 1)[1]

        def dist_stat(values):
            xs = [v["dist"][n] for v in values if v["dist"].get(n) is not None]
            return sum(xs) / len(xs) if xs else math.nan

        return dist_stat
    raise KeyError(f"toxicity has no metric {key!r}")
