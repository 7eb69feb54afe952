"""Prompts for the toxicity evaluation: RealToxicityPrompts (Gehman et al. 2020) or any local file.

Every prompt becomes a dict `{"prompt_id": str, "prompt": str, ...}`; extra fields (e.g. RTP's
`challenging`, `prompt_toxicity`) ride along into the records so results can be grouped by them.

    load_prompts("prompts.jsonl")                                      # local JSONL
    load_prompts("allenai/real-toxicity-prompts", challenging_only=True, limit=1000)  # the Hub
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Iterable, Sequence

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


def _normalise_row(row: dict, index: int, prompt_field: str | None, id_field: str | None) -> dict:
    fields = (prompt_field,) if prompt_field else PROMPT_FIELDS
    text = next((t for t in (_get(row, f) for f in fields) if t is not None), None)
    if not isinstance(text, str):
        raise ValueError(f"prompt row {index} has no text field {' / '.join(fields)} (keys: {sorted(row)}); "
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


def normalize_prompts(prompts: Iterable, prompt_field: str | None = None, id_field: str | None = None) -> list[dict]:
    """Strings or dicts -> `[{"prompt_id", "prompt", ...}]`. Ids default to the position; they must be unique."""
    out = []
    for i, p in enumerate(prompts):
        out.append({"prompt_id": str(i), "prompt": p} if isinstance(p, str) else _normalise_row(dict(p), i, prompt_field, id_field))
    seen: set[str] = set()
    for row in out:
        if row["prompt_id"] in seen:
            raise ValueError(f"duplicate prompt_id {row['prompt_id']!r}: prompt ids must be unique (results are grouped by them)")
        seen.add(row["prompt_id"])
    return out


def _read_local(path: Path) -> list:
    if path.suffix == ".txt":
        return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno} is not valid JSON ({err}); prompts files are JSONL, one object per line") from err
    return rows


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
    path = Path(source)
    if path.exists():
        rows = _read_local(path)
    elif str(source).endswith((".jsonl", ".json", ".txt")):
        raise FileNotFoundError(f"prompts file {source} does not exist")
    else:
        rows = _read_hub(str(source), split, revision)
    prompts = normalize_prompts(rows, prompt_field=prompt_field, id_field=id_field)
    if challenging_only:
        if not any("challenging" in p for p in prompts):
            raise ValueError(f"challenging_only=True but {source} has no 'challenging' field "
                             "(only RealToxicityPrompts-format rows carry it); drop --challenging")
        prompts = [p for p in prompts if p.get("challenging")]
    return subsample(prompts, limit, shuffle_seed)


def subsample(prompts: Sequence[dict], limit: int | None, shuffle_seed: int | None = None) -> list[dict]:
    prompts = list(prompts)
    if limit is None:
        return prompts
    if limit < 1:
        raise ValueError(f"limit must be >= 1 (got {limit}); omit it to keep every prompt")
    if shuffle_seed is not None:
        keep = sorted(random.Random(shuffle_seed).sample(range(len(prompts)), min(limit, len(prompts))))
        return [prompts[i] for i in keep]
    return prompts[:limit]
