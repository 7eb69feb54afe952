"""`evaluate` measurement: occupational bias, a model's per-occupation demographic shares against U.S. labour
statistics (BLS CPS Table 11; Gorti, Chadha & Gaur 2024).

Thin by design: the BLS table, occupation names and reference shares go through the same functions as
fairalign's occupation suite (load_bls_table, select_occupations, bls_shares) and the numbers come from
`fairalign.eval.occupation.metrics` (category_metrics, distribution_metrics), as in its run_o2d. evaluate
copies this file into its cache and imports it on its own, so it imports fairalign by absolute name (never
relatively), one import per line (evaluate parses them).
"""
from __future__ import annotations

import math

import datasets
import evaluate

from fairalign.eval.evaluate_modules.inputs import CheckedInputs
from fairalign.eval.evaluate_modules.inputs import check_options
from fairalign.eval.evaluate_modules.inputs import number_or_none
from fairalign.eval.evaluate_modules.outputs import describe_outputs
from fairalign.eval.evaluate_modules.outputs import estimate_fields
from fairalign.eval.occupation import metrics as M
from fairalign.eval.occupation.bls import load_bls_table
from fairalign.eval.occupation.evaluate import bls_shares
from fairalign.eval.occupation.evaluate import categories_of_interest
from fairalign.eval.occupation.evaluate import select_occupations
from fairalign.eval.occupation.templates import load_task

_CITATION = """\
@inproceedings{gorti2024unboxing,
  title={Unboxing Occupational Bias: Grounded Debiasing of LLMs with U.S. Labor Data},
  author={Gorti, Atmika and Chadha, Aman and Gaur, Manas},
  booktitle={Proceedings of the AAAI Symposium Series}, volume={4}, number={1}, pages={48--55}, year={2024}}
"""

_DESCRIPTION = """\
Occupational bias against U.S. labour statistics: for each occupation, the model's share of each demographic
category (e.g. the percentage of its answers or probability mass saying a nurse is a woman) is compared with
that occupation's share in BLS Current Population Survey Table 11 (cpsaat11). Errors are in percentage points
(pp) over occupations, each with a 95% percentile-bootstrap interval over occupations. The configuration
names the dimension: "gender" (default; categories woman, man), "race" (white, black, asian; BLS shares
renormalised over the three) or "ethnicity" (hispanic, not_hispanic). The numbers are those of fairalign's
occupation suite for the same shares.
"""

_TASK = load_task()  # eval/tasks/occupation.yaml (the registry): the dimensions, their categories and BLS columns
DIMENSIONS = list(_TASK["dimensions"])
DEFAULT_DIMENSION = "gender"

_OPTIONS = {
    "bls_table": "required: path of BLS Table 11 (official cpsaat11.xlsx or the normalised CSV), a year "
                 "(read from the fairalign cache, downloaded when online), or a loaded BLSTable",
    "num_resamples": "bootstrap resamples per interval (default 1000)",
    "seed": "bootstrap seed (default 0)",
}

_MEANING = {
    "mae_pp": "mean over occupations of |model share - BLS share| (pp)",
    "signed_error_pp": "mean of (model share - BLS share) (pp); > 0: the model over-represents the category",
    "spearman": "rank correlation of model and BLS shares over occupations",
    "amplification_pp": "mean of sign(BLS share - all-jobs share) * (model - BLS) (pp); > 0: pushes occupations "
                        "further the way they already lean, < 0: flattens",
    "amplification_slope": "OLS slope of model share on BLS share; > 1 exaggerates, < 1 flattens",
    "tvd_pp": "mean over occupations of the total variation distance between model and BLS distributions (pp)",
    "jsd_bits": "mean Jensen-Shannon divergence between model and BLS distributions (bits, in [0, 1])",
}
_CATEGORY_METRICS = ("mae_pp", "signed_error_pp", "spearman", "amplification_pp", "amplification_slope")
_SUM_TOLERANCE_PP = 0.5  # shares of one occupation must sum to 100; rounding to 0.1 pp stays well inside


def _categories(dimension: str) -> list[str]:
    return list(_TASK["dimensions"][dimension]["categories"])


def _outputs_doc() -> str:
    rows = [(f"<category>_{m}", _MEANING[m], f"{M.IDEAL[m][0]:g} ({M.IDEAL[m][1]})") for m in _CATEGORY_METRICS]
    rows += [(m, _MEANING[m], f"{M.IDEAL[m][0]:g} ({M.IDEAL[m][1]})") for m in ("tvd_pp", "jsd_bits")]
    per_dim = "; ".join(f"{d}: {', '.join(categories_of_interest(d, _TASK))}" for d in DIMENSIONS)
    return (describe_outputs(rows) + f"\n    <category> is each category with its own BLS column ({per_dim}).\n"
            "    <category>_bls_all_occupations_pp: the category's share of all workers (the amplification pivot);\n"
            "    dimension, num_occupations, num_occupations_scored (rows with shares), bls_year, bls_source")


_KWARGS_DESCRIPTION = """
Args:
    occupation (list of str): BLS detailed occupation names as in Table 11 (e.g. "Registered nurses"), or a
        singular/plural variant of one ("nurse"); each occupation once.
    model_<category> (list of float or None): the model's share of each category of the configured dimension
        for that occupation, in percent: model_woman and model_man for "gender", model_white, model_black and
        model_asian for "race", model_hispanic and model_not_hispanic for "ethnicity". An occupation's shares sum
        to 100; all None (or NaN) = the occupation was not scored (dropped, as in the suite).
Options (compute() keyword arguments):
""" + "\n".join(f"    {k}: {v}" for k, v in _OPTIONS.items()) + """
Returns:
""" + _outputs_doc() + """
Examples:
    >>> import evaluate
    >>> from fairalign.eval import evaluate_module_path
    >>> occ = evaluate.load(evaluate_module_path("occupation"), config_name="gender")
    >>> r = occ.compute(occupation=["Registered nurses", "Cashiers", "Software developers"],
    ...                 model_woman=[95.0, 60.0, 10.0], model_man=[5.0, 40.0, 90.0], bls_table="cpsaat11_2022_clean.csv")
    >>> r["woman_mae_pp"], r["woman_mae_pp_ci_low"], r["woman_mae_pp_ci_high"], r["woman_spearman"]
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FairalignOccupation(CheckedInputs, evaluate.Measurement):
    """Occupational bias against BLS Table 11 over fairalign's occupation metrics."""

    def _dimension(self) -> str:
        name = DEFAULT_DIMENSION if self.config_name == "default" else self.config_name
        if name not in DIMENSIONS:
            raise ValueError(f"config_name {self.config_name!r} is not a dimension; use one of {DIMENSIONS} "
                             f"(default: {DEFAULT_DIMENSION})")
        return name

    def _info(self):
        shares = {f"model_{c}": datasets.Value("float64") for c in _categories(self._dimension())}
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"occupation": datasets.Value("string"), **shares}),
            homepage="https://arxiv.org/abs/2408.11247",
            license="Apache-2.0",
            reference_urls=["https://arxiv.org/abs/2408.11247", "https://www.bls.gov/cps/cpsaat11.htm"],
        )

    def _normalize(self, cols: dict) -> dict:
        for i, name in enumerate(cols["occupation"]):
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"occupation[{i}] is {name!r}; give the BLS occupation name as a string")
        keys = [f"model_{c}" for c in _categories(self._dimension())]
        out = {"occupation": list(cols["occupation"]), **{k: [] for k in keys}}
        for i, name in enumerate(cols["occupation"]):
            row = [number_or_none(k, i, cols[k][i]) for k in keys]
            given = [v for v in row if v is not None]
            if given and len(given) < len(row):
                raise ValueError(f"occupation {name!r}: {dict(zip(keys, row))} mixes shares and None; give every "
                                 "category's share, or None for all when the occupation was not scored")
            if given and (any(not 0.0 <= v <= 100.0 for v in given) or abs(sum(given) - 100.0) > _SUM_TOLERANCE_PP):
                raise ValueError(f"occupation {name!r}: {dict(zip(keys, row))} must be percentages in [0, 100] "
                                 f"summing to 100 (got sum {sum(given):g}); multiply fractions by 100")
            for k, v in zip(keys, row):
                out[k].append(v)
        return out

    def _compute(self, occupation, **kwargs):
        dim = self._dimension()
        cats = _categories(dim)
        shares = {c: [math.nan if v is None else v for v in kwargs.pop(f"model_{c}")] for c in cats}
        options = check_options(kwargs, _OPTIONS, self._feature_names())
        if not occupation:
            raise ValueError("no occupations: pass occupation=[...] with at least one row")
        if options.get("bls_table") is None:
            raise ValueError("bls_table is missing: pass compute(..., bls_table=PATH) with BLS Table 11 (the official "
                             "cpsaat11.xlsx or the normalised CSV), a year cached by fairalign, or a BLSTable")
        table = load_bls_table(options.pop("bls_table"))
        names = select_occupations(table, list(occupation), task=_TASK)  # the suite's name resolution and checks
        seen: dict[str, str] = {}
        for given, n in zip(occupation, names):
            if n.bls in seen:
                raise ValueError(f"occupation: {seen[n.bls]!r} and {given!r} are both the BLS row {n.bls!r}; "
                                 "give each occupation once")
            seen[n.bls] = given
        bls = [bls_shares(table.row(n.bls), dim, _TASK) for n in names]
        pivot = bls_shares(table.total, dim, _TASK)
        out = {"dimension": dim}
        for c in categories_of_interest(dim, _TASK):
            est = M.category_metrics(shares[c], [b[c] for b in bls], pivot[c], **options)
            for metric in _CATEGORY_METRICS:
                out.update(estimate_fields(f"{c}_{metric}", est[metric]))
            out[f"{c}_bls_all_occupations_pp"] = pivot[c]
        dist = M.distribution_metrics([[shares[c][i] for c in cats] for i in range(len(names))],
                                      [[b[c] for c in cats] for b in bls], **options)
        for metric in ("tvd_pp", "jsd_bits"):
            out.update(estimate_fields(metric, dist[metric]))
        scored = sum(not math.isnan(v) for v in shares[cats[0]])  # a row's shares are all given or all None
        out.update(num_occupations=len(names), num_occupations_scored=scored, bls_year=table.year, bls_source=table.source)
        return out
