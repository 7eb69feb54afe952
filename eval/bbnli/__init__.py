"""BBNLI (Akyürek et al. 2022) and BBNLI-next-style (Baldini et al. 2023) NLI bias auditing.

    from fairalign.eval.bbnli import load_bbnli, NLIClassifierPredictor, evaluate_nli_bias
    result = evaluate_nli_bias(NLIClassifierPredictor("roberta-large-mnli"), load_bbnli("bbnli_expanded.csv"))
    print(result.to_markdown())
"""
from fairalign.eval.bbnli.data import BBNLIDataset, BBNLIExample, expand_template, load_bbnli
from fairalign.eval.bbnli.evaluate import evaluate_nli_bias, load_task
from fairalign.eval.bbnli.judge import NLI_TEMPLATES, QA_TEMPLATES, GenerativeJudgePredictor, parse_answer
from fairalign.eval.bbnli.metrics import MEASURES, compute
from fairalign.eval.bbnli.next_build import (
    adversarial_filter,
    build_bbnli_next,
    export_for_validation,
    generate_variations,
    import_validated,
)
from fairalign.eval.bbnli.predictors import NLIClassifierPredictor, label_permutation
from fairalign.eval.bbnli.report import NLIBiasResult

__all__ = [
    "BBNLIDataset", "BBNLIExample", "expand_template", "load_bbnli",
    "evaluate_nli_bias", "load_task", "NLIBiasResult",
    "NLIClassifierPredictor", "GenerativeJudgePredictor", "label_permutation", "parse_answer",
    "NLI_TEMPLATES", "QA_TEMPLATES", "MEASURES", "compute",
    "generate_variations", "adversarial_filter", "export_for_validation", "import_validated", "build_bbnli_next",
]
