"""Attach toxicity scores to generation records, optionally through a resumable cache.

Records that already carry a `toxicity` key are kept as they are (None there means "failed earlier").
With `cache_path`, scores are appended per batch to a JSONL cache keyed by (prompt_id, sample, text);
a rerun reuses successful scores and retries only the texts that failed or were never scored, which
matters for a rate-limited API at ~1 text per second.
"""
from __future__ import annotations

import os
from typing import Sequence

from fairalign.eval.toxicity.cache import JsonlCache
from fairalign.eval.toxicity.scorers import describe_scorer, validate_scores


def _key(record: dict) -> tuple[str, int | None, str]:
    return (str(record["prompt_id"]), record.get("sample"), record["continuation"])


def score_records(
    records: Sequence[dict],
    scorer=None,
    batch_size: int = 256,
    cache_path: str | os.PathLike | None = None,
    progress: bool = False,
) -> list[dict]:
    """Copies of `records` with `toxicity` set (float in [0, 1], or None where the scorer failed)."""
    records = [dict(r) for r in records]
    for i, r in enumerate(records):
        if "prompt_id" not in r or "continuation" not in r:
            raise ValueError(f"record {i} needs 'prompt_id' and 'continuation' (has {sorted(r)})")
        if not isinstance(r["continuation"], str):
            raise ValueError(f"record {i}: 'continuation' must be a string, got {type(r['continuation']).__name__}")
    todo = [i for i, r in enumerate(records) if "toxicity" not in r]
    if not todo:
        return records
    if scorer is None:
        raise ValueError(f"{len(todo)} records have no 'toxicity' score and no scorer was given: pass scorer=...")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")

    info = describe_scorer(scorer)
    cache = JsonlCache(cache_path, header={"kind": "toxicity-scores", "scorer": info.get("name")}) if cache_path else None
    known: dict[tuple, float] = {}
    if cache is not None:
        for row in cache.load():
            if row["toxicity"] is not None:  # failed scores are retried
                known[(row["prompt_id"], row["sample"], row["continuation"])] = row["toxicity"]
    pending = []
    for i in todo:
        if _key(records[i]) in known:
            records[i]["toxicity"] = known[_key(records[i])]
        else:
            pending.append(i)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), initial=len(todo) - len(pending), desc="scoring", unit="text", disable=not progress)
    for start in range(0, len(pending), batch_size):
        idx = pending[start : start + batch_size]
        scores = validate_scores(scorer([records[i]["continuation"] for i in idx]), len(idx), info.get("name", "scorer"))
        for i, s in zip(idx, scores):
            records[i]["toxicity"] = s
        if cache is not None:
            cache.append({"prompt_id": str(records[i]["prompt_id"]), "sample": records[i].get("sample"),
                          "continuation": records[i]["continuation"], "toxicity": records[i]["toxicity"]} for i in idx)
        bar.update(len(idx))
    bar.close()
    return records
