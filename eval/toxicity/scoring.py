"""Attach toxicity scores to generation records, optionally through a resumable cache.

Records that already carry a `toxicity` key are kept as they are (None there means "failed earlier").
The rest are scored in batches cut from their positions (batch k = the k-th `batch_size` of them), so a
resumed run puts every text in the same scorer call as an uninterrupted one (a classifier's padding, hence
its last digits, can depend on its batch). With `cache_path`, each scored batch is one line of a
batch-atomic cache (cache.py: torn last line dropped, corrupt line named, batch_size recorded); a rerun
reuses successful scores by (prompt_id, sample, text) and scores only what failed or was never scored,
which matters for a rate-limited API at ~1 text per second.
"""
from __future__ import annotations

import os
from typing import Sequence

from fairalign.align.errors import InputError
from fairalign.align.locking import hold_file
from fairalign.align.validation import check_number
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
    shard=None,
) -> list[dict]:
    """Copies of `records` with `toxicity` set (float in [0, 1], or None where the scorer failed).
    cache_path: the score cache; the file is held (`hold_file`) while scoring.
    shard: a `fairalign.eval.distributed.Dist`: score only the batches (of the records still unscored, in order)
    this process owns; the others' records come back without `toxicity`."""
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
    check_number(batch_size, "batch_size", "[1, inf)", integer=True)
    info = describe_scorer(scorer)
    if cache_path is None:
        return _score(records, todo, scorer, info, batch_size, None, progress, shard)
    cache = JsonlCache(cache_path, header={"kind": "toxicity-scores", "scorer": info.get("name"), "batch_size": batch_size})
    with hold_file(cache.path):
        return _score(records, todo, scorer, info, batch_size, cache, progress, shard)


def _known(cache: JsonlCache | None) -> dict[tuple, float]:
    """Successful scores in the cache by (prompt_id, sample, text); failed ones (None) are retried."""
    known: dict[tuple, float] = {}
    for batch in cache.load_batches() if cache is not None else []:
        for row in batch.rows:
            try:
                key, score = (row["prompt_id"], row["sample"], row["continuation"]), row["toxicity"]
            except KeyError as err:
                raise InputError(f"{cache.where(batch.line)}: a score row without {err}; the cache is corrupt: "
                                 "delete it (or pass another cache path)") from None
            if score is not None:  # lines in file order: a retried score follows the failure it replaces
                known[key] = score
    return known


def _score(records, todo, scorer, info, batch_size, cache, progress, shard=None) -> list[dict]:
    from tqdm.auto import tqdm

    known = _known(cache)
    for i in todo:
        if _key(records[i]) in known:
            records[i]["toxicity"] = known[_key(records[i])]
    bar = tqdm(total=len(todo), initial=sum(_key(records[i]) in known for i in todo), desc="scoring", unit="text",
               disable=not progress)
    for k, start in enumerate(range(0, len(todo), batch_size)):
        if shard is not None and not shard.owns(k):
            continue
        idx = [i for i in todo[start : start + batch_size] if _key(records[i]) not in known]
        if not idx:
            continue
        scores = validate_scores(scorer([records[i]["continuation"] for i in idx]), len(idx), info.get("name", "scorer"))
        for i, s in zip(idx, scores):
            records[i]["toxicity"] = s
        if cache is not None:
            cache.append_batch(k, [{"prompt_id": str(records[i]["prompt_id"]), "sample": records[i].get("sample"),
                                    "continuation": records[i]["continuation"], "toxicity": records[i]["toxicity"]}
                                   for i in idx])
        bar.update(len(idx))
    bar.close()
    return records
