"""Estimate rDPO's label-flip rate eps from a small doubly-labelled subset of the preference data.

rDPO (`fairalign.align.rdpo`) needs eps, the probability that a pair's preference label is flipped. When it is
not known, label a few hundred pairs a second time and estimate it:

- `estimate_flip_rate(labels, trusted)`: the second label is trusted (gold / expert). eps = the fraction of
  rows where the noisy label disagrees with the trusted one.
- `estimate_flip_rate_from_agreement(labels_a, labels_b)`: two INDEPENDENT noisy annotations of the same pairs,
  each flipped with the same rate eps. They agree with probability a = (1-eps)^2 + eps^2, so
  eps = (1 - sqrt(2a - 1)) / 2 (the root in [0, 0.5]). Identifiable only when a > 0.5.
- `flip_rate_from_file(path)`: either of the two from a .jsonl / .json / .csv file with columns
  (`label`, `trusted_label`) or (`label_a`, `label_b`).

A label says which answer of the pair is preferred: true / 1 for the first (e.g. the dataset's `chosen`),
false / 0 for the second; both columns must use the same convention. Intervals are Clopper-Pearson (exact
binomial, from scipy.stats.beta): they cover the true rate with at least the stated confidence for any n.
The agreement-mode interval is the agreement's interval mapped through the (decreasing) formula above.
Every estimate must be < 0.5 (rDPO divides by 1 - 2 eps): otherwise the labels are no better than chance and
an InputError says so; no number is ever clipped silently.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fairalign.align.errors import InputError, require_path
from fairalign.align.files import read_jsonl, read_text
from fairalign.align.validation import check_number

TRUSTED_COLUMNS = ("label", "trusted_label")
AGREEMENT_COLUMNS = ("label_a", "label_b")
FILE_SUFFIXES = (".jsonl", ".json", ".csv")
_TEXT_LABELS = {"1": True, "0": False, "true": True, "false": False}  # CSV cells (text); JSON keeps its types


@dataclass(frozen=True)
class FlipRateEstimate:
    """An estimated flip rate and its two-sided confidence interval [low, high] (Clopper-Pearson).

    n: rows of the subset. method: "trusted" or "agreement". note: what the interval means when it was clipped
    (agreement mode, high=0.5: the data cannot rule out labels that are pure noise), else "".
    """

    rate: float
    low: float
    high: float
    n: int
    method: str
    confidence: float = 0.95
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ estimators
def estimate_flip_rate(labels, trusted, confidence: float = 0.95) -> FlipRateEstimate:
    """eps from noisy `labels` and a `trusted` (gold) label of the same rows: the disagreement fraction, with a
    Clopper-Pearson interval. Labels are bools or 0/1 ints. InputError (a ValueError) for other values (naming
    the argument and row), different lengths, empty input, or a rate >= 0.5."""
    noisy, gold = _pair_of_labels(labels, trusted, "labels", "trusted")
    check_number(confidence, "confidence", "(0, 1)")
    n, flips = len(noisy), int(np.count_nonzero(noisy != gold))
    rate = flips / n
    if rate >= 0.5:
        raise InputError(
            f"the labels disagree with the trusted labels on {flips} of {n} rows (rate {rate:.3f} >= 0.5): they are no "
            "better than chance, and rDPO needs a flip rate in [0, 0.5). Check that both columns use the same "
            "convention (1 = the first answer preferred); a rate near 1 means one of them is inverted."
        )
    low, high = clopper_pearson(flips, n, confidence)
    return FlipRateEstimate(rate, low, high, n, "trusted", confidence)


def estimate_flip_rate_from_agreement(labels_a, labels_b, confidence: float = 0.95) -> FlipRateEstimate:
    """eps from two independent noisy annotations of the same rows, each flipped with rate eps:
    agreement a = (1-eps)^2 + eps^2, so eps = (1 - sqrt(2a - 1)) / 2. The interval is the agreement's
    Clopper-Pearson interval mapped through that decreasing function; where the agreement interval reaches
    below 0.5, the upper bound is 0.5 (eps up to 0.5 fits the data) and `note` says so. InputError when
    a <= 0.5: eps is then not identifiable (labels no better than chance, or annotators not independent)."""
    a_, b_ = _pair_of_labels(labels_a, labels_b, "labels_a", "labels_b")
    check_number(confidence, "confidence", "(0, 1)")
    n, agree = len(a_), int(np.count_nonzero(a_ == b_))
    if 2 * agree <= n:
        raise InputError(
            f"the two annotations agree on {agree} of {n} rows (agreement {agree / n:.3f} <= 0.5): the flip rate is "
            "not identifiable from agreement (two independent annotations with flip rate eps agree with probability "
            "(1-eps)^2 + eps^2 > 0.5). The labels look no better than chance, the two annotations use different "
            "conventions, or they are not independent; label a subset against trusted labels instead."
        )
    a_low, a_high = clopper_pearson(agree, n, confidence)
    note = ""
    if a_low <= 0.5:
        note = (f"high clipped to 0.5: the agreement's {confidence:.0%} interval reaches {a_low:.3f} <= 0.5, so the "
                "data cannot rule out labels that are pure noise; label more rows")
    return FlipRateEstimate(flip_rate_from_agreement(agree / n), flip_rate_from_agreement(a_high),
                            flip_rate_from_agreement(max(a_low, 0.5)), n, "agreement", confidence, note)


def flip_rate_from_agreement(agreement: float) -> float:
    """The root in [0, 0.5] of (1-eps)^2 + eps^2 = agreement, for agreement in [0.5, 1]."""
    return (1.0 - math.sqrt(max(2.0 * agreement - 1.0, 0.0))) / 2.0


def clopper_pearson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval for a binomial proportion."""
    from scipy.stats import beta  # scipy.stats takes ~0.5 s to import: only when an estimate is made

    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1.0 - tail, successes + 1, n - successes))
    return low, high


# ------------------------------------------------------------------------------------------------ the file
def flip_rate_from_file(path, confidence: float = 0.95) -> FlipRateEstimate:
    """The estimate from a doubly-labelled subset in a .jsonl / .json (a list of row objects) / .csv file.
    Columns (`label`, `trusted_label`) -> `estimate_flip_rate`; (`label_a`, `label_b`) ->
    `estimate_flip_rate_from_agreement`. Other columns (prompt, chosen, ...) are ignored. Values: true/false
    or 1/0. Errors name the file, the row and the column."""
    file = require_path(path, "flip-rate file", "give the doubly-labelled subset (.jsonl, .json or .csv)")
    rows = _read_rows(file)
    if not rows:
        raise InputError(f"flip-rate file {file} has no rows; give at least one doubly-labelled pair")
    columns = _pick_columns(file, rows[0][1])
    first, second = ([], [])
    for where, row in rows:
        for column, out in zip(columns, (first, second)):
            if column not in row:
                raise InputError(f"flip-rate file {file} {where}: column {column!r} is missing (the first row has it)")
            out.append(_label_cell(row[column], f"flip-rate file {file} {where}, column {column!r}"))
    if columns == TRUSTED_COLUMNS:
        return estimate_flip_rate(first, second, confidence)
    return estimate_flip_rate_from_agreement(first, second, confidence)


def _read_rows(file: Path) -> list[tuple[str, dict]]:
    """(where, row mapping) for each row: 'line N' (JSONL, CSV) or 'item N' (a JSON list)."""
    suffix = file.suffix.lower()
    if suffix == ".jsonl":
        rows = [(f"line {number}", value) for number, value in read_jsonl(file, "flip-rate file")]
    elif suffix == ".json":
        try:
            data = json.loads(read_text(file, "flip-rate file"))
        except json.JSONDecodeError as err:
            raise InputError(f"flip-rate file {file} is not valid JSON ({err.msg}, line {err.lineno})") from None
        if not isinstance(data, list):
            raise InputError(f"flip-rate file {file} must hold a JSON list of row objects, got a {type(data).__name__}")
        rows = [(f"item {i}", value) for i, value in enumerate(data)]
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(read_text(file, "flip-rate file"), newline=""))
        rows = []
        for row in reader:
            if None in row or None in row.values():  # more or fewer cells than the header names
                raise InputError(f"flip-rate file {file} line {reader.line_num}: {len(reader.fieldnames or [])} columns "
                                 "in the header, a different number in this row")
            rows.append((f"line {reader.line_num}", row))
    else:
        raise InputError(f"flip-rate file {file}: unsupported file type {suffix or '(none)'}; use one of {FILE_SUFFIXES}")
    for where, row in rows:
        if not isinstance(row, dict):
            raise InputError(f"flip-rate file {file} {where}: a row must be an object of column: value, "
                             f"got a {type(row).__name__}")
    return rows


def _pick_columns(file: Path, first_row: dict) -> tuple[str, str]:
    trusted = all(c in first_row for c in TRUSTED_COLUMNS)
    agreement = all(c in first_row for c in AGREEMENT_COLUMNS)
    if trusted and agreement:
        raise InputError(f"flip-rate file {file} has both {TRUSTED_COLUMNS} and {AGREEMENT_COLUMNS}: keep one pair "
                         "(trusted labels give the tighter estimate)")
    if not (trusted or agreement):
        raise InputError(f"flip-rate file {file}: unknown columns {sorted(first_row)}; give either {TRUSTED_COLUMNS} "
                         f"(a noisy and a trusted label) or {AGREEMENT_COLUMNS} (two independent noisy labels)")
    return TRUSTED_COLUMNS if trusted else AGREEMENT_COLUMNS


def _label_cell(value, where: str) -> bool:
    if isinstance(value, str):  # CSV cells are text
        text = value.strip().lower()
        if text in _TEXT_LABELS:
            return _TEXT_LABELS[text]
    elif isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise InputError(f"{where}: {value!r} is not a preference label; give 1/0 or true/false "
                     "(1 = the first answer preferred)")


# ------------------------------------------------------------------------------------------------ inputs
def _pair_of_labels(first, second, first_name: str, second_name: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_labels(first, first_name), _as_labels(second, second_name)
    if len(a) != len(b):
        raise InputError(f"{first_name} has {len(a)} rows and {second_name} has {len(b)}: give two labels of the same rows")
    if len(a) == 0:
        raise InputError(f"{first_name} and {second_name} are empty: give at least one doubly-labelled row")
    return a, b


def _as_labels(values, name: str) -> np.ndarray:
    """A bool array from bools or 0/1 ints (Python or NumPy); InputError naming the argument and the first bad row."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
        raise InputError(f"{name} must be a sequence of labels (bools or 0/1), got a {type(values).__name__}")
    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if array.ndim != 1:
        raise InputError(f"{name} must be one label per row (1-D), got shape {array.shape}")
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.integer):
        bad = np.flatnonzero((array != 0) & (array != 1))
        if bad.size == 0:
            return array.astype(bool)
        i = int(bad[0])
    else:  # floats, text, mixed objects: name the first value that is not a bool or a 0/1 int
        i = next((i for i, v in enumerate(values) if not _is_label(v)), None)
        if i is None:  # an object array of bools and 0/1 ints
            return np.array([bool(v) for v in values], dtype=bool)
    raise InputError(f"{name}[{i}]={values[i]!r} is not a preference label; give bools or 0/1 ints "
                     "(1 = the first answer preferred)")


def _is_label(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, (int, np.integer)) and value in (0, 1)
