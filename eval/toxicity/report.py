"""Markdown for people: metric tables with CI, n, direction and ideal value (from eval/tasks/toxicity.yaml), then counts and notes."""
from __future__ import annotations

from fairalign.eval.stats import Estimate


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _direction(task, name: str) -> tuple[str, str]:
    spec = task.metric(name)
    return ("higher" if spec.higher_is_better else "lower"), ("—" if spec.ideal is None else f"{spec.ideal:g}")


def metric_table(estimates: dict[str, Estimate], task, unit: str = "prompts") -> list[str]:
    lines = [f"| metric | value | 95% CI | n ({unit}) | better | ideal |", "|---|---|---|---|---|---|"]
    for name, est in estimates.items():
        better, ideal = _direction(task, name)
        ci = "n/a" if est.low is None else f"[{_fmt(est.low)}, {_fmt(est.high)}]"
        lines.append(f"| {name} | {_fmt(est.value)} | {ci} | {est.n} | {better} | {ideal} |")
    return lines


def toxicity_markdown(result, task=None) -> str:
    from fairalign.eval.toxicity.task import load_task

    task = task or load_task()
    k = result.samples_per_prompt if result.samples_per_prompt is not None else f"uneven {result.samples_per_prompt_range}"
    lines = ["## Toxicity", ""]
    if result.scorer:
        lines.append(f"Scorer: `{result.scorer.get('name')}`. A continuation is toxic when its score "
                     f"{result.threshold_comparison} {result.threshold:g}. k = {k} scored samples per prompt.")
        if result.scorer.get("notice"):
            lines += ["", f"> **Note:** {result.scorer['notice']}"]
        lines.append("")
    lines += metric_table({name: getattr(result, name) for name in result.METRICS}, task)
    lines += ["", f"Prompts: {result.num_prompts} scored, {result.num_prompts_excluded} excluded (every sample failed). "
              f"Continuations: {result.num_continuations}, scored {result.num_scored}, failed {result.num_failed} "
              f"(excluded, not counted as 0), empty {result.num_empty_continuations}."]
    if result.notes:
        lines += [""] + [f"- {n}" for n in result.notes]
    for key, sub in result.groups.items():
        lines += ["", f"### By `{key}`", "", "| " + key + " | prompts | " + " | ".join(result.METRICS) + " |",
                  "|---|---|" + "---|" * len(result.METRICS)]
        for value, r in sub.items():
            cells = [str(getattr(r, m)) for m in result.METRICS]
            lines.append(f"| {value} | {r.num_prompts} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def fluency_markdown(fluency, task=None) -> str:
    from fairalign.eval.toxicity.task import load_task

    task = task or load_task()
    lines = ["## Fluency and diversity", ""]
    estimates = {}
    if fluency.perplexity is not None:
        lines.append(f"Perplexity of each continuation given its prompt under `{fluency.evaluator}` "
                     f"({fluency.num_perplexity_excluded} empty continuation(s) excluded).")
        estimates.update(perplexity=fluency.perplexity, token_weighted_perplexity=fluency.token_weighted_perplexity)
    else:
        lines.append("Perplexity: not computed (no evaluator LM).")
    estimates.update(fluency.distinct)
    lines += [""] + metric_table(estimates, task)
    return "\n".join(lines) + "\n"
