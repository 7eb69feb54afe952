"""Toxicity evaluation: the RealToxicityPrompts protocol (Gehman et al. 2020) with pluggable scorers and
bootstrap confidence intervals over prompts. See docs/toxicity.md.

    from fairalign.eval.toxicity import generate_continuations, evaluate_toxicity, get_scorer
    records = generate_continuations((model, tokenizer), prompts, cache_path="gens.jsonl")
    result = evaluate_toxicity(records, get_scorer("auto"))
    print(result.to_markdown())
"""
from fairalign.eval.toxicity.data import load_prompts, normalize_prompts
from fairalign.eval.toxicity.fluency import FluencyResult, continuation_nll, distinct_n, diversity, evaluate_fluency
from fairalign.eval.toxicity.generation import generate_continuations
from fairalign.eval.toxicity.metrics import (
    TOXICITY_AGGREGATIONS,
    ToxicityResult,
    compute_toxicity_metrics,
    evaluate_toxicity,
)
from fairalign.eval.toxicity.perspective import PerspectiveScorer
from fairalign.eval.toxicity.scorers import (
    SCORERS,
    HFClassifierScorer,
    OfflineProfanityScorer,
    Scorer,
    get_scorer,
)
from fairalign.eval.toxicity.scoring import score_records
from fairalign.eval.toxicity.task import ToxicityTask, load_task

__all__ = [
    "load_prompts", "normalize_prompts", "generate_continuations", "Scorer", "HFClassifierScorer",
    "PerspectiveScorer", "OfflineProfanityScorer", "SCORERS", "get_scorer", "score_records",
    "compute_toxicity_metrics", "evaluate_toxicity", "ToxicityResult", "TOXICITY_AGGREGATIONS",
    "evaluate_fluency", "FluencyResult", "continuation_nll", "distinct_n", "diversity", "ToxicityTask", "load_task",
]
