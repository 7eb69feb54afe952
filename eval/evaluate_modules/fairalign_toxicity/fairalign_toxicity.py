"""`evaluate` measurement: RealToxicityPrompts-style toxicity (Gehman et al. 2020) of scored continuations.

Thin by design: every number comes from `fairalign.eval.toxicity.metrics.compute_toxicity_metrics`, the
function the fairalign suite reports with. evaluate copies this file into its cache and imports it on its
own, so it imports fairalign by absolute name (never relatively), one import per line (evaluate parses them).
"""
from __future__ import annotations

import numbers

import datasets
import evaluate

from fairalign.eval.evaluate_modules.inputs import CheckedInputs
from fairalign.eval.evaluate_modules.inputs import check_options
from fairalign.eval.evaluate_modules.inputs import number_or_none
from fairalign.eval.evaluate_modules.outputs import describe_outputs
from fairalign.eval.evaluate_modules.outputs import estimate_fields
from fairalign.eval.toxicity.metrics import ToxicityResult
from fairalign.eval.toxicity.metrics import compute_toxicity_metrics
from fairalign.eval.toxicity.task import load_task

_CITATION = """\
@inproceedings{gehman2020realtoxicityprompts,
  title={RealToxicityPrompts: Evaluating Neural Toxic Degeneration in Language Models},
  author={Gehman, Samuel and Gururangan, Suchin and Sap, Maarten and Choi, Yejin and Smith, Noah A.},
  booktitle={Findings of EMNLP}, year={2020}
}
"""

_DESCRIPTION = """\
Toxicity of a model's continuations under the RealToxicityPrompts protocol (Gehman et al. 2020): each
prompt's k continuations are scored by a toxicity classifier (a probability in [0, 1]); the measures
aggregate over prompts, each with a 95% percentile-bootstrap interval over prompts. Scores that could not be
produced (None) are excluded and counted, never read as 0. The numbers are those of fairalign's
`compute_toxicity_metrics`. Expected max toxicity and toxicity probability grow with k: compare runs with
the same samples_per_prompt.
"""

_OPTIONS = {  # defaults from the task registry (eval/tasks/toxicity.yaml), so the module and the suite agree
    "threshold": f"a score >= threshold is toxic (default {load_task().defaults()['threshold']})",
    "num_resamples": "bootstrap resamples per interval (default 1000)",
    "seed": "bootstrap seed (default 0)",
}

_COUNTS = """\
    threshold, num_prompts (N: prompts with >= 1 score), num_prompts_excluded (every score failed),
    num_continuations, num_scored, num_failed, samples_per_prompt (k when every prompt has the same k, else
    None), samples_per_prompt_min, samples_per_prompt_max, notes (list of str: uneven k, failures, ...)"""


def _outputs_doc() -> str:
    task = load_task()
    # Meanings, ideals and directions as the task declares them (eval/tasks/toxicity.yaml), so they cannot drift.
    specs = [task.metric(m) for m in ToxicityResult.METRICS]
    rows = [(s.metric, s.help, f"{s.ideal:g} ({'higher' if s.higher_is_better else 'lower'} is better)") for s in specs]
    return describe_outputs(rows) + "\n" + _COUNTS


_KWARGS_TEMPLATE = """
Args:
    prompt_id (list of str): the prompt each continuation answers; continuations are grouped by it (ints are
        accepted and read as strings, as the fairalign suite does).
    toxicity (list of float or None): each continuation's toxicity score in [0, 1]; None (or NaN) = the scorer
        failed: excluded and counted.
    threshold, num_resamples, seed: compute() options; see below.
Options:
""" + "\n".join(f"    {k}: {v}" for k, v in _OPTIONS.items()) + """
Returns:
{outputs}
Examples:
    >>> import evaluate
    >>> from fairalign.eval import evaluate_module_path
    >>> toxicity = evaluate.load(evaluate_module_path("toxicity"))
    >>> r = toxicity.compute(prompt_id=["a", "a", "b", "b"], toxicity=[0.9, 0.1, 0.2, None], num_resamples=200)
    >>> r["expected_max_toxicity"], r["toxicity_probability"], r["num_failed"]
    (0.55, 0.5, 1)
"""
_KWARGS_DESCRIPTION = _KWARGS_TEMPLATE.replace("{outputs}", _outputs_doc())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FairalignToxicity(CheckedInputs, evaluate.Measurement):
    """RealToxicityPrompts toxicity measures over fairalign's compute_toxicity_metrics."""

    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"prompt_id": datasets.Value("string"), "toxicity": datasets.Value("float64")}),
            homepage="https://arxiv.org/abs/2009.11462",
            license="Apache-2.0",
            reference_urls=["https://arxiv.org/abs/2009.11462", "https://huggingface.co/datasets/allenai/real-toxicity-prompts",
                            "https://aclanthology.org/2020.findings-emnlp.301/"],
        )

    def _normalize(self, cols: dict) -> dict:
        ids = []
        for i, pid in enumerate(cols["prompt_id"]):
            if isinstance(pid, bool) or not isinstance(pid, (str, numbers.Integral)):
                raise ValueError(f"prompt_id[{i}] is {pid!r}; prompt ids must be strings (or ints) naming the prompt")
            ids.append(str(pid))
        scores = [number_or_none("toxicity", i, s) for i, s in enumerate(cols["toxicity"])]
        return {"prompt_id": ids, "toxicity": scores}

    def _compute(self, prompt_id, toxicity, **options):
        options = check_options(options, _OPTIONS, self._feature_names())
        t = options.get("threshold")  # its default and range check live in compute_toxicity_metrics
        if t is not None and (isinstance(t, bool) or not isinstance(t, numbers.Real)):
            raise ValueError(f"threshold must be a number in (0, 1]; got {t!r}")
        if not prompt_id:
            raise ValueError("no continuations: pass prompt_id=[...] and toxicity=[...] with at least one row")
        records = [{"prompt_id": p, "toxicity": s} for p, s in zip(prompt_id, toxicity)]
        result = compute_toxicity_metrics(records, include_rows=False, **options)
        out = {}
        for name in result.METRICS:
            out.update(estimate_fields(name, getattr(result, name)))
        k_range = result.samples_per_prompt_range or (None, None)
        out.update(threshold=result.threshold, num_prompts=result.num_prompts,
                   num_prompts_excluded=result.num_prompts_excluded, num_continuations=result.num_continuations,
                   num_scored=result.num_scored, num_failed=result.num_failed,
                   samples_per_prompt=result.samples_per_prompt, samples_per_prompt_min=k_range[0],
                   samples_per_prompt_max=k_range[1], notes=list(result.notes))
        return out
