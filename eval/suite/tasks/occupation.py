"""Suite task: occupational bias against BLS CPS Table 11 (`fairalign.eval.occupation`).

Headline metrics are the evaluation's own headline (`OccupationalBiasResult.headline`): per scoring method
(generate / loglikelihood), dimension and reported category, the mean absolute error of the model's share
against the BLS share over occupations,
    mae_pp = mean_o |m_o - b_o|   (percentage points; ideal 0)
Unit: the occupation. Each occupation's value holds (m_o, b_o) per "dimension.category", so MAE can be
recomputed on a resample of occupations (`fairalign.eval.occupation.metrics.mae_pp`).
The demographics -> occupation direction and the other metrics (signed error, Spearman, amplification,
TVD, JSD) are kept in `details` with their intervals.
"""
from __future__ import annotations

import math
from dataclasses import asdict, fields

from fairalign.eval.suite.sources import bls_table
from fairalign.eval.suite.tasks.common import TaskOutput, jsonable, metric_entry

NAME = "occupation"
METHOD_LABEL = {"generate": "generated answers", "loglikelihood": "answer-word probabilities"}


def _eval_config(config):
    from fairalign.eval.occupation import OccupationEvalConfig

    s = config.occupation
    names = {f.name for f in fields(OccupationEvalConfig)}
    given = {f.name: getattr(s, f.name) for f in fields(s) if f.name in names and getattr(s, f.name) is not None}
    # the suite shows one progress bar of its own
    return OccupationEvalConfig(**given, seed=config.seed, num_resamples=config.num_resamples, progress=False)


def resolve(config) -> dict:
    from fairalign.eval.occupation.templates import load_task

    s = config.occupation
    settings = {k: v for k, v in asdict(_eval_config(config)).items() if k != "progress"}  # display only
    return {"task_version": load_task()["version"], **settings, "occupations": s.occupations,
            "templates": s.templates, "use_chat_template": s.use_chat_template, "bls": s.bls}


def load_data(config):
    """The BLS table; the occupation selection is made here too, so a bad name fails before any model loads."""
    from fairalign.eval.occupation import select_occupations

    source = bls_table(config.occupation.bls)
    cfg = _eval_config(config)
    names = select_occupations(source.data, config.occupation.occupations, cfg.min_employment_thousands,
                               cfg.max_occupations)
    source.provenance.update(rows_used=len(names), rows_total=len(source.data))
    return source


def run(system, source, settings: dict, ctx) -> TaskOutput:
    from fairalign.eval.occupation import evaluate_occupational_bias
    from fairalign.eval.occupation.evaluate import categories_of_interest
    from fairalign.eval.occupation.templates import load_task

    cfg = {k: v for k, v in settings.items() if k not in ("task_version", "occupations", "templates", "use_chat_template",
                                                          "bls", "debias", "k")}
    cfg["directions"] = tuple(cfg["directions"])
    result = evaluate_occupational_bias(system.lm(settings["use_chat_template"]), source.data,
                                        occupations=settings["occupations"], templates=settings["templates"], **cfg)
    task = load_task()
    metrics, units = {}, {}
    for method, dims in result.conditions["baseline"].get("o2d", {}).items():
        per_occ: dict[str, dict] = {}
        for dim, res in dims.items():
            for row in res["per_occupation"]:
                values = per_occ.setdefault(row["occupation"], {})
                for cat in categories_of_interest(dim, task):
                    values[f"{dim}.{cat}"] = [_num(row[f"model_{cat}"]), _num(row[f"bls_{cat}"])]
            for cat in categories_of_interest(dim, task):
                metrics[f"{method}.{dim}.{cat}.mae_pp"] = metric_entry(
                    res["metrics"][cat]["mae_pp"], label=f"MAE {dim} {cat} (pp), {METHOD_LABEL[method]}",
                    unit="occupations", units=f"occupations.{method}", higher_is_better=False, ideal=0.0)
        units[f"occupations.{method}"] = {"unit": "occupation", "ids": list(per_occ), "values": list(per_occ.values())}
    return TaskOutput(metrics, units, _details(result), list(result.notes))


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _details(result) -> dict:
    """The result without per-occupation rows (those live in the per-task file's units)."""
    data = result.to_dict()
    for dirs in data["conditions"].values():
        for dims in dirs.get("o2d", {}).values():
            for res in dims.values():
                res.pop("per_occupation", None)
    keep = ("task", "task_version", "config", "bls", "headline", "conditions", "deltas", "notes")
    out = {k: data[k] for k in keep}
    out["occupations"] = [o["bls"] for o in data["occupations"]]
    out["templates"] = [t["id"] for t in data["templates"]]
    return jsonable(out)


def statistic(key: str):
    """fn(list of occupation values) -> MAE (pp) of one category under one method."""
    from fairalign.eval.occupation.metrics import mae_pp

    method, dim, cat, metric = key.split(".")
    if metric != "mae_pp":
        raise KeyError(f"occupation has no metric {key!r}")
    col = f"{dim}.{cat}"

    def mae(values):
        pairs = [v[col] for v in values if col in v]
        nan = float("nan")
        return mae_pp([nan if m is None else m for m, _ in pairs], [nan if b is None else b for _, b in pairs])

    return mae
