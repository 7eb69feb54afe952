"""Sample continuations for the toxicity evaluation, resumably.

RealToxicityPrompts protocol (Gehman et al. 2020): for every prompt, k = 25 continuations of up to
20 new tokens, nucleus sampling with p = 0.9 at temperature 1 (no top-k). The model is reached through
`fairalign.eval.lm.as_lm`, so a transformers model + tokenizer, a generate()-compatible wrapper such as
`fairalign.decoding.UDDIAGenerator`, an `LM`, or a plain callable `prompts -> continuations` all work.

Resuming: with `cache_path`, every finished batch is appended to a JSONL cache (cache.py: one line per
batch) before the next starts. A rerun reuses the complete batches and generates the rest, whole, in the
same batches with the same per-batch seeds, so an interrupted-and-resumed run equals an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from fairalign.align.errors import InputError
from fairalign.align.locking import hold_file
from fairalign.align.validation import check_number
from fairalign.eval.lm import LM, as_lm
from fairalign.eval.toxicity.cache import JsonlCache
from fairalign.eval.toxicity.data import normalize_prompts


def _as_generator_lm(generator, tokenizer, batch_size: int, use_chat_template: bool) -> LM:
    if isinstance(generator, LM):
        return generator
    has_tokenizer = tokenizer is not None or getattr(generator, "tokenizer", None) is not None
    if hasattr(generator, "generate") and not has_tokenizer and not isinstance(generator, tuple):
        # A bare transformers model is also callable; without this check it would be mistaken for fn(prompts).
        raise ValueError(f"{type(generator).__name__} has generate() but no tokenizer: pass tokenizer=... "
                         "or a (model, tokenizer) pair")
    return as_lm(generator, tokenizer, batch_size=batch_size, use_chat_template=use_chat_template)


def _generator_id(lm: LM) -> str:
    """What the cache header records about the generator: wrapper type, model name and a wrapper's dataclass
    config, so a cache made by plain sampling (or other UDDIA settings, or another model) is not resumed by mistake."""
    inner = getattr(lm, "model", None)
    inner = getattr(lm, "fn", None) if inner is None else inner
    ident = f"{type(lm).__name__}/{type(inner).__name__}/{getattr(lm, 'name', '')}"
    config = getattr(inner, "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        ident += f"/{config!r}"  # a wrapper's settings (e.g. UDDIAConfig): other settings = another cache
    return ident


def check_sampling(num_samples, max_new_tokens, top_p, temperature, batch_size, seed=None) -> None:
    """InputError naming the argument unless each is a finite number in its range (NaN and bools included)."""
    check_number(num_samples, "num_samples", "[1, inf)", integer=True)
    check_number(max_new_tokens, "max_new_tokens", "[1, inf)", integer=True)
    check_number(batch_size, "batch_size", "[1, inf)", integer=True)
    check_number(top_p, "top_p", "(0, 1]")
    check_number(temperature, "temperature", "(0, inf)")
    if seed is not None:
        check_number(seed, "seed", "[0, inf)", integer=True)


def generate_continuations(
    generator,
    prompts: Sequence,
    num_samples: int = 25,
    max_new_tokens: int = 20,
    top_p: float = 0.9,
    batch_size: int = 8,
    cache_path: str | os.PathLike | None = None,
    *,
    temperature: float = 1.0,
    do_sample: bool = True,
    seed: int | None = 0,
    tokenizer=None,
    use_chat_template: bool = False,
    progress: bool = True,
    shard=None,
) -> list[dict]:
    """Generate `num_samples` continuations per prompt.

    generator: model (+ `tokenizer=`), (model, tokenizer), UDDIAGenerator-like object, `LM`, or callable.
    prompts: strings, or dicts with `prompt` (and optionally `prompt_id` and metadata; see `data.py`).
    batch_size: prompts per generate call (each expands to `num_samples` sequences in one call).
    cache_path: JSONL file that makes the run resumable (cache.py): one line per finished batch; its
        file is held (`hold_file`) while generating, so two processes never write one cache.
    seed: batch b (prompts b*batch_size .. (b+1)*batch_size - 1) is sampled with seed + b*batch_size, so
        results do not depend on where a run was interrupted. A batch is reused only whole and only if it
        holds exactly the prompts this run puts in it; anything else is generated again, whole. batch_size
        is recorded in the cache: resuming with another one is refused (it would change the seeds).
        None: global RNG, not reproducible.
    shard: a `fairalign.eval.distributed.Dist` (or anything with `owns(batch_index)`): generate only the batches
        this process owns (the same batches and seeds as one process) and return only their records.

    Returns one record per continuation, in prompt order:
    `{"prompt_id", "prompt", "sample", "continuation", **prompt metadata}`.
    """
    check_sampling(num_samples, max_new_tokens, top_p, temperature, batch_size, seed)
    prompts = normalize_prompts(prompts)
    lm = _as_generator_lm(generator, tokenizer, batch_size, use_chat_template)
    if cache_path is None:
        return _generate(lm, prompts, None, num_samples, max_new_tokens, top_p, batch_size, temperature, do_sample,
                         seed, progress, shard)
    cache = JsonlCache(cache_path, header={
        "kind": "toxicity-generations", "generator": _generator_id(lm), "num_samples": num_samples,
        "max_new_tokens": max_new_tokens, "top_p": top_p, "temperature": temperature, "do_sample": do_sample,
        "seed": seed, "use_chat_template": use_chat_template, "batch_size": batch_size,
    })
    with hold_file(cache.path):
        return _generate(lm, prompts, cache, num_samples, max_new_tokens, top_p, batch_size, temperature, do_sample,
                         seed, progress, shard)


def _cached(cache: JsonlCache | None, prompts: list[dict], num_samples: int) -> dict:
    """The cache's batches, checked against this run's prompts: a prompt id with another text is an error
    (the cache belongs to other prompts), a batch with the wrong number of continuations is corruption."""
    if cache is None:
        return {}
    batches = {}
    wanted = {p["prompt_id"]: p["prompt"] for p in prompts}
    for batch in cache.load_batches():
        batches[batch.index] = batch  # the last line of a batch index wins (cache.py)
        for row in batch.rows:
            pid, text, outs = row.get("prompt_id"), row.get("prompt"), row.get("continuations")
            if not (isinstance(pid, str) and isinstance(text, str) and isinstance(outs, list) and len(outs) == num_samples):
                raise InputError(f"{cache.where(batch.line)}: a row without prompt_id, prompt and {num_samples} "
                                 f"continuations; the cache is corrupt: delete it (or pass another cache path)")
            if pid in wanted and wanted[pid] != text:
                raise InputError(f"{cache.path} holds a different text for prompt_id {pid!r} ({text!r} vs "
                                 f"{wanted[pid]!r}); use another cache path for these prompts")
    return batches


def _generate(lm, prompts, cache, num_samples, max_new_tokens, top_p, batch_size, temperature, do_sample, seed,
              progress, shard=None) -> list[dict]:
    from tqdm.auto import tqdm

    cached = _cached(cache, prompts, num_samples)
    done: dict[str, list[str]] = {}
    todo: list[tuple[int, list[dict]]] = []
    # Batches are cut from the original positions, so a resumed run forms the same batches (and seeds) as an
    # uninterrupted one; a cached batch counts only if it holds exactly these prompts.
    mine = []
    for b, start in enumerate(range(0, len(prompts), batch_size)):
        batch = prompts[start : start + batch_size]
        if shard is not None and not shard.owns(b):
            continue
        mine += batch
        hit = cached.get(b)
        wanted = [(p["prompt_id"], p["prompt"]) for p in batch]
        if hit is not None and [(r["prompt_id"], r["prompt"]) for r in hit.rows] == wanted:
            done.update((r["prompt_id"], r["continuations"]) for r in hit.rows)
        else:
            todo.append((b, batch))
    bar = tqdm(total=len(mine), initial=len(done), desc="generating", unit="prompt", disable=not progress)
    for b, batch in todo:
        outs = lm.generate([p["prompt"] for p in batch], num_samples=num_samples, max_new_tokens=max_new_tokens,
                           do_sample=do_sample, top_p=top_p, temperature=temperature,
                           seed=None if seed is None else seed + b * batch_size)
        if len(outs) != len(batch) or any(len(o) != num_samples for o in outs):
            raise ValueError(f"generator returned {[len(o) for o in outs]} continuations for {len(batch)} prompts; "
                             f"expected {num_samples} per prompt")
        rows = [{"prompt_id": p["prompt_id"], "prompt": p["prompt"], "continuations": list(o)} for p, o in zip(batch, outs)]
        if cache is not None:
            cache.append_batch(b, rows)
        done.update((r["prompt_id"], r["continuations"]) for r in rows)
        bar.update(len(batch))
    bar.close()

    records = []
    for p in mine:
        meta = {k: v for k, v in p.items() if k not in ("prompt_id", "prompt")}
        for j, text in enumerate(done[p["prompt_id"]]):
            records.append({"prompt_id": p["prompt_id"], "prompt": p["prompt"], "sample": j, "continuation": text, **meta})
    return records
