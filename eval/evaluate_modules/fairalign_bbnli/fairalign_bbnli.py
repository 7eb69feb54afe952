"""`evaluate` metric: NLI bias on BBNLI (Akyürek et al. 2022) and BBNLI-next-style data (Baldini et al. 2023).

Thin by design: rows are read by the suite's `example_from_row`, the measures are the registered ones of
`fairalign.eval.bbnli.metrics` (MEASURES, BRITTLENESS_MEASURES, row_counts), and the premise-clustered
bootstrap is the suite's own (`measure_estimates`, `grouped_measure_estimates`, `brittleness_estimates` of
fairalign.eval.bbnli.evaluate), so the numbers are those `evaluate_nli_bias` reports for the same
predictions. evaluate copies this file into its cache and imports it on its own, so it imports fairalign by
absolute name (never relatively), one import per line.
"""
from __future__ import annotations

from collections.abc import Mapping

import datasets
import evaluate

from fairalign.eval.bbnli.data import COLUMNS
from fairalign.eval.bbnli.data import NEXT_COLUMNS
from fairalign.eval.bbnli.data import BBNLIExample
from fairalign.eval.bbnli.data import example_from_row
from fairalign.eval.bbnli.evaluate import brittleness_estimates
from fairalign.eval.bbnli.evaluate import grouped_measure_estimates
from fairalign.eval.bbnli.evaluate import measure_estimates
from fairalign.eval.bbnli.evaluate import load_task
from fairalign.eval.bbnli.metrics import BRITTLENESS_MEASURES
from fairalign.eval.bbnli.metrics import MEASURES
from fairalign.eval.bbnli.metrics import row_counts
from fairalign.eval.bbnli.predictors import check_labels
from fairalign.eval.evaluate_modules.inputs import CheckedInputs
from fairalign.eval.evaluate_modules.inputs import check_options
from fairalign.eval.evaluate_modules.outputs import describe_outputs
from fairalign.eval.evaluate_modules.outputs import estimate_fields

_CITATION = """\
@inproceedings{akyurek2022measuring,
  title={On Measuring Social Biases in Prompt-Based Multi-Task Learning},
  author={Aky{\\"u}rek, Afra Feyza and Paik, Sejin and Kocyigit, Muhammed Yusuf and Akbiyik, Seda and
          Runyun, {\\c{S}}erife Leman and Wijaya, Derry},
  booktitle={Findings of the Association for Computational Linguistics: NAACL 2022}, pages={551--564}, year={2022}}
@article{baldini2023keeping,
  title={Keeping Up with the Language Models: Robustness-Bias Interplay in NLI Data and Models},
  author={Baldini, Ioana and Yadav, Chhavi and Nagireddy, Manish and Das, Payel and Varshney, Kush R.},
  journal={arXiv preprint arXiv:2305.12620}, year={2023}}
"""

_DESCRIPTION = """\
NLI bias on BBNLI: an NLI model (or an LM judge) labels each (premise, hypothesis) pair 0 contradiction,
1 neutral, 2 entailment. Stereotypical hypotheses (and their group-swapped counterparts) have gold label
neutral; answering them with the stereotype-confirming label is bias. Reports the original BBNLI bias score
(reproducing the released code, quirk included), a corrected score, disaggregated stereotype-aligned and
counter-stereotype rates, test accuracies and, on BBNLI-next-style data with variants (`variant_of`),
brittleness. Every measure has a 95% percentile-bootstrap interval over premises. The numbers are those of
fairalign's `evaluate_nli_bias` for the same predictions.
"""

_TASK = load_task()  # eval/tasks/bbnli.yaml (the registry): which measures, their ideal values, bootstrap defaults
_NAMES = [m["metric"] for m in _TASK["metric_list"] if m["metric"] in MEASURES]
_BRITTLE = [m["metric"] for m in _TASK["metric_list"] if m["metric"] in BRITTLENESS_MEASURES]
# The stored row: the released CSV's columns (less `reference`, a source URL no measure reads) + BBNLI-next's.
_FIELDS = [c for c in COLUMNS if c != "reference"] + list(NEXT_COLUMNS)
_INT_FIELDS = ("true_label", "bias_label")

_OPTIONS = {
    "group_by": "row fields to report subgroups for, e.g. ['domain'] (default: none); results under 'groups'",
    "num_resamples": f"bootstrap resamples per interval (default {_TASK['bootstrap']['num_resamples']})",
    "seed": f"bootstrap seed (default {_TASK['bootstrap']['seed']})",
}


def _ideal(m: dict) -> str:
    directions = {True: "higher is better", False: "lower is better", None: "closer to it from either side is better"}
    direction = directions[m["higher_is_better"]]
    return f"{m['ideal']:g} ({direction})"


def _outputs_doc() -> str:
    spec = {m["metric"]: m for m in _TASK["metric_list"]}
    rows = [(n, MEASURES[n].description, _ideal(spec[n])) for n in _NAMES]
    rows += [(n, BRITTLENESS_MEASURES[n][2] + " (None without variants)", _ideal(spec[n])) for n in _BRITTLE]
    return (describe_outputs(rows) + "\n    n_rows, n_premises (bootstrap clusters), n_variant_groups;"
            "\n    groups (with group_by): {'<field>=<value>': the measures above for those rows}")


_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): the predicted label of each row: 0 contradiction, 1 neutral, 2 entailment.
    references (list of dict): each row of the BBNLI data, with the released CSV's columns: domain, name, id,
        type (pro/anti), premise, hypothesis_type (test/stereotypical/anti-stereotypical), hypothesis,
        true_label, bias_label; optional: unique_id, question, variant_of, variation (BBNLI-next). Extra keys
        are ignored, so rows of the Hub dataset feyzaakyurek/BBNLI, dicts from a CSV, BBNLIExample.to_dict()
        (or BBNLIExample objects) all work.
Options (compute() keyword arguments):
""" + "\n".join(f"    {k}: {v}" for k, v in _OPTIONS.items()) + """
Returns:
""" + _outputs_doc() + """
Examples:
    >>> import evaluate
    >>> from fairalign.eval import evaluate_module_path
    >>> from fairalign.eval.bbnli import load_bbnli
    >>> bbnli = evaluate.load(evaluate_module_path("bbnli"))
    >>> rows = [ex.to_dict() for ex in load_bbnli("bbnli_expanded.csv")]
    >>> r = bbnli.compute(predictions=my_labels, references=rows, group_by=["domain"])
    >>> r["bbnli_bias_score"], r["bbnli_bias_score_ci_low"], r["bbnli_bias_score_ci_high"]
"""


def _stored(row, i: int) -> dict:
    """One reference as the stored struct, validated and normalised exactly as the suite reads CSV rows."""
    if isinstance(row, BBNLIExample):
        row = row.to_dict()
    if not isinstance(row, Mapping):
        raise ValueError(f"references[{i}] is a {type(row).__name__}; each reference must be a dict with the "
                         f"BBNLI row fields {_FIELDS}")
    ex = example_from_row(dict(row), f"references[{i}]")
    return {k: getattr(ex, k) for k in _FIELDS}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FairalignBbnli(CheckedInputs, evaluate.Metric):
    """BBNLI / BBNLI-next bias measures over fairalign's registered measures and bootstrap."""

    def _info(self):
        row = {k: datasets.Value("int64" if k in _INT_FIELDS else "string") for k in _FIELDS}
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": row}),
            homepage="https://github.com/feyzaakyurek/bbnli",
            license="Apache-2.0",
            reference_urls=["https://aclanthology.org/2022.findings-naacl.42/", "https://arxiv.org/abs/2305.12620",
                            "https://huggingface.co/datasets/feyzaakyurek/BBNLI"],
        )

    def _normalize(self, cols: dict) -> dict:
        labels = check_labels(cols["predictions"], len(cols["predictions"]), "predictions")
        return {"predictions": labels, "references": [_stored(r, i) for i, r in enumerate(cols["references"])]}

    def _compute(self, predictions, references, group_by=(), **options):
        options = check_options(options, _OPTIONS, self._feature_names())
        if not references:
            raise ValueError("no rows: pass predictions=[...] and references=[...] with at least one row")
        keys = [group_by] if isinstance(group_by, str) else list(group_by or ())
        bad = [k for k in keys if k not in _FIELDS]
        if bad:
            raise ValueError(f"group_by {bad}: not row fields; use some of {_FIELDS} (e.g. ['domain'])")
        boot = dict(_TASK["bootstrap"]) | options
        examples = [example_from_row(r, f"references[{i}]") for i, r in enumerate(references)]
        labels = [int(y) for y in predictions]
        counts = row_counts(examples, labels)
        out = _flat(measure_estimates(examples, counts, _NAMES, boot))
        brittle = brittleness_estimates(examples, labels, _BRITTLE, boot) or {}
        for name in _BRITTLE:
            out.update(estimate_fields(name, brittle.get(name, {"value": None, "low": None, "high": None})))
        out["n_variant_groups"] = brittle[_BRITTLE[0]]["n_groups"] if brittle else 0
        if keys:
            groups = grouped_measure_estimates(examples, counts, _NAMES, boot, keys)
            out["groups"] = {name: _flat(measures) for name, measures in groups.items()}
        return out


def _flat(measures: dict) -> dict:
    out = {}
    for name in _NAMES:
        out.update(estimate_fields(name, measures[name]))
    first = measures[_NAMES[0]]
    out.update(n_rows=first["n_rows"], n_premises=first["n_premises"])
    return out
