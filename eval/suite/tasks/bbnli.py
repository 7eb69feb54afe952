"""Suite task: NLI bias on BBNLI (`fairalign.eval.bbnli`), each system prompted as an NLI judge.

Every BBNLI measure registered in `fairalign.eval.bbnli.metrics.MEASURES` is a formula of summed per-row
indicator counts. Unit: the source premise (its pro and anti rows, every filler), the cluster the
evaluation's own intervals resample. Each premise's value is its summed count vector, so a measure on a
resample of premises is `formula(Counts(sum of the drawn vectors))`.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np

from fairalign.eval.suite.sources import bbnli_dataset
from fairalign.eval.suite.tasks.common import SkipTask, TaskOutput, jsonable, metric_entry

NAME = "bbnli"


def resolve(config) -> dict:
    from fairalign.eval.bbnli.evaluate import load_task

    task = load_task()
    return {"task": task["task"], "task_version": task["version"], **asdict(config.bbnli), "seed": config.seed,
            "num_resamples": config.num_resamples}


def load_data(config):
    return bbnli_dataset(config.bbnli, config.seed)


def build_predictor(lm, settings: dict):
    """The system as a judge: `GenerativeJudgePredictor` over its LM."""
    from fairalign.eval.bbnli import GenerativeJudgePredictor

    return GenerativeJudgePredictor(lm, form=settings["form"], templates=settings["templates"], scoring=settings["scoring"],
                                    num_samples=settings["num_samples"], do_sample=settings["do_sample"],
                                    max_new_tokens=settings["max_new_tokens"], seed=settings["seed"],
                                    parsing=settings["parsing"], progress=False)


def run(system, source, settings: dict, ctx) -> TaskOutput:
    from fairalign.eval.bbnli import evaluate_nli_bias
    from fairalign.eval.bbnli.evaluate import premise_clusters
    from fairalign.eval.bbnli.metrics import row_counts

    lm = system.lm(settings["use_chat_template"])
    if ctx.bbnli_predictor is not None:
        predictor = ctx.bbnli_predictor(system, lm, settings)
    elif settings["scoring"] == "loglikelihood" and not system.can_score:
        raise SkipTask(f"system {system.spec.name!r} gives no log-likelihoods (a plain callable); "
                       "set bbnli.scoring: generate to judge from its answers")
    else:
        predictor = build_predictor(lm, settings)
    result = evaluate_nli_bias(predictor, source.data, group_by=settings["group_by"],
                               num_resamples=settings["num_resamples"], seed=settings["seed"])
    field = getattr(predictor, "hypothesis_field", "hypothesis")
    examples = [ex for ex in source.data if getattr(ex, field).strip()]  # the rows evaluate_nli_bias scored
    if [ex.item_id for ex in examples] != [p["item_id"] for p in result.predictions]:
        raise RuntimeError("BBNLI predictions are not in row order; cannot rebuild per-premise counts")
    premises = premise_clusters(examples, row_counts(examples, [p["prediction"] for p in result.predictions]))
    metrics = {}
    for name, est in result.measures["all"].items():
        info = result.metric_info[name]
        metrics[name] = metric_entry(est, label=name.replace("_", " "), unit="premises", units="premises",
                                     higher_is_better=info["higher_is_better"], ideal=info["ideal"])
    units = {"premises": {"unit": "premise", "ids": list(premises), "values": [v.tolist() for v in premises.values()]}}
    return TaskOutput(metrics, units, jsonable(result.to_dict()), list(result.notes))


def statistic(key: str):
    """fn(list of premise count vectors) -> the registered BBNLI measure on their sum."""
    from fairalign.eval.bbnli.metrics import MEASURES, Counts

    if key not in MEASURES:
        raise KeyError(f"bbnli has no metric {key!r}; registered: {sorted(MEASURES)}")
    formula = MEASURES[key].formula
    return lambda values: formula(Counts(np.sum(np.asarray(values, dtype=np.int64), axis=0)))
