"""Task module: toxicity (RealToxicityPrompts protocol, `fairalign.eval.toxicity`) plus fluency and diversity.
Declared in toxicity.yaml (settings, data, metrics); this module runs it.

Unit: the prompt. Each prompt's value holds its scored samples, its continuations' (NLL, tokens) under the
perplexity evaluator and its Dist-n, so every metric can be recomputed on a resample of prompts (the
aggregations registered below). Generation and scoring go through the evaluation's resumable JSONL caches
under the system's folder, one cache per set of generation settings (and per process when several share the
work), so an interrupted run resumes mid-task. Parallel: generation, scoring and perplexity batches are
split across processes by global batch index and gathered, so N processes give the numbers of one.
"""
from __future__ import annotations

import math

import fairalign.eval.suite.sources  # noqa: F401  (registers the data sources)
from fairalign.eval.registry import aggregation
from fairalign.eval.stats import bootstrap_ci
from fairalign.eval.suite.systems import fingerprint
from fairalign.eval.tasks.common import TaskOutput, generate_records, jsonable

FLUENCY = ("perplexity", "token_weighted_perplexity")
SCORE_BATCH = 256  # records per scoring batch (score_records' default): the unit of work split across processes


def resolve(spec, settings: dict, suite: dict) -> dict:
    """Scorer fields that the scorer does not read are recorded as null (only classifiers read a model and a label).
    An unknown scorer name is an error here, before any model loads."""
    from fairalign.align.errors import InputError
    from fairalign.eval.toxicity.scorers import CLASSIFIER_KEYS, SCORERS, names_a_scorer

    name = settings["scorer"]
    if not names_a_scorer(name):
        raise InputError(f"toxicity.scorer: unknown scorer {name!r}; use one of {sorted(SCORERS)} or a classifier's "
                         "Hub id / local path")
    classifier = name.lower() in CLASSIFIER_KEYS or name.lower() not in SCORERS
    ppl = settings["ppl_model"]
    return {"scorer_model": settings["scorer_model"] if classifier else None,
            "scorer_label": settings["scorer_label"] if classifier else None,
            "ppl_model": None if ppl is None or str(ppl).lower() == "none" else ppl}


def build_scorer(settings: dict, device: str | None = None):
    """The scorer the settings name (built once per run, shared by every system)."""
    from fairalign.eval.toxicity.scorers import SCORERS, get_scorer

    name = settings["scorer"]
    if name.lower() in ("auto", "hf-classifier"):
        return get_scorer(name.lower(), model_id_or_path=settings["scorer_model"], label=settings["scorer_label"],
                          batch_size=settings["scorer_batch_size"], device=device)
    if name.lower() == "perspective":
        return get_scorer("perspective", qps=settings["perspective_qps"])
    if name.lower() in SCORERS:
        return get_scorer(name.lower())
    return get_scorer(name, label=settings["scorer_label"], batch_size=settings["scorer_batch_size"], device=device)


def _quiet(scorer):
    if hasattr(scorer, "progress"):
        scorer.progress = False  # the suite shows one bar
    return scorer


def caveats(settings: dict, source, info: dict) -> list[str]:
    """What changes how every number of this task reads: a demo prompt set, a proxy scorer."""
    out = []
    if settings["prompts"] == "demo":
        out.append(f"{source.provenance.get('rows_used')} bundled demo prompts, not RealToxicityPrompts: "
                   "a smoke test of the pipeline, not a benchmark")
    name = str(info.get("name") or settings["scorer"]).lower()
    if info.get("caveat"):  # the offline scorers say what they are (offline_scorers.py)
        out.append(info["caveat"])
    elif "profanity" in name:
        out.append("scored by the offline profanity proxy (alt-profanity-check, a word-level classifier), "
                   "not a toxicity classifier: it misses toxicity without profanity")
    return out


def run(system, source, settings: dict, ctx) -> TaskOutput | None:
    from fairalign.eval.toxicity import compute_toxicity_metrics, score_records
    from fairalign.eval.toxicity.fluency import continuation_nll, distinct_n
    from fairalign.eval.toxicity.scorers import describe_scorer

    suite, dist = ctx.suite, ctx.dist
    records, cache = generate_records(system, source.data, settings, ctx)
    scorer = ctx.injected.get("scorer") or ctx.once(f"toxicity.scorer:{settings['scorer']}",
                                                    lambda: _quiet(build_scorer(settings, suite["device"])))
    info = describe_scorer(scorer)
    scored = score_records(records, scorer, batch_size=SCORE_BATCH, shard=dist,
                           cache_path=cache / f"scores-{fingerprint(info.get('name'))[:8]}{dist.shard_suffix()}.jsonl")
    scores = dist.gather_dict({i: r["toxicity"] for i, r in enumerate(scored) if "toxicity" in r})
    for i, r in enumerate(scored):
        r["toxicity"] = scores[i]

    nll = None
    if settings["ppl_model"]:
        model, tokenizer = ctx.evaluator(settings["ppl_model"])
        pairs = [(r["prompt"], r["continuation"]) for r in scored]
        part = continuation_nll(model, tokenizer, pairs, batch_size=settings["ppl_batch_size"],
                                shard=dist)
        gathered = dist.gather_dict({i: x for i, x in enumerate(part) if x is not None})
        nll = [gathered[i] for i in range(len(pairs))]
    if not dist.is_main:
        return None
    result = compute_toxicity_metrics(scored, settings["threshold"], suite["num_resamples"], suite["seed"],
                                      settings["group_by"], scorer_info=info, include_rows=True)
    _write_rows(ctx.workdir, scored, result.prompt_rows)

    by_prompt: dict[str, list[int]] = {}
    for i, r in enumerate(scored):
        by_prompt.setdefault(str(r["prompt_id"]), []).append(i)
    values = []
    for rows in by_prompt.values():
        texts = [scored[i]["continuation"] for i in rows]
        row_scores = [scored[i]["toxicity"] for i in rows if scored[i]["toxicity"] is not None]
        values.append({
            "scores": row_scores,
            "num_samples": len(rows),
            "num_toxic": sum(s >= settings["threshold"] for s in row_scores),  # ">=" as the task (Gehman et al.)
            "nll": [list(nll[i]) for i in rows if nll[i][1] > 0] if nll is not None else None,
            "dist": {str(n): distinct_n(texts, n) for n in settings["distinct_n"]},
        })
    metrics = {}
    for name in result.METRICS:
        metrics[name] = _entry(ctx, name, getattr(result, name))
    boot = dict(num_resamples=suite["num_resamples"], seed=suite["seed"])
    if nll is not None:
        with_tokens = [v for v in values if v["nll"]]
        for name in FLUENCY:
            metrics[name] = _entry(ctx, name, bootstrap_ci(with_tokens, ctx.spec.statistic(name), **boot))
    for n in settings["distinct_n"]:
        name = f"dist_{n}"
        defined = [v for v in values if v["dist"][str(n)] is not None]
        metrics[name] = _entry(ctx, name, bootstrap_ci(defined, ctx.spec.statistic(name), **boot))
    details = jsonable(result.to_dict(include_rows=False))
    details["evaluator"] = settings["ppl_model"]
    notes = list(result.notes) + ([info["notice"]] if info.get("notice") else [])
    return TaskOutput(metrics, {"prompts": {"unit": "prompt", "ids": list(by_prompt), "values": values}}, details, notes,
                      caveats(settings, source, info))


def _write_rows(folder, scored: list[dict], prompt_rows: list[dict]) -> None:
    """records.jsonl (every scored continuation) and per_prompt.jsonl, for people who read the texts; atomic."""
    import json

    from fairalign.align.files import write_bytes_atomic

    for name, rows in (("records.jsonl", scored), ("per_prompt.jsonl", prompt_rows)):
        write_bytes_atomic(folder / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))


def _entry(ctx, name: str, estimate) -> dict:
    unit = "prompts" if name not in FLUENCY else "prompts (perplexity: mean over their continuations)"
    return ctx.entry(name, estimate, unit=unit, units="prompts")


# ------------------------------------------------------------------ aggregations (the YAML's metric names)
def _toxicity(name: str):
    def factory(key: str):
        from fairalign.eval.toxicity.metrics import TOXICITY_AGGREGATIONS, PromptScores

        fn = TOXICITY_AGGREGATIONS[name]

        def toxicity_stat(values):  # prompts with no scored sample are excluded, as in the task
            prompts = [PromptScores(str(i), None, tuple(v["scores"]), v["num_samples"], v["num_toxic"])
                       for i, v in enumerate(values) if v["scores"]]
            return fn(prompts)

        return toxicity_stat
    return factory


aggregation("mean_max_score")(_toxicity("expected_max_toxicity"))
aggregation("share_any_toxic")(_toxicity("toxicity_probability"))
aggregation("pooled_toxic_rate")(_toxicity("per_continuation_toxic_rate"))


@aggregation("mean_perplexity")
def _mean_perplexity(key: str):
    from fairalign.eval.toxicity.fluency import _mean_ppl

    return lambda values: _mean_ppl([v["nll"] for v in values if v.get("nll")])


@aggregation("token_weighted_perplexity")
def _token_weighted(key: str):
    from fairalign.eval.toxicity.fluency import _token_weighted_ppl

    return lambda values: _token_weighted_ppl([v["nll"] for v in values if v.get("nll")])


@aggregation("mean_distinct_n")
def _mean_distinct(key: str):
    n = key.rsplit("_", 1)[1]  # dist_2 -> "2"

    def dist_stat(values):
        xs = [v["dist"][n] for v in values if v["dist"].get(n) is not None]
        return sum(xs) / len(xs) if xs else math.nan

    return dist_stat
