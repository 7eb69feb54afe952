"""Input checks shared by the evaluate modules.

evaluate encodes inputs with Arrow as soon as they are added; a wrong input then fails as "inputs don't
match the expected format" (or a bare KeyError for a dict with missing keys). `CheckedInputs` runs each
module's `_normalize(columns)` in add() / add_batch() first, so the error names the field and the fix.
"""
from __future__ import annotations

import math
import numbers


def as_column(name: str, values) -> list:
    """`values` as a list (lists, tuples, numpy arrays, pandas Series); a lone string or dict is an error."""
    if values is None:
        raise ValueError(f"{name} is missing: pass {name}=[...] with one value per row")
    if isinstance(values, (str, bytes, dict)):
        raise ValueError(f"{name} must be a list with one value per row, not a single {type(values).__name__}")
    if hasattr(values, "tolist"):  # numpy / pandas / torch: plain Python scalars, as Arrow expects
        values = values.tolist()
    try:
        return list(values)
    except TypeError:
        raise ValueError(f"{name} must be a list with one value per row; got {type(values).__name__}") from None


def columns(given: dict, names: list[str]) -> dict[str, list]:
    """Every input of `names` present and list-like, no unknown input, all of the same length."""
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"unknown input(s) {unknown}; this module's inputs are {names} "
                         "(options such as num_resamples go to compute(), not add()/add_batch())")
    cols = {name: as_column(name, given.get(name)) for name in names}
    lengths = {name: len(col) for name, col in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs differ in length {lengths}: give one value per row in every input")
    return cols


def number_or_none(name: str, i: int, value) -> float | None:
    """A float, or None for a missing value (None or NaN); anything else names the row."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}[{i}] is {value!r}; expected a number (or None where there is none)")
    value = float(value)
    return None if math.isnan(value) else value


def check_options(given: dict, allowed: dict[str, str], inputs: list[str]) -> dict:
    """compute() options: only the `allowed` names (name -> help), bootstrap settings as positive ints.
    evaluate hands every compute() keyword that is not an input to the module as an option, so a misspelt
    input lands here too: the message lists both."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        listed = "; ".join(f"{k}: {v}" for k, v in allowed.items())
        raise ValueError(f"unknown compute() option(s) {unknown}; this module's inputs are {inputs}, its options {listed}")
    for key, low in (("num_resamples", 1), ("seed", 0)):
        v = given.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low):
            raise ValueError(f"{key} must be an integer >= {low}; got {v!r}")
    return {k: v for k, v in given.items() if v is not None}


class CheckedInputs:
    """Mixin, listed before evaluate.Measurement / evaluate.Metric: every row goes through the module's
    `_normalize(columns) -> columns` before evaluate stores it."""

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the module on the rows added so far plus any passed here. Inputs: see the inputs description."""
        names = self._feature_names()
        # evaluate silently drops predictions/references a measurement has no input for: say so instead.
        stray = [k for k, v in (("predictions", predictions), ("references", references)) if v is not None and k not in names]
        if stray:
            raise ValueError(f"unknown input(s) {stray}; this module's inputs are {names}")
        passed = {**kwargs, "predictions": predictions, "references": references}
        if self.writer is None and all(passed.get(k) is None for k in names):
            # evaluate would fail with an AttributeError (in memory) or a cache-file message.
            raise ValueError(f"nothing to compute: pass the inputs {names} to compute(), or add()/add_batch() rows first")
        return super().compute(predictions=predictions, references=references, **kwargs)

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of rows, checked first. Inputs: see the module's inputs description."""
        given = _given(predictions, references, kwargs)
        return super().add_batch(**self._normalize(columns(given, self._feature_names())))

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one row, checked first. Inputs: see the module's inputs description."""
        given = {k: [v] for k, v in _given(prediction, reference, kwargs).items()}
        cols = self._normalize(columns(given, self._feature_names()))
        one = {k: v[0] for k, v in cols.items()}
        if "predictions" in one:
            one["prediction"] = one.pop("predictions")
        if "references" in one:
            one["reference"] = one.pop("references")
        return super().add(**one)


def _given(predictions, references, kwargs: dict) -> dict:
    # evaluate's own signatures always carry predictions/references; they count only when passed.
    given = dict(kwargs)
    if predictions is not None:
        given["predictions"] = predictions
    if references is not None:
        given["references"] = references
    return given
