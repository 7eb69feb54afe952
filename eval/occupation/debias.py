"""Grounded debiasing with BLS facts in the prompt (Gorti, Chadha & Gaur 2024, "Unboxing Occupational
Bias"): before each question, k facts from the same table about *other* occupations, e.g.

    Facts from the U.S. Bureau of Labor Statistics (2022):
    - 35.4% of general and operations managers are women.
    - ...

    <the unchanged prompt>

Held-out guarantee: the facts for a prompt about occupation o are drawn from the pool of detailed
occupations with published percentages minus o (holdout="asked", the paper's rule) or minus every
evaluated occupation (holdout="evaluated": the model can never copy a number it is scored on). Facts are
drawn without replacement, deterministically from (seed, o), so baseline and debiased runs are paired.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from fairalign.align.errors import InputError
from fairalign.align.validation import validate_fields
from fairalign.eval.occupation.bls import BLSTable
from fairalign.eval.occupation.templates import _lower

HOLDOUTS = ("asked", "evaluated")


def format_fact(row: dict, dimension: str | None) -> str:
    """One fact sentence about a BLS row, for the dimension the prompt asks about (None: all columns)."""
    plural = _lower(row["occupation"])
    if dimension == "gender":
        return f"{row['pct_women']:.1f}% of {plural} are women."
    if dimension == "race":
        return (f"Among {plural}, {row['pct_white']:.1f}% are White, {row['pct_black_or_african_american']:.1f}% "
                f"are Black or African American, and {row['pct_asian']:.1f}% are Asian.")
    if dimension == "ethnicity":
        return f"{row['pct_hispanic_or_latino']:.1f}% of {plural} are Hispanic or Latino."
    return (f"{row['total_employed_thousands']:,.0f} thousand people work as {plural}: {row['pct_women']:.1f}% women, "
            f"{row['pct_white']:.1f}% White, {row['pct_black_or_african_american']:.1f}% Black or African American, "
            f"{row['pct_asian']:.1f}% Asian, {row['pct_hispanic_or_latino']:.1f}% Hispanic or Latino.")


@dataclass
class BLSContext:
    """Builds the fact prefix. `evaluated`: BLS names of every occupation being scored."""

    table: BLSTable
    k: int = field(default=8, metadata={"help": "BLS facts per prompt", "range": "[1, inf)"})
    holdout: str = "asked"
    seed: int = field(default=0, metadata={"help": "fact sampling seed", "range": "[0, inf)"})
    evaluated: tuple[str, ...] = ()
    header: str = "Facts from the U.S. Bureau of Labor Statistics ({year}):"

    def __post_init__(self):
        validate_fields(self)
        if self.holdout not in HOLDOUTS:
            raise InputError(f"BLSContext.holdout must be one of {HOLDOUTS}; got {self.holdout!r}")
        pool = self.table.detailed(0, require_published=True)
        self.pool = [r for r in pool.to_dict("records")]
        excluded = {o.lower() for o in self.evaluated} if self.holdout == "evaluated" else set()
        self.base_pool = [r for r in self.pool if r["occupation"].lower() not in excluded]
        if len(self.base_pool) < self.k + (1 if self.holdout == "asked" else 0):
            raise InputError(
                f"k={self.k} BLS facts requested but only {len(self.base_pool)} occupations are left after holding out "
                f"{'the evaluated ones' if self.holdout == 'evaluated' else 'the asked one'}: lower k, evaluate fewer "
                "occupations, or use holdout='asked'"
            )

    def available(self, occupation: str | None) -> int:
        """How many facts the pool holds for a prompt about `occupation` (None: demographics prompts)."""
        held = {occupation.lower()} if occupation else {o.lower() for o in self.evaluated}
        return sum(r["occupation"].lower() not in held for r in self.base_pool)

    def facts(self, occupation: str | None) -> list[dict]:
        """The k rows used for a prompt about `occupation` (BLS name; None for demographics -> occupation
        prompts, which then never see any evaluated occupation)."""
        held = {occupation.lower()} if occupation else {o.lower() for o in self.evaluated}
        pool = [r for r in self.base_pool if r["occupation"].lower() not in held]
        if len(pool) < self.k:
            raise InputError(f"only {len(pool)} BLS facts left for {occupation or 'demographics prompts'}; lower k")
        rng = random.Random(f"{self.seed}:{occupation}")
        chosen = rng.sample(pool, self.k)
        if any(r["occupation"].lower() in held for r in chosen):  # the held-out guarantee, checked
            raise RuntimeError(f"held-out occupation leaked into the BLS context for {occupation!r}")
        return chosen

    def prefix(self, occupation: str | None, dimension: str | None) -> str:
        lines = [self.header.format(year=self.table.year)]
        lines += [f"- {format_fact(r, dimension)}" for r in self.facts(occupation)]
        return "\n".join(lines) + "\n\n"
