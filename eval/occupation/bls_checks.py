"""Is a parsed BLS Table 11 plausible as published? The rules a table must pass before any metric uses it.

A table can parse cleanly and still be wrong in ways that move every number: percentages written as
fractions (0.468 for 46.8 %) make the gender MAE 53 pp instead of 22. `check_table` refuses, with the
file, the row (occupation and line) and the column named:
- a total employed that is missing, not finite or negative (every row has one in Table 11, 0 included);
- a percentage that is not finite or outside [0, 100]; a blank or '–' cell stays a suppressed value (NaN);
- a percentage column whose published values all lie in [0, 1] with at least one above 0: in a table of
  occupations that is fractions, not percentages (even the Asian share of all workers is about 7 %);
- White + Black or African American + Asian above 100 beyond rounding. These race groups are mutually
  exclusive ("alone" categories) and do not cover every race, so their sum is at most 100; each figure is
  rounded to 0.1, so the sum may exceed 100 by up to 0.05 per published figure (the shared 2021 table has
  100.1). Hispanic or Latino is an ethnicity that overlaps every race, so it is in no sum; women is its own
  dimension.
"""
from __future__ import annotations

import math

from fairalign.align.errors import InputError
from fairalign.align.validation import is_real

TOTAL = "total_employed_thousands"
RACE_COLUMNS = ("pct_white", "pct_black_or_african_american", "pct_asian")
ROUNDING_PP = 0.05  # half of the 0.1 pp BLS rounds each percentage to


def _cell(value) -> float | None:
    """A float (NaN for missing), or None for a value that is not a number at all (text, a bool)."""
    if value is None or type(value).__name__ == "NAType":  # pandas' missing value in nullable columns
        return math.nan
    if is_real(value) or (hasattr(value, "dtype") and value.dtype.kind in "iuf"):
        return float(value)
    return None


def check_table(df, source: str, labels: list[str] | None = None) -> None:
    """InputError for the first implausible value of a table with `total_employed_thousands` and the percentage
    columns (`PCT_COLUMNS`). `labels[i]` says where row i is in the file ("line 7"); default "DataFrame row <index>"."""
    from fairalign.eval.occupation.bls import PCT_COLUMNS

    missing = [c for c in ("occupation", TOTAL, *PCT_COLUMNS) if c not in df.columns]
    if missing:
        raise InputError(f"{source}: BLS table columns {missing} are missing (found {list(df.columns)})")
    labels = labels or [f"DataFrame row {i}" for i in df.index]
    names = [str(n) for n in df["occupation"]]

    def where(i: int, col: str) -> str:
        return f"{source}: {labels[i]} ({names[i]!r}), column {col}"

    values = {col: [] for col in (TOTAL, *PCT_COLUMNS)}
    for col, out in values.items():
        for i, raw in enumerate(df[col].tolist()):
            v = _cell(raw)
            if v is None:
                raise InputError(f"{where(i, col)}: {raw!r} is not a number; write the number (or leave a percentage "
                                 "blank / '–' where BLS did not publish it)")
            out.append(v)
    for i, v in enumerate(values[TOTAL]):
        if not math.isfinite(v) or v < 0:
            what = "is missing" if math.isnan(v) else f"is {v}"
            raise InputError(f"{where(i, TOTAL)}: the number employed (thousands) {what}; every occupation row of "
                             "Table 11 has a number >= 0 (copy it from the published table)")
    for col in PCT_COLUMNS:
        for i, v in enumerate(values[col]):
            if not math.isnan(v) and not 0 <= v <= 100:
                raise InputError(f"{where(i, col)}: {v} is not a percentage in [0, 100]; Table 11 gives percent of "
                                 "the occupation's employed (blank or '–' where BLS did not publish one)")
    for col in PCT_COLUMNS:
        published = [(i, v) for i, v in enumerate(values[col]) if not math.isnan(v)]
        if published and max(v for _, v in published) <= 1 and any(v > 0 for _, v in published):
            i, v = max(published, key=lambda p: p[1])
            raise InputError(
                f"{source}: every value of column {col} is between 0 and 1 (largest {v} at {labels[i]}, "
                f"{names[i]!r}): these are fractions, not percentages. BLS Table 11 gives percentages "
                f"(46.8 for 46.8 %): multiply the column by 100"
            )
    for i in range(len(names)):
        shares = [values[c][i] for c in RACE_COLUMNS if not math.isnan(values[c][i])]
        if sum(shares) > 100 + ROUNDING_PP * len(shares) + 1e-9:
            given = ", ".join(f"{c}={values[c][i]}" for c in RACE_COLUMNS)
            raise InputError(
                f"{source}: {labels[i]} ({names[i]!r}): White + Black or African American + Asian = {sum(shares):.1f} "
                f"% ({given}); these race groups do not overlap, so their sum is at most 100 (plus rounding). "
                "Check the row against the published table (Hispanic or Latino belongs in its own column)"
            )
