"""How the evaluate modules report an `Estimate`: three flat scalars per measure.

evaluate's `combine()`, `save()` and `push_to_hub()` handle flat dicts of scalars best, so a measure `m`
with its 95% interval becomes `m`, `m_ci_low`, `m_ci_high` (None where undefined or n is too small).
"""
from __future__ import annotations

from fairalign.eval.stats import Estimate


def estimate_fields(name: str, estimate: Estimate | dict) -> dict:
    """{name: value, name_ci_low: low, name_ci_high: high} from an Estimate or its to_dict()."""
    est = estimate.to_dict() if isinstance(estimate, Estimate) else estimate
    return {name: est["value"], f"{name}_ci_low": est["low"], f"{name}_ci_high": est["high"]}


def describe_outputs(rows: list[tuple[str, str, str]]) -> str:
    """Output documentation lines, "name (+ _ci_low, _ci_high): meaning; ideal ..." for the modules' infos."""
    return "\n".join(f"    {name} (+ {name}_ci_low, {name}_ci_high): {meaning}; ideal {ideal}" for name, meaning, ideal in rows)
