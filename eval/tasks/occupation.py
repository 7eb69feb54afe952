"""Task module: occupational bias against BLS CPS Table 11 (`fairalign.eval.occupation`). Declared in
occupation.yaml; `Protocol` below is the schema of its `protocol:` section (templates, dimensions, selection).

Headline metrics are the evaluation's own headline (`OccupationalBiasResult.headline`): per scoring method
(generate / loglikelihood), dimension and reported category, the mean absolute error of the model's share
against the BLS share over occupations,
    mae_pp = mean_o |m_o - b_o|   (percentage points; ideal 0)
Unit: the occupation. Each occupation's value holds (m_o, b_o) per "dimension.category", so MAE can be
recomputed on a resample of occupations (the `mean_abs_error_pp` aggregation).
The demographics -> occupation direction and the other metrics (signed error, Spearman, amplification,
TVD, JSD) are kept in `details` with their intervals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import fairalign.eval.suite.sources  # noqa: F401  (registers the data sources)
from fairalign.eval.registry import aggregation
from fairalign.eval.tasks.common import SkipTask, TaskOutput, jsonable

METHOD_LABEL = {"generate": "generated answers", "loglikelihood": "answer-word probabilities"}


# ------------------------------------------------------------------------------- the protocol's schema
@dataclass
class Selection:
    detailed_only: bool
    require_published: bool
    exclude_patterns: list[str]


@dataclass
class Category:
    bls: str | None = None            # a column of Table 11
    complement_of: str | None = None  # 100 - that category's share


@dataclass
class Dimension:
    categories: dict[str, Category]
    renormalize: bool = False


@dataclass
class Template:
    id: str
    dimension: str
    form: str
    text: str
    probes: dict[str, list[str]]


@dataclass
class OccupationTemplate:
    id: str
    form: str
    text: str


@dataclass
class GroupNoun:
    dimension: str
    noun: str


@dataclass
class Debias:
    header: str


@dataclass
class Protocol:
    selection: Selection
    dimensions: dict[str, Dimension]
    templates: list[Template]
    group_nouns: dict[str, GroupNoun]
    occupation_templates: list[OccupationTemplate]
    debias: Debias

    def to_dict(self) -> dict:
        """The plain mapping `fairalign.eval.occupation` reads (a category lists only the keys it sets)."""
        from dataclasses import asdict

        def clean(x):
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items() if v is not None}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x

        return clean(asdict(self))


def eval_config(settings: dict, suite: dict):
    from fairalign.eval.occupation import OccupationEvalConfig

    names = {f.name for f in fields(OccupationEvalConfig)}
    given = {k: v for k, v in settings.items() if k in names and v is not None}
    given["directions"] = tuple(given["directions"])
    # the suite shows one progress bar of its own
    return OccupationEvalConfig(**given, seed=suite["seed"], num_resamples=suite["num_resamples"], progress=False)


def run(system, source, settings: dict, ctx) -> TaskOutput:
    from dataclasses import asdict

    from fairalign.eval.occupation import evaluate_occupational_bias
    from fairalign.eval.occupation.evaluate import categories_of_interest

    if settings["scoring"] in ("loglikelihood", "both") and not system.can_score:
        raise SkipTask(f"system {system.spec.name!r} gives no log-likelihoods (a plain callable); "
                       "set occupation.scoring: generate (or auto) to score its answers")
    cfg = {k: v for k, v in asdict(eval_config(settings, ctx.suite)).items() if k not in ("debias", "k", "progress")}
    cfg["directions"] = tuple(cfg["directions"])
    result = evaluate_occupational_bias(system.lm(settings["use_chat_template"]), source.data, progress=False,
                                        occupations=settings["occupations"], templates=settings["templates"], **cfg)
    task = ctx.spec.protocol.to_dict()
    metrics, units = {}, {}
    for method, dims in result.conditions["baseline"].get("o2d", {}).items():
        per_occ: dict[str, dict] = {}
        for dim, res in dims.items():
            for row in res["per_occupation"]:
                values = per_occ.setdefault(row["occupation"], {})
                for cat in categories_of_interest(dim, task):
                    values[f"{dim}.{cat}"] = [_num(row[f"model_{cat}"]), _num(row[f"bls_{cat}"])]
            for cat in categories_of_interest(dim, task):
                key = f"{method}.{dim}.{cat}.mae_pp"
                metrics[key] = ctx.entry(key, res["metrics"][cat]["mae_pp"], unit="occupations",
                                         units=f"occupations.{method}",
                                         label=f"MAE {dim} {cat} (pp), {METHOD_LABEL[method]}")
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


@aggregation("mean_abs_error_pp")
def _mae(key: str):
    """fn(list of occupation values) -> MAE (pp) of the category `key` names (method.dimension.category.mae_pp)."""
    from fairalign.eval.occupation.metrics import mae_pp

    method, dim, cat, _ = key.split(".")
    col = f"{dim}.{cat}"

    def mae(values):
        pairs = [v[col] for v in values if col in v]
        nan = float("nan")
        return mae_pp([nan if m is None else m for m, _ in pairs], [nan if b is None else b for _, b in pairs])

    return mae
