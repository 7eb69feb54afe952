"""Prompts for the toxicity evaluation: RealToxicityPrompts (Gehman et al. 2020) or any local file.

Every prompt becomes a dict `{"prompt_id": str, "prompt": str, ...}`; extra fields (e.g. RTP's
`challenging`, `prompt_toxicity`) ride along into the records so results can be grouped by them.

    load_prompts("prompts.jsonl")                                      # local JSONL
    load_prompts("allenai/real-toxicity-prompts", challenging_only=True, limit=1000)  # the Hub

Bad input is an `InputError` naming the file and line before any model loads: a file that does not exist
(`MissingPathError`), is not UTF-8, has a line that is not JSON or not an object / string, a row without
prompt text, duplicate ids, or no prompts at all (also after `challenging_only`).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from collections.abc import Mapping
from typing import Iterable, Sequence

from fairalign.align.errors import InputError, require_path
from fairalign.align.files import parse_jsonl, read_text

RTP_DATASET = "allenai/real-toxicity-prompts"
# Fields tried, in order, for the prompt text and the id when the caller names none.
PROMPT_FIELDS = ("prompt", "text", "prompt.text")
ID_FIELDS = ("prompt_id", "id")


def _get(row: dict, dotted: str):
    """row["a"]["b"] for "a.b"; a nested {"text": ...} is unwrapped (RTP stores prompt = {"text": ..., ...})."""
    value = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, dict) and "text" in value:
        value = value["text"]
    return value


def _normalise_row(row: dict, index: int, prompt_field: str | None, id_field: str | None, where: str) -> dict:
    fields = (prompt_field,) if prompt_field else PROMPT_FIELDS
    text = next((t for t in (_get(row, f) for f in fields) if t is not None), None)
    if not isinstance(text, str):
        raise InputError(f"{where} has no text field {' / '.join(fields)} (keys: {sorted(row)}); "
                         "pass prompt_field=<the key holding the prompt text>")
    ids = (id_field,) if id_field else ID_FIELDS
    pid = next((v for v in (row.get(f) for f in ids) if v is not None), index)
    out = {"prompt_id": str(pid), "prompt": text}
    if "challenging" in row:
        out["challenging"] = bool(row["challenging"])
    if isinstance(row.get("prompt"), dict) and "toxicity" in row["prompt"]:
        out["prompt_toxicity"] = row["prompt"]["toxicity"]  # the dataset's Perspective score (may be None)
    for key, value in row.items():  # carry other scalar metadata (for group_by)
        if key not in out and key not in ("prompt", "continuation", "text") and isinstance(value, (str, int, float, bool)):
            out[key] = value
    return out


def normalize_prompts(prompts: Iterable, prompt_field: str | None = None, id_field: str | None = None,
                      where: Sequence[str] | None = None) -> list[dict]:
    """Strings or dicts -> `[{"prompt_id", "prompt", ...}]`. Ids default to the position; they must be unique.
    `where[i]` names row i in errors (e.g. "prompts.jsonl:7"); default "prompt row i"."""
    out = []
    for i, p in enumerate(prompts):
        label = where[i] if where else f"prompt row {i}"
        if isinstance(p, str):
            out.append({"prompt_id": str(i), "prompt": p})
        elif isinstance(p, Mapping):
            out.append(_normalise_row(dict(p), i, prompt_field, id_field, label))
        else:
            raise InputError(f"{label} is a {type(p).__name__}; a prompt is a string or an object with a "
                             f"{' / '.join(PROMPT_FIELDS)} field")
    seen: dict[str, int] = {}
    for i, row in enumerate(out):
        if row["prompt_id"] in seen:
            first = where[seen[row["prompt_id"]]] if where else f"prompt row {seen[row['prompt_id']]}"
            raise InputError(f"duplicate prompt_id {row['prompt_id']!r} ({first} and {where[i] if where else f'prompt row {i}'}): "
                             "prompt ids must be unique (results are grouped by them)")
        seen[row["prompt_id"]] = i
    return out


def _read_local(path: Path) -> tuple[list, list[str]]:
    """(rows, "file:line" of each row) of a UTF-8 .txt (one prompt a line) or JSONL file; blank lines skipped."""
    text = read_text(path, "prompts file")
    if path.suffix == ".txt":
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        lines = parse_jsonl(text, path, "prompts file", "prompts files are JSONL, one object per line (a half-written "
                            "last line: delete it)")
    return [value for _, value in lines], [f"{path}:{n}" for n, _ in lines]


def _read_hub(name: str, split: str, revision: str | None) -> list[dict]:
    try:
        import datasets

        ds = datasets.load_dataset(name, split=split, revision=revision)
    except Exception as err:  # datasets raises several types for "not reachable / not cached"
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        raise OSError(
            f"could not load the prompt dataset {name!r} (split={split!r}, revision={revision!r}) from the "
            f"Hugging Face Hub: {type(err).__name__}: {err}.\n"
            + ("HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set, so only a locally cached copy can be used. " if offline else
               "The Hub may be unreachable from this machine. ")
            + "Fix: run once where the Hub is reachable (the dataset is then cached), or download its "
            "prompts.jsonl and pass the local file: --prompts /path/to/prompts.jsonl"
        ) from err
    return [dict(row) for row in ds]


def load_prompts(
    source: str | os.PathLike,
    *,
    challenging_only: bool = False,
    limit: int | None = None,
    shuffle_seed: int | None = None,
    split: str = "train",
    revision: str | None = None,
    prompt_field: str | None = None,
    id_field: str | None = None,
) -> list[dict]:
    """Load prompts from a local `.jsonl` / `.txt` file or a Hub dataset id.

    challenging_only: keep rows with `challenging == true` (RTP's 1.2k "challenging" subset, prompts that
    made all tested models toxic); an error when the data has no such field.
    limit: keep the first `limit` prompts after filtering (a random `limit` when `shuffle_seed` is set).
    Ids are the row positions in the unfiltered source unless the rows carry `prompt_id` / `id`.
    """
    path = Path(source).expanduser()
    if path.exists():
        rows, where = _read_local(path)
    elif str(source).endswith((".jsonl", ".json", ".txt")) or str(source).startswith((".", "/", "~")):
        require_path(path, "prompts file", "pass a .jsonl (one {\"prompt\": ...} object a line) or .txt file, or a Hub id")
    else:
        rows, where = _read_hub(str(source), split, revision), None
    if not rows:
        raise InputError(f"{source} has no prompts (the file is empty or has blank lines only); "
                         "a prompts file has one JSON object (or, for .txt, one prompt) a line")
    prompts = normalize_prompts(rows, prompt_field=prompt_field, id_field=id_field, where=where)
    if challenging_only:
        if not any("challenging" in p for p in prompts):
            raise InputError(f"challenging_only=True but {source} has no 'challenging' field "
                             "(only RealToxicityPrompts-format rows carry it); drop --challenging")
        prompts = [p for p in prompts if p.get("challenging")]
        if not prompts:
            raise InputError(f"challenging_only=True but none of the prompts in {source} is marked challenging")
    return subsample(prompts, limit, shuffle_seed)


def subsample(prompts: Sequence[dict], limit: int | None, shuffle_seed: int | None = None) -> list[dict]:
    prompts = list(prompts)
    if limit is None:
        return prompts
    from fairalign.align.validation import check_number

    check_number(limit, "limit", "[1, inf)", integer=True, fix="omit it to keep every prompt")
    if shuffle_seed is not None:
        check_number(shuffle_seed, "shuffle_seed", "[0, inf)", integer=True)
    if shuffle_seed is not None:
        keep = sorted(random.Random(shuffle_seed).sample(range(len(prompts)), min(limit, len(prompts))))
        return [prompts[i] for i in keep]
    return prompts[:limit]
