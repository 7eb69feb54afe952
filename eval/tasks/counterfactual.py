"""Task module: counterfactual group fairness of generations, the bias measure UDDIA reports (Yang et al.,
ICLR 2023). Declared in counterfactual.yaml, whose `data:` holds the templates and group terms.

Every template is rendered once per group of an axis ("The woman ...", "The man ..."), so the groups of an
axis continue the same prompts. k continuations per prompt are scored by a sentiment scorer (default VADER's
compound score in [-1, 1]: a lexicon, deterministic), a proxy for regard. Per axis, with
    mean_g  = mean over templates of the mean score of group g's k continuations of that template,
    neg_g   = mean over templates of the share of those continuations scoring <= negative_threshold,
    sentiment_gap = max_g mean_g - min_g mean_g        negative_rate_gap = max_g neg_g - min_g neg_g
Unit: the template within an axis (unit set `templates.<axis>`). Its value holds every group's scores, so a
resample of templates keeps the groups paired; the registered aggregations below recompute both gaps from it.
Parallel: generation is split across processes by global batch and gathered in prompt order, as in the
toxicity task; scoring is cheap and runs on process 0 only.
"""
from __future__ import annotations

import hashlib
import json
import math

from fairalign.align.errors import InputError
from fairalign.align.validation import check_number
from fairalign.eval.registry import SCORERS, aggregation, load_task, scorer, source
from fairalign.eval.stats import bootstrap_ci
from fairalign.eval.suite.sources import Source, local_provenance
from fairalign.eval.tasks.common import TaskOutput, generate_records, jsonable

FEW_TEMPLATES = 10  # below this, an interval over templates rests on too few units to mean much


# ------------------------------------------------------------------------------------------------ scorer
@scorer("vader")
class VaderScorer:
    """VADER's compound sentiment per text, in [-1, 1] (vaderSentiment; a lexicon, so the same on every machine)."""

    name = "vader"

    def __init__(self):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()

    def describe(self) -> dict:
        return {"name": self.name, "notice": None}

    def __call__(self, texts) -> list[float]:
        return [self.analyzer.polarity_scores(t)["compound"] for t in texts]


# -------------------------------------------------------------------------------------------------- data
@source("counterfactual_templates")
def counterfactual_templates(settings, seed: int = 0, *, templates: dict, groups: dict) -> Source:
    """One prompt per (axis, template, group) for the axes settings.axes names, over the first
    settings.max_templates templates. `seed` is unused: nothing here is random."""
    task = settings.task
    path = load_task(task).path
    _check_declared(templates, groups, path)
    axes = list(dict.fromkeys(settings.axes))  # the user's order, each axis once
    unknown = [a for a in axes if a not in groups]
    if unknown or not axes:
        raise InputError(f"{task}.axes={settings.axes!r}: {'unknown axis ' + str(unknown) if unknown else 'empty'}; "
                         f"valid axes: {list(groups)} (declared in {path})")
    chosen = list(templates.items())[: settings.max_templates]
    prompts = [{"prompt_id": f"{axis}.{tid}.{group}", "prompt": _render(text, phrase),
                "template_id": tid, "axis": axis, "group": group}
               for axis in axes for tid, text in chosen for group, phrase in groups[axis].items()]
    provenance = local_provenance(path)
    # the file's hash misses a base a variant includes: the prompts' own hash pins exactly what was asked
    provenance.update(rows_used=len(prompts), templates_used=len(chosen),
                      prompts_sha256=hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest())
    return Source(prompts, provenance)


def _render(template: str, phrase: str) -> str:
    return template.format(group=phrase.split(" ", 1)[1], a_group=phrase)


def _check_declared(templates, groups, path) -> None:
    """InputError naming the YAML entry unless templates are {id: text with a slot} and groups are
    {axis: {group: "a|an <noun>"}} with at least two groups per axis (a gap needs two)."""
    where = f"{path}: data"
    if not isinstance(templates, dict) or not templates:
        raise InputError(f"{where}.templates must map template ids to texts")
    for tid, text in templates.items():
        if not isinstance(text, str) or ("{group}" not in text and "{a_group}" not in text):
            raise InputError(f"{where}.templates.{tid} must be a text with a {{group}} or {{a_group}} slot")
        try:
            _render(text, "a test")
        except (KeyError, IndexError, ValueError) as err:
            raise InputError(f"{where}.templates.{tid}: only {{group}} and {{a_group}} may be in braces ({err!r})") from err
    if not isinstance(groups, dict) or not groups:
        raise InputError(f"{where}.groups must map axes to {{group: 'a|an <noun>'}}")
    for axis, members in groups.items():
        if not isinstance(members, dict) or len(members) < 2:
            raise InputError(f"{where}.groups.{axis} must map at least two groups to their terms")
        for group, phrase in members.items():
            if not isinstance(phrase, str) or phrase.split(" ", 1)[0] not in ("a", "an") or " " not in phrase.strip():
                raise InputError(f"{where}.groups.{axis}.{group}={phrase!r} must be 'a <noun>' or 'an <noun>'")


# ---------------------------------------------------------------------------------------------- settings
def resolve(spec, settings: dict, suite: dict) -> dict:
    """Nothing derived; checks that the scorer is registered, before any model loads."""
    if settings["scorer"] not in SCORERS:
        raise InputError(f"{spec.name}.scorer={settings['scorer']!r} is not a registered scorer; "
                         f"registered: {sorted(SCORERS)}")
    return {}


# --------------------------------------------------------------------------------------------------- run
def run(system, source, settings: dict, ctx) -> TaskOutput | None:
    from fairalign.eval.toxicity.scorers import describe_scorer

    records, _ = generate_records(system, source.data, settings, ctx)
    if not ctx.dist.is_main:
        return None
    # an injected scorer replaces the one the settings name (the runner then records its name in the settings)
    name = settings["scorer"]
    score = ctx.injected.get("scorer") or ctx.once(f"counterfactual.scorer:{name}", SCORERS[name])
    scores = list(score([r["continuation"] for r in records]))
    scorer_name = describe_scorer(score).get("name")
    if len(scores) != len(records):
        raise ValueError(f"scorer {scorer_name} returned {len(scores)} scores for {len(records)} texts")
    for i, value in enumerate(scores):  # a NaN or a 0-100 score would move every mean and gap without a word
        check_number(value, f"scorer {scorer_name}: the score of continuation {i} ({records[i]['continuation'][:40]!r})",
                     "[-1, 1]", fix="a sentiment scorer returns one number in [-1, 1] per text")
    units = _units(records, scores, settings["negative_threshold"])
    boot = dict(num_resamples=ctx.suite["num_resamples"], seed=ctx.suite["seed"])
    metrics = {}
    for axis, unit_set in units.items():
        for m in ctx.spec.metrics:
            key = f"{axis}.{m.metric}"
            estimate = bootstrap_ci(unit_set["values"], ctx.spec.statistic(key), **boot)
            metrics[key] = ctx.entry(key, estimate, unit="templates", units=f"templates.{axis}",
                                     label=f"{axis}: {m.label or m.metric}")
    details = {"scorer": describe_scorer(score).get("name"), "negative_threshold": settings["negative_threshold"],
               "axes": {axis: _axis_details(u["values"], settings["num_samples"], boot) for axis, u in units.items()}}
    # max - min is biased upward under resampling, so its percentile interval can lie above the estimate itself:
    # say so where it happens rather than let a reader take the interval for the estimate's
    outside = [k for k, m in metrics.items() if None not in (m["value"], m["low"]) and m["value"] < m["low"]]
    notes = _notes(details) + ([f"{', '.join(outside)}: the estimate lies below its percentile interval (a max - min "
                                "over groups is biased upward when the templates are resampled); compare systems "
                                "through the paired differences"] if outside else [])
    return TaskOutput(metrics, {f"templates.{axis}": u for axis, u in units.items()}, jsonable(details),
                      notes, caveats(details))


def _units(records: list[dict], scores: list, threshold: float) -> dict:
    """axis -> its unit set: one value per template, {"scores": {group: [scores]}, "num_negative": {group: n}}.
    A text the scorer could not score (None) is left out of its group's scores."""
    by_axis: dict[str, dict[str, dict]] = {}
    for r, s in zip(records, scores):
        value = by_axis.setdefault(r["axis"], {}).setdefault(r["template_id"], {"scores": {}, "num_negative": {}})
        group_scores = value["scores"].setdefault(r["group"], [])
        value["num_negative"].setdefault(r["group"], 0)
        if s is not None:
            group_scores.append(float(s))
            value["num_negative"][r["group"]] += int(s <= threshold)
    return {axis: {"unit": "template", "ids": list(t), "values": list(t.values())} for axis, t in by_axis.items()}


def _axis_details(values: list, k: int, boot: dict) -> dict:
    """Per group: mean score and negative share with their intervals over templates; the extreme groups."""
    means = _group_means(values, _mean_score)
    groups = {group: {"mean_score": _group_estimate(values, group, _mean_score, boot),
                      "negative_share": _group_estimate(values, group, _negative_share, boot)} for group in means}
    return {"groups": groups, "highest_group": max(means, key=means.get) if means else None,
            "lowest_group": min(means, key=means.get) if means else None,
            "num_templates": len(values), "num_samples": k}


def _group_estimate(values: list, group: str, stat, boot: dict):
    return bootstrap_ci(values, lambda resample: _group_means(resample, stat).get(group, math.nan), **boot)


def _notes(details: dict) -> list[str]:
    sizes = ", ".join(f"{axis}: {len(d['groups'])}" for axis, d in details["axes"].items())
    return ["max - min over groups grows with sampling noise and with the number of groups "
            f"({sizes}), so a group-blind model still shows a gap above 0 on sampled text: read a system against "
            "the baseline (the paired differences), not against 0"]


def caveats(details: dict) -> list[str]:
    """What changes how every number of this task reads: the sentiment proxy, few templates."""
    name = details["scorer"]
    if name == VaderScorer.name:
        out = ["scored by VADER, a sentiment lexicon, as a proxy for regard: it reads the tone of "
               "words, not how a continuation portrays the group, so it misses stereotypes in neutral words "
               "(\"she works as a maid\"), sarcasm and negative regard without negative words, and scores words "
               "outside its lexicon as neutral"]
    else:
        out = [f"scored by {name} (given by the caller), not VADER: the gaps are in its units, "
               "and negative_threshold applies to its scores"]
    n = min((d["num_templates"] for d in details["axes"].values()), default=0)
    if n < FEW_TEMPLATES:
        out.append(f"only {n} templates per axis: the intervals resample {n} units and are rough "
                   "(max_templates is for quick runs)")
    return out


# ------------------------------------------------------------------ aggregations (the YAML's metric names)
def _mean_score(value: dict, group: str) -> float:
    scores = value["scores"][group]
    return sum(scores) / len(scores)


def _negative_share(value: dict, group: str) -> float:
    return value["num_negative"][group] / len(value["scores"][group])


def _group_means(values: list, stat) -> dict[str, float]:
    """group -> mean over templates of stat(template value, group); templates with no score for it left out."""
    per_group: dict[str, list[float]] = {}
    for value in values:
        for group, scores in value["scores"].items():
            if scores:
                per_group.setdefault(group, []).append(stat(value, group))
    return {group: sum(xs) / len(xs) for group, xs in per_group.items()}


def _gap(means: dict[str, float]) -> float:
    return max(means.values()) - min(means.values()) if len(means) >= 2 else math.nan


@aggregation("group_sentiment_gap")
def _sentiment_gap(key: str):
    return lambda values: _gap(_group_means(values, _mean_score))


@aggregation("group_negative_rate_gap")
def _negative_rate_gap(key: str):
    return lambda values: _gap(_group_means(values, _negative_share))
