"""Preference data: loading (local JSON/JSONL/CSV/Parquet or Hub id) and validation with clear errors.

Accepted layouts are the Hub's usual ones: `prompt` / `chosen` / `rejected` as plain strings, or as
conversations (lists of {"role", "content"} messages); conversational `chosen` / `rejected` without a
`prompt` column (implicit shared prefix) also work. Optional columns: `flip_rate` (per-example rDPO rate)
and `baseline` (RPO's SFT target when it is not the chosen response).
"""
from __future__ import annotations

import logging
from pathlib import Path

from fairalign.align.errors import InputError, MissingPathError
from fairalign.align.files import parse_jsonl, read_text

logger = logging.getLogger("fairalign")

LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
# Roles of the chat templates fairalign trains with (ChatML, Llama, ...). Others, e.g. ShareGPT's human/gpt,
# would be rendered verbatim by the template, so the role name would end up inside the trained text.
CHAT_ROLES = ("system", "user", "assistant", "tool")
ROLE_HINTS = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant", "ai": "assistant"}


def load_preference_dataset(name_or_path: str, split: str = "train", config_name: str | None = None):
    """A `datasets.Dataset` from a local file / directory or a Hub id (with `split`). A local text file is
    checked first (UTF-8, not empty, every JSON Lines row valid), so a bad file is named with its line."""
    import datasets

    path = Path(name_or_path)
    if path.suffix in LOCAL_FORMATS and path.exists():
        check_text_file(path)
        return datasets.load_dataset(LOCAL_FORMATS[path.suffix], data_files=str(path), split="train")
    if path.suffix in LOCAL_FORMATS or str(name_or_path).startswith((".", "/", "~")):
        raise MissingPathError(f"dataset {name_or_path} does not exist; check the path (a .jsonl/.json/.csv/.parquet "
                               "file, a saved dataset folder) or give a Hub id")
    if path.is_dir():
        try:
            return datasets.load_from_disk(str(path))[split] if (path / "dataset_dict.json").exists() else datasets.load_from_disk(str(path))
        except FileNotFoundError:
            return datasets.load_dataset(str(path), split=split)
    try:
        return datasets.load_dataset(name_or_path, config_name, split=split)
    except Exception as err:  # offline, unknown id, ...
        raise InputError(
            f"could not load dataset {name_or_path!r} (split {split!r}): {err}. Pass a local .jsonl/.json/.csv/.parquet "
            "file, a saved dataset directory, or a Hub id (needs network; HF_HUB_OFFLINE=1 forbids it)."
        ) from err


def check_text_file(path: Path) -> None:
    """InputError naming the file (and line) for a preference file that is empty, not UTF-8, or (JSON Lines)
    has a row that is not a JSON object. Parquet is binary: left to its reader."""
    if path.suffix not in (".json", ".jsonl", ".csv"):
        return
    text = read_text(path, "preference dataset")
    if not text.strip():
        raise InputError(f"{path} is empty: a preference dataset needs rows with prompt, chosen and rejected")
    if path.suffix == ".jsonl" or (path.suffix == ".json" and not text.lstrip().startswith(("[", "{\"data\""))):
        kinds: dict[str, tuple[str, int]] = {}
        for number, row in parse_jsonl(text, path, "preference dataset"):
            if not isinstance(row, dict):
                raise InputError(f"{path} line {number}: a row must be a JSON object with prompt/chosen/rejected, "
                                 f"got {type(row).__name__}")
            for col in ("prompt", "chosen", "rejected", "baseline"):  # Arrow cannot hold text and lists in one column
                if row.get(col) is not None:
                    kind = "conversational" if _is_conversation(row[col]) else "plain text"
                    first = kinds.setdefault(col, (kind, number))
                    if first[0] != kind:
                        raise InputError(f"{path} line {number}: `{col}` is {kind}, but line {first[1]} has it "
                                         f"{first[0]}; use one layout for every row")


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
    if len(dataset) == 0:
        raise InputError(f"{name} has no rows; a preference dataset needs prompt, chosen and rejected")
    missing = {"chosen", "rejected"} - columns
    if missing:
        raise InputError(
            f"{name} is missing column(s) {sorted(missing)}; found {sorted(columns)}. Preference data needs "
            "`prompt`, `chosen` and `rejected` (rename yours with dataset.rename_column(old, new))."
        )
    first = dataset[0]
    if "prompt" not in columns and not _is_conversation(first["chosen"]):
        raise InputError(
            f"{name} has no `prompt` column and its completions are plain text, so the prompt cannot be "
            "recovered. Add a `prompt` column (or use conversational chosen/rejected with a shared prefix)."
        )
    problems: dict[str, list[int]] = {"empty chosen": [], "empty rejected": [], "empty prompt": []}
    identical: list[int] = []
    text_columns = [c for c in ("prompt", "chosen", "rejected", "baseline") if c in columns]
    conversational = _is_conversation(first["chosen"])
    for i, row in enumerate(dataset):
        _check_layout(row, i, name, text_columns, conversational)
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
                raise InputError(
                    f"{name} row {i}: flip_rate={eps} is outside [0, 0.5). A rate of 0.5 means the label is noise; "
                    "above it, swap chosen and rejected."
                )
    bad = {k: v for k, v in problems.items() if v}
    if bad:
        detail = "; ".join(f"{k} in rows {v[:10]}{' ...' if len(v) > 10 else ''} ({len(v)} rows)" for k, v in bad.items())
        raise InputError(f"{name}: {detail}. Remove or fix these rows (e.g. dataset.filter(...)).")
    if identical and drop_identical:
        logger.warning(
            "%s: dropping %d pair(s) whose chosen == rejected (no preference signal): rows %s",
            name, len(identical), identical[:10],
        )
        keep = sorted(set(range(len(dataset))) - set(identical))
        dataset = dataset.select(keep)
    if len(dataset) == 0:
        raise InputError(f"{name} has no usable preference pairs")
    return dataset


def _check_layout(row: dict, i: int, name: str, columns: list[str], conversational: bool) -> None:
    """One layout for the whole dataset (TRL renders a row by the kind of its first column), and chat roles
    the template knows."""
    for col in columns:
        value = row[col]
        if value is None:
            continue
        if _is_conversation(value) != conversational:
            kind = "conversational (a list of {role, content} messages)" if conversational else "plain text"
            raise InputError(
                f"{name} row {i}: column `{col}` is {'plain text' if conversational else 'a conversation'}, but the "
                f"dataset is {kind} (row 0's `chosen`). Use one layout for every row and column: convert plain rows "
                "with [{'role': 'user', 'content': prompt}] / [{'role': 'assistant', 'content': answer}].")
        if conversational:
            for j, message in enumerate(value):
                role = message.get("role") if isinstance(message, dict) else None
                if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                    raise InputError(f"{name} row {i}: `{col}`[{j}] must be a {{'role': ..., 'content': str}} message; "
                                     f"got {message!r:.80}")
                if role not in CHAT_ROLES:
                    hint = f" (rename it to {ROLE_HINTS[str(role).lower()]!r})" if str(role).lower() in ROLE_HINTS else ""
                    raise InputError(
                        f"{name} row {i}: `{col}`[{j}] has role {role!r}; chat templates know {list(CHAT_ROLES)}, and an "
                        f"unknown role would be trained as text{hint}. Map the roles first, e.g. dataset.map(...).")
