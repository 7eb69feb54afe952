"""Probability-based scoring: the model's probabilities of the group words, no parsing.

For a prompt x and categories c, each with continuation variants v (e.g. woman: " she"; man: " he"):
    log s_c = logsumexp_v log p(v | x)          (exact summed token log-probs via LM.loglikelihood)
    P(c | x) = s_c / sum_c' s_c'                (forced choice among the dimension's categories)
Everything is sent to `LM.loglikelihood` in one batched call.
"""
from __future__ import annotations

import math
from typing import Sequence

from fairalign.eval.lm import LM


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs)) if m > -math.inf else -math.inf


def category_probabilities(lm: LM, prompts: Sequence[str], probes: Sequence[dict]) -> list[dict[str, float]]:
    """For each prompt and its {category: [continuations]}, the forced-choice probability of each category."""
    if len(prompts) != len(probes):
        raise ValueError(f"prompts and probes must have equal length; got {len(prompts)} and {len(probes)}")
    requests, index = [], []
    for i, (prompt, probe) in enumerate(zip(prompts, probes)):
        for cat, variants in probe.items():
            if not variants:
                raise ValueError(f"probes: category {cat!r} has no continuations")
            for v in variants:
                index.append((i, cat))
                requests.append((prompt, v))
    logps = lm.loglikelihood(requests)
    per: list[dict[str, list[float]]] = [dict() for _ in prompts]
    for (i, cat), lp in zip(index, logps):
        per[i].setdefault(cat, []).append(lp)
    out = []
    for d in per:
        scores = {c: _logsumexp(v) for c, v in d.items()}
        z = _logsumexp(list(scores.values()))
        out.append({c: math.exp(s - z) for c, s in scores.items()})
    return out
