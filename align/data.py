"""Preference data: loading (local JSON/JSONL/CSV/Parquet or Hub id) and validation with clear errors.

Accepted layouts are the Hub's usual ones: `prompt` / `chosen` / `rejected` as plain strings, or as
conversations (lists of {"role", "content"} messages); conversational `chosen` / `rejected` without a
`prompt` column (implicit shared prefix) also work. Optional columns: `flip_rate` (per-example rDPO rate)
and `baseline` (RPO's SFT target when it is not the chosen response).
"""
from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger("fairalign")

LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def load_preference_dataset(name_or_path: str, split: str = "train", config_name: str | None = None):
    """A `datasets.Dataset` from a local file / directory or a Hub id (with `split`)."""
    import datasets

    path = Path(name_or_path)
    if path.suffix in LOCAL_FORMATS and path.exists():
        return datasets.load_dataset(LOCAL_FORMATS[path.suffix], data_files=str(path), split="train")
    if path.suffix in LOCAL_FORMATS:
        raise FileNotFoundError(f"dataset file not found: {path}")
    if path.is_dir():
        try:
            return datasets.load_from_disk(str(path))[split] if (path / "dataset_dict.json").exists() else datasets.load_from_disk(str(path))
        except FileNotFoundError:
            return datasets.load_dataset(str(path), split=split)
    try:
        return datasets.load_dataset(name_or_path, config_name, split=split)
    except Exception as err:  # offline, unknown id, ...
        raise ValueError(
            f"could not load dataset {name_or_path!r} (split {split!r}): {err}. Pass a local .jsonl/.json/.csv/.parquet "
            "file, a saved dataset directory, or a Hub id (needs network; HF_HUB_OFFLINE=1 forbids it)."
        ) from err


def _is_conversation(value) -> bool:
    return isinstance(value, list) and (len(value) == 0 or isinstance(value[0], dict))


def _is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if _is_conversation(value):
        return all(not str(m.get("content", "")).strip() for m in value)
    return False


def validate_preference_dataset(dataset, name: str = "train_dataset", drop_identical: bool = True):
    """Check columns and contents; return the dataset with identical pairs dropped (counted and logged).

    Raises ValueError, naming the column and the fix, for: missing `chosen`/`rejected`, a missing `prompt`
    with plain-text completions, empty completions, flip rates outside [0, 0.5).
    """
    columns = set(dataset.column_names)
    missing = {"chosen", "rejected"} - columns
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {sorted(missing)}; found {sorted(columns)}. Preference data needs "
            "`prompt`, `chosen` and `rejected` (rename yours with dataset.rename_column(old, new))."
        )
    first = dataset[0]
    if "prompt" not in columns and not _is_conversation(first["chosen"]):
        raise ValueError(
            f"{name} has no `prompt` column and its completions are plain text, so the prompt cannot be "
            "recovered. Add a `prompt` column (or use conversational chosen/rejected with a shared prefix)."
        )
    problems: dict[str, list[int]] = {"empty chosen": [], "empty rejected": [], "empty prompt": []}
    identical: list[int] = []
    for i, row in enumerate(dataset):
        for col in ("chosen", "rejected"):
            if _is_empty(row[col]):
                problems[f"empty {col}"].append(i)
        if "prompt" in columns and _is_empty(row["prompt"]):
            problems["empty prompt"].append(i)
        if row["chosen"] == row["rejected"]:
            identical.append(i)
        if "flip_rate" in columns:
            eps = row["flip_rate"]
            if eps is None or not (0.0 <= float(eps) < 0.5):
                raise ValueError(
                    f"{name} row {i}: flip_rate={eps} is outside [0, 0.5). A rate of 0.5 means the label is noise; "
                    "above it, swap chosen and rejected."
                )
    bad = {k: v for k, v in problems.items() if v}
    if bad:
        detail = "; ".join(f"{k} in rows {v[:10]}{' ...' if len(v) > 10 else ''} ({len(v)} rows)" for k, v in bad.items())
        raise ValueError(f"{name}: {detail}. Remove or fix these rows (e.g. dataset.filter(...)).")
    if identical and drop_identical:
        logger.warning(
            "%s: dropping %d pair(s) whose chosen == rejected (no preference signal): rows %s",
            name, len(identical), identical[:10],
        )
        keep = sorted(set(range(len(dataset))) - set(identical))
        dataset = dataset.select(keep)
    if len(dataset) == 0:
        raise ValueError(f"{name} has no usable preference pairs")
    return dataset
