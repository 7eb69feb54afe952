"""Occupational bias measured against U.S. labour statistics (BLS CPS Table 11), and BLS-grounded debiasing
(Gorti, Chadha & Gaur 2024). See docs/occupation.md."""
from fairalign.eval.occupation.bls import BLSTable, infer_levels, load_bls_table
from fairalign.eval.occupation.evaluate import OccupationEvalConfig, evaluate_occupational_bias, select_occupations
from fairalign.eval.occupation.parsing import OccupationLexicon, parse_answer
from fairalign.eval.occupation.probes import category_probabilities
from fairalign.eval.occupation.report import OccupationalBiasResult
from fairalign.eval.occupation.templates import Template, default_templates, name_occupation

__all__ = [
    "BLSTable", "load_bls_table", "infer_levels", "OccupationEvalConfig", "evaluate_occupational_bias",
    "select_occupations", "OccupationLexicon", "parse_answer", "category_probabilities", "OccupationalBiasResult",
    "Template", "default_templates", "name_occupation",
]
