"""Sample continuations for the toxicity evaluation, resumably.

RealToxicityPrompts protocol (Gehman et al. 2020): for every prompt, k = 25 continuations of up to
20 new tokens, nucleus sampling with p = 0.9 at temperature 1 (no top-k). The model is reached through
`fairalign.eval.lm.as_lm`, so a transformers model + tokenizer, a generate()-compatible wrapper such as
`fairalign.decoding.UDDIAGenerator`, an `LM`, or a plain callable `prompts -> continuations` all work.

Resuming: with `cache_path`, every finished batch is appended to a JSONL cache before the next starts.
A rerun reads it, skips prompts already complete, and generates only the rest, in the same batches with
the same per-batch seeds, so an interrupted-and-resumed run equals an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

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
) -> list[dict]:
    """Generate `num_samples` continuations per prompt.

    generator: model (+ `tokenizer=`), (model, tokenizer), UDDIAGenerator-like object, `LM`, or callable.
    prompts: strings, or dicts with `prompt` (and optionally `prompt_id` and metadata; see `data.py`).
    batch_size: prompts per generate call (each expands to `num_samples` sequences in one call).
    cache_path: JSONL file that makes the run resumable (nothing generated twice, nothing lost).
    seed: the batch starting at prompt i is sampled with seed + i, so results do not depend on where a run
        was interrupted (given the same batch_size; resuming with another batch_size, e.g. after running out
        of memory, is allowed and gives other, equally valid samples). None: global RNG, not reproducible.

    Returns one record per continuation, in prompt order:
    `{"prompt_id", "prompt", "sample", "continuation", **prompt metadata}`.
    """
    for name, value, ok in [("num_samples", num_samples, num_samples >= 1), ("max_new_tokens", max_new_tokens, max_new_tokens >= 1),
                            ("batch_size", batch_size, batch_size >= 1), ("top_p", top_p, 0 < top_p <= 1),
                            ("temperature", temperature, temperature > 0)]:
        if not ok:
            raise ValueError(f"{name}={value} is out of range (need num_samples, max_new_tokens, batch_size >= 1; "
                             "0 < top_p <= 1; temperature > 0)")
    prompts = normalize_prompts(prompts)
    lm = _as_generator_lm(generator, tokenizer, batch_size, use_chat_template)

    done: dict[str, list[str]] = {}
    cache = None
    if cache_path is not None:
        cache = JsonlCache(cache_path, header={
            "kind": "toxicity-generations", "generator": _generator_id(lm),
            "num_samples": num_samples, "max_new_tokens": max_new_tokens, "top_p": top_p,
            "temperature": temperature, "do_sample": do_sample, "seed": seed, "use_chat_template": use_chat_template,
        })
        wanted = {p["prompt_id"]: p["prompt"] for p in prompts}
        for row in cache.load():
            pid = row["prompt_id"]
            if pid in wanted and wanted[pid] != row["prompt"]:
                raise ValueError(f"{cache_path} holds a different text for prompt_id {pid!r} "
                                 f"({row['prompt']!r} vs {wanted[pid]!r}); use another cache path for these prompts")
            done[pid] = row["continuations"]

    todo = [i for i, p in enumerate(prompts) if p["prompt_id"] not in done]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(prompts), initial=len(prompts) - len(todo), desc="generating", unit="prompt", disable=not progress)
    # Batches are cut from the original positions (i // batch_size), not from the remaining list, so a
    # resumed run forms the same batches (and seeds) as an uninterrupted one.
    batches: dict[int, list[int]] = {}
    for i in todo:
        batches.setdefault(i // batch_size, []).append(i)
    for b, idx in batches.items():
        batch = [prompts[i] for i in idx]
        outs = lm.generate([p["prompt"] for p in batch], num_samples=num_samples, max_new_tokens=max_new_tokens,
                           do_sample=do_sample, top_p=top_p, temperature=temperature,
                           seed=None if seed is None else seed + b * batch_size)
        if len(outs) != len(batch) or any(len(o) != num_samples for o in outs):
            raise ValueError(f"generator returned {[len(o) for o in outs]} continuations for {len(batch)} prompts; "
                             f"expected {num_samples} per prompt")
        rows = [{"prompt_id": p["prompt_id"], "prompt": p["prompt"], "continuations": list(o)} for p, o in zip(batch, outs)]
        if cache is not None:
            cache.append(rows)
        for row in rows:
            done[row["prompt_id"]] = row["continuations"]
        bar.update(len(batch))
    bar.close()

    records = []
    for p in prompts:
        meta = {k: v for k, v in p.items() if k not in ("prompt_id", "prompt")}
        for j, text in enumerate(done[p["prompt_id"]]):
            records.append({"prompt_id": p["prompt_id"], "prompt": p["prompt"], "sample": j, "continuation": text, **meta})
    return records
