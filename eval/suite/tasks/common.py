"""What every suite task returns, and the context it runs in.

A task module (toxicity.py, occupation.py, bbnli.py) provides
    NAME                                  its key in `SuiteConfig.tasks`
    resolve(config) -> dict               the settings that will be used (task defaults filled in), model-free
    load_data(config) -> Source           raises `MissingData` when the data is not available
    run(system, source, settings, ctx) -> TaskOutput
    statistic(metric_key) -> fn(values) -> float   recomputes a metric from its units' values
The units (prompts, occupations, premises: the independent clusters its confidence intervals resample) are
stored with their per-unit values, so a comparison can resample the same units for two systems (paired).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fairalign.eval.stats import finite

LEVEL = 0.95  # every interval in the suite is a 95% interval (the evaluations' bootstrap / Wilson default)


class SkipTask(Exception):
    """This task cannot run for this system (e.g. log-likelihood scoring of a plain callable): skipped, with the reason."""


@dataclass
class TaskOutput:
    """metrics: key -> `metric_entry(...)`. units: unit-set name -> {"unit", "ids", "values"}. details: the
    evaluation's own result (JSON-ready), for people and plots. notes: caveats the report must carry."""

    metrics: dict[str, dict]
    units: dict[str, dict]
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class TaskContext:
    """Shared across systems within one run: the work folder of the (system, task) pair, and builders of
    things made once per suite (the toxicity scorer, the perplexity evaluator) or injected by the caller."""

    workdir: Path
    identity: dict
    scorer: Callable[[], object] | None = None
    ppl_evaluator: Callable[[str], tuple] | None = None
    bbnli_predictor: Callable | None = None


def metric_entry(estimate, *, label: str, unit: str, units: str, higher_is_better: bool | None,
                 ideal: float | None) -> dict:
    """An `Estimate` (or its dict) as a suite metric: value, 95% interval, n, interval method, and how to read it."""
    est = estimate.to_dict() if hasattr(estimate, "to_dict") else dict(estimate)
    return {"value": finite(est.get("value")), "low": finite(est.get("low")), "high": finite(est.get("high")),
            "level": LEVEL, "n": int(est.get("n") or 0), "method": est.get("method") or "bootstrap",
            "label": label, "unit": unit, "units": units, "higher_is_better": higher_is_better, "ideal": ideal}


def jsonable(x):
    """Estimates -> dicts with the interval level added; NaN/inf -> None; numpy scalars -> Python."""
    if hasattr(x, "to_dict") and hasattr(x, "low"):
        x = x.to_dict()
    if isinstance(x, dict):
        out = {str(k): jsonable(v) for k, v in x.items()}
        if {"value", "low", "high", "n"} <= set(out) and "level" not in out:
            out["level"] = LEVEL
        return out
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):  # numpy scalars and arrays
        return jsonable(x.tolist())
    if isinstance(x, float):
        return finite(x)
    return x
