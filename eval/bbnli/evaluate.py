"""`evaluate_nli_bias(predictor, dataset) -> NLIBiasResult`: every BBNLI measure with a 95% bootstrap CI.

The task (measures, subgroups, bootstrap settings) is declared in eval/tasks/bbnli.yaml. Each (premise, hypothesis)
pair is sent to the predictor once, even when the data repeats it (the released CSV repeats 450 pairs
that differ only in the QA question); the prediction is reused for every repeat.
Intervals: percentile bootstrap over premises (`BBNLIExample.premise_key`), resampling the premise's
pro and anti rows, fillers and variants together (`fairalign.eval.stats.bootstrap_ci`).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from fairalign.align.errors import InputError
from fairalign.align.validation import validate_fields
from fairalign.align.validation import check_types
from fairalign.eval.bbnli.data import BBNLIDataset, BBNLIExample, load_bbnli
from fairalign.eval.bbnli.judge import majority
from fairalign.eval.bbnli.metrics import BRITTLENESS_MEASURES, MEASURES, Counts, brittleness_counts, row_counts
from fairalign.eval.bbnli.predictors import check_labels
from fairalign.eval.bbnli.report import NLIBiasResult, environment
from fairalign.eval.stats import bootstrap_ci

TASK_FILE = Path(__file__).resolve().parents[1] / "tasks" / "bbnli.yaml"


def load_task(path: str | os.PathLike | None = None) -> dict:
    """The task declaration (eval/tasks/bbnli.yaml, checked by the task registry) as the plain dict this
    evaluation reads; every measure it lists must be registered in metrics.py."""
    from fairalign.eval.registry import load_task as load

    spec = load(path or "bbnli")
    known = set(MEASURES) | set(BRITTLENESS_MEASURES)
    unknown = [m.metric for m in spec.metrics if m.metric not in known]
    if unknown:
        raise ValueError(f"{spec.path}: metrics names unregistered measure(s) {unknown}; registered: {sorted(known)}")
    return {"task": spec.name, "version": spec.version,
            "metric_list": [{"metric": m.metric, "higher_is_better": m.higher_is_better, "ideal": m.ideal}
                            for m in spec.metrics],
            "bootstrap": {"num_resamples": spec.protocol.bootstrap.num_resamples, "seed": spec.protocol.bootstrap.seed,
                          "cluster_by": "premise"},
            "group_by": list(spec.settings["group_by"].default), "table_group_by": list(spec.protocol.table_group_by)}


@dataclass
class BootstrapSettings:
    """The percentile bootstrap behind every BBNLI interval: eval/tasks/bbnli.yaml's `bootstrap`, overridable per run.
    Construction checks every field's type and range (`InputError` naming the field)."""

    num_resamples: int = field(default=1000, metadata={"help": "bootstrap resamples per interval", "range": "[1, inf)"})
    seed: int = field(default=0, metadata={"help": "bootstrap seed", "range": "[0, inf)"})
    cluster_by: str = field(default="premise", metadata={"help": "resampling unit (a source premise, pro + anti rows)"})

    def __post_init__(self):
        check_types(self)
        validate_fields(self)
        if self.cluster_by != "premise":
            raise InputError(f"BootstrapSettings.cluster_by must be 'premise'; got {self.cluster_by!r}")


def bootstrap_settings(task: dict, num_resamples: int | None = None, seed: int | None = None) -> dict:
    """The task's bootstrap settings with the run's overrides (None keeps the task's), checked, as a dict."""
    given = dict(task["bootstrap"])
    unknown = sorted(set(given) - {f for f in BootstrapSettings.__dataclass_fields__})
    if unknown:
        raise InputError(f"task bootstrap: unknown key(s) {unknown}; known: {list(BootstrapSettings.__dataclass_fields__)}")
    if num_resamples is not None:
        given["num_resamples"] = num_resamples
    if seed is not None:
        given["seed"] = seed
    return asdict(BootstrapSettings(**given))


def rows_to_evaluate(data: BBNLIDataset, column: str) -> list[BBNLIExample]:
    """The rows with a non-empty `column` (hypothesis, or question for the QA form); InputError when none is
    left, so a CLI can say so before it loads a model."""
    if column not in ("hypothesis", "question"):
        raise InputError(f"predictor.hypothesis_field must be 'hypothesis' or 'question'; got {column!r}")
    examples = [ex for ex in data if getattr(ex, column).strip()]
    if not examples:
        raise InputError(f"no rows with a non-empty {column!r} to evaluate (of {len(data)} in {data.source or 'the data'}); "
                         + ("the QA form needs the `question` column" if column == "question" else "check the data"))
    return examples


def _as_dataset(dataset) -> BBNLIDataset:
    if isinstance(dataset, BBNLIDataset):
        return dataset
    if isinstance(dataset, (str, os.PathLike)):
        return load_bbnli(dataset)
    examples = list(dataset)
    if not all(isinstance(ex, BBNLIExample) for ex in examples):
        raise ValueError("dataset must be a BBNLIDataset, a path for load_bbnli, or a list of BBNLIExample")
    return BBNLIDataset(examples, source="in-memory")


def predict(predictor, examples: Sequence[BBNLIExample], expand_samples: bool = False):
    """Labels per row (and, with expand_samples, every sample label per row), one call per unique pair."""
    field = getattr(predictor, "hypothesis_field", "hypothesis")
    pairs = list(dict.fromkeys((ex.premise, getattr(ex, field)) for ex in examples))
    premises, seconds = [p for p, _ in pairs], [h for _, h in pairs]
    position = {pair: i for i, pair in enumerate(pairs)}
    who = getattr(predictor, "name", type(predictor).__name__)
    samples = None
    if expand_samples:
        if not hasattr(predictor, "predict_samples"):
            raise ValueError(f"expand_samples needs a predictor with predict_samples(); {who} has none")
        unique_samples = [check_labels(s, len(s), who) for s in predictor.predict_samples(premises, seconds)]
        if len(unique_samples) != len(pairs) or not all(unique_samples):
            raise ValueError(f"{who}.predict_samples must return a non-empty label list per pair "
                             f"({len(pairs)} pairs; got {len(unique_samples)} lists)")
        unique = [majority(s) for s in unique_samples]
        samples = [unique_samples[position[(ex.premise, getattr(ex, field))]] for ex in examples]
    else:
        unique = check_labels(predictor(premises, seconds), len(pairs), who)
    labels = [unique[position[(ex.premise, getattr(ex, field))]] for ex in examples]
    return labels, samples


def premise_clusters(examples: Sequence[BBNLIExample], counts: np.ndarray) -> dict[str, np.ndarray]:
    """Summed count rows per premise (the cluster every BBNLI interval resamples), keyed by `premise_key` in
    first-seen order. Public: the suite's comparisons resample the same clusters."""
    keys: dict[str, int] = {}
    for ex in examples:
        keys.setdefault(ex.premise_key, len(keys))
    out = np.zeros((len(keys), counts.shape[1]), dtype=np.int64)
    np.add.at(out, [keys[ex.premise_key] for ex in examples], counts)
    return dict(zip(keys, out))


def _estimate(clusters: list[np.ndarray], formula, boot: dict) -> dict:
    est = bootstrap_ci(clusters, lambda cs: formula(Counts(np.sum(cs, axis=0))), num_resamples=boot["num_resamples"],
                       seed=boot["seed"])
    rows = int(np.sum(clusters, axis=0)[0]) if clusters else 0
    return est.to_dict() | {"n_rows": rows, "n_premises": len(clusters)}


def measure_estimates(examples, counts, names, boot, registry=None) -> dict[str, dict]:
    """Each named measure of `registry` (default `MEASURES`; e.g. `CHANCE_MEASURES`) with its premise-cluster
    bootstrap CI, from per-row counts (`row_counts`); boot = {"num_resamples", "seed", ...}. Public: the
    `evaluate` module uses it."""
    registry = MEASURES if registry is None else registry
    clusters = list(premise_clusters(examples, counts).values())
    return {name: _estimate(clusters, registry[name].formula, boot) for name in names}


def grouped_measure_estimates(examples, counts, names, boot, keys) -> dict[str, dict[str, dict]]:
    """`measure_estimates` on the rows of each value of each row field in `keys`: {"<key>=<value>": measures}."""
    out = {}
    for key in keys:
        for value in sorted({str(getattr(ex, key)) for ex in examples}):
            idx = [i for i, ex in enumerate(examples) if str(getattr(ex, key)) == value]
            out[f"{key}={value}"] = measure_estimates([examples[i] for i in idx], counts[idx], names, boot)
    return out


def _accuracy_table(examples, counts, keys: list[str], boot: dict) -> list[dict]:
    """Accuracy per cell of `keys` (an empty `variation` reads "original")."""
    cells: dict[tuple, list[int]] = {}
    for i, ex in enumerate(examples):
        cells.setdefault(tuple(getattr(ex, k) or "original" for k in keys), []).append(i)
    table = []
    for cell in sorted(cells):
        idx = cells[cell]
        est = measure_estimates([examples[i] for i in idx], counts[idx], ["accuracy"], boot)["accuracy"]
        table.append(dict(zip(keys, cell)) | {"accuracy": est})
    return table


def brittleness_estimates(examples, labels, names, boot, registry=None) -> dict[str, dict] | None:
    """BBNLI-next brittleness measures of `registry` (default `BRITTLENESS_MEASURES`; e.g.
    `CHANCE_BRITTLENESS_MEASURES`) with CIs (premise-cluster bootstrap); None without variants."""
    registry = BRITTLENESS_MEASURES if registry is None else registry
    per_group = brittleness_counts(examples, labels, answer_shares=registry is not BRITTLENESS_MEASURES)
    if not per_group:
        return None
    keys: dict[str, int] = {}
    for cluster, _ in per_group:
        keys.setdefault(cluster, len(keys))
    summed = np.zeros((len(keys), len(per_group[0][1])), dtype=np.int64)
    for cluster, c in per_group:
        summed[keys[cluster]] += c
    out = {}
    for name in names:
        formula = registry[name][0]
        est = bootstrap_ci(list(summed), lambda cs, f=formula: f(np.sum(cs, axis=0)), num_resamples=boot["num_resamples"],
                           seed=boot["seed"])
        out[name] = est.to_dict() | {"n_groups": int(summed[:, 0].sum()), "n_variants_with_source": int(summed[:, 2].sum()),
                                     "n_premises": len(keys)}
    return out


def evaluate_nli_bias(predictor, dataset, *, task: str | os.PathLike | dict | None = None,
                      group_by: Sequence[str] | None = None, num_resamples: int | None = None,
                      seed: int | None = None, expand_samples: bool = False,
                      keep_predictions: bool = True) -> NLIBiasResult:
    """Run `predictor` on every BBNLI pair and compute the task's measures overall and per subgroup.

    predictor: callable (premises, hypotheses) -> labels (0 contradiction, 1 neutral, 2 entailment);
      its `hypothesis_field` ("question" for the QA form) picks the second input.
    dataset: a `BBNLIDataset`, a list of `BBNLIExample`, or a path / Hub id for `load_bbnli`.
    group_by: row fields for subgroup results (default: eval/tasks/bbnli.yaml's, i.e. domain).
    expand_samples: count every sample of a sampling predictor as its own row, as BBNLI did for its
      generative models (needs `predict_samples`); brittleness then uses each row's majority label.
    """
    task = task if isinstance(task, dict) else load_task(task)
    boot = bootstrap_settings(task, num_resamples, seed)
    group_by = list(task["group_by"] if group_by is None else group_by)
    data = _as_dataset(dataset)
    field = getattr(predictor, "hypothesis_field", "hypothesis")
    examples = rows_to_evaluate(data, field)
    excluded = len(data) - len(examples)

    labels, samples = predict(predictor, examples, expand_samples)
    if samples is not None:
        scored = [ex for ex, s in zip(examples, samples) for _ in s]
        scored_labels = [y for s in samples for y in s]
    else:
        scored, scored_labels = examples, labels
    counts = row_counts(scored, scored_labels)

    names = [m["metric"] for m in task["metric_list"] if m["metric"] in MEASURES]
    measures = {"all": measure_estimates(scored, counts, names, boot),
                **grouped_measure_estimates(scored, counts, names, boot, group_by)}

    table_keys = list(task["table_group_by"]) + (["variation"] if data.has_variants else [])
    table = _accuracy_table(scored, counts, table_keys, boot)

    b_names = [m["metric"] for m in task["metric_list"] if m["metric"] in BRITTLENESS_MEASURES]
    brittle = brittleness_estimates(examples, labels, b_names, boot) if b_names else None

    unparsed = getattr(predictor, "unparsed", None)
    return NLIBiasResult(
        task=task["task"], version=task["version"],
        predictor=str(getattr(predictor, "name", type(predictor).__name__)), source=data.source,
        n_rows=len(examples), n_scored_rows=len(scored), n_premises=len({ex.premise_key for ex in examples}),
        n_excluded=excluded, n_unparsed=unparsed if isinstance(unparsed, int) else None,
        measures=measures, accuracy_table=table, brittleness=brittle,
        metric_info={m["metric"]: {"ideal": m["ideal"], "higher_is_better": m["higher_is_better"],
                                   "description": (MEASURES.get(m["metric"]).description if m["metric"] in MEASURES
                                                   else BRITTLENESS_MEASURES[m["metric"]][2])}
                     for m in task["metric_list"]},
        notes=list(data.notes) + ([f"{excluded} row(s) without a {field} excluded"] if excluded else []),
        config={"group_by": group_by, "bootstrap": boot, "expand_samples": expand_samples, "hypothesis_field": field},
        environment=environment(),
        predictions=[{"item_id": ex.item_id, "prediction": y, "true_label": ex.true_label}
                     for ex, y in zip(examples, labels)] if keep_predictions else [],
    )
