"""Task module: NLI bias on BBNLI (`fairalign.eval.bbnli`), each system prompted as an NLI judge. Declared in
bbnli.yaml; `Protocol` is the schema of its `protocol:` section.

Every BBNLI measure registered in `fairalign.eval.bbnli.metrics.MEASURES` is a formula of summed per-row
indicator counts. Unit: the source premise (its pro and anti rows, every filler), the cluster the
evaluation's own intervals resample. Each premise's value is its summed count vector, so a measure on a
resample of premises is `formula(Counts(sum of the drawn vectors))` (the `counts_formula` aggregation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import fairalign.eval.suite.sources  # noqa: F401  (registers the data sources)
from fairalign.eval.registry import aggregation
from fairalign.eval.tasks.common import SkipTask, TaskOutput, jsonable


@dataclass
class Bootstrap:
    num_resamples: int
    seed: int


@dataclass
class Protocol:
    bootstrap: Bootstrap
    table_group_by: list[str]


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

    settings = {**settings, "seed": ctx.suite["seed"]}
    lm = system.lm(settings["use_chat_template"])
    factory = ctx.injected.get("bbnli_predictor")
    if factory is not None:
        predictor = factory(system, lm, settings)
    elif settings["scoring"] == "loglikelihood" and not system.can_score:
        raise SkipTask(f"system {system.spec.name!r} gives no log-likelihoods (a plain callable); "
                       "set bbnli.scoring: generate to judge from its answers")
    else:
        predictor = build_predictor(lm, settings)
    result = evaluate_nli_bias(predictor, source.data, group_by=settings["group_by"],
                               num_resamples=ctx.suite["num_resamples"], seed=ctx.suite["seed"])
    field = getattr(predictor, "hypothesis_field", "hypothesis")
    examples = [ex for ex in source.data if getattr(ex, field).strip()]  # the rows evaluate_nli_bias scored
    if [ex.item_id for ex in examples] != [p["item_id"] for p in result.predictions]:
        raise RuntimeError("BBNLI predictions are not in row order; cannot rebuild per-premise counts")
    premises = premise_clusters(examples, row_counts(examples, [p["prediction"] for p in result.predictions]))
    metrics = {name: ctx.entry(name, est, unit="premises", units="premises")
               for name, est in result.measures["all"].items()}
    units = {"premises": {"unit": "premise", "ids": list(premises), "values": [v.tolist() for v in premises.values()]}}
    caveats = []
    if str(source.provenance.get("path") or "").endswith("demo_probes.csv"):
        caveats.append("the demo NLI probe set (a few dozen sentences of our own), not BBNLI: a smoke test, "
                       "not a benchmark")
    return TaskOutput(metrics, units, jsonable(result.to_dict()), list(result.notes), caveats)


@aggregation("counts_formula")
def _counts_formula(key: str):
    """fn(list of premise count vectors) -> the registered BBNLI measure on their sum."""
    from fairalign.eval.bbnli.metrics import MEASURES, Counts

    if key not in MEASURES:
        raise KeyError(f"bbnli has no counts measure {key!r}; registered: {sorted(MEASURES)}")
    formula = MEASURES[key].formula
    return lambda values: formula(Counts(np.sum(np.asarray(values, dtype=np.int64), axis=0)))


@aggregation("details_only")
def _details_only(key: str):
    """Measures over item groups (brittleness): reported in the task's details with their own intervals; they
    have no per-premise statistic, so the suite does not compare them."""
    def refuse(values):
        raise KeyError(f"{key} is reported in the task's details only; it has no per-unit statistic to compare")
    return refuse
