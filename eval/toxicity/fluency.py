"""Fluency and diversity of continuations (reported beside toxicity: detoxifying by emitting gibberish or
the same safe phrase must show up somewhere).

Perplexity of continuation c given prompt x under a fixed evaluator LM (Gehman et al. used GPT-2 XL):
    PPL(c | x) = exp( -1/|c| * sum_t log p(c_t | x, c_<t) )
    perplexity                = mean over all continuations of PPL(c | x)          # DExperts / UDDIA convention
    token_weighted_perplexity = exp( sum NLL / sum |c| ) over all continuations    # less outlier-driven
Context and continuation are tokenised together (a merge across the boundary counts once) and the tokens
after the longest common prefix with the context alone are scored, like `fairalign.eval.lm.HFLM.loglikelihood`.
Only text crosses from generator to evaluator, so the evaluator may have another tokenizer than the generator
(`load_evaluator("gemma3-270m")`: Gemma's 262k-token vocabulary, vs SmolLM2's 49k); |c| counts the evaluator's
tokens, so perplexities under different evaluators are not comparable.
Empty continuations have no tokens and are excluded (counted).

Diversity (Li et al. 2016, as used by DExperts): for each prompt, over its k samples,
    Dist-n = #distinct n-grams / #n-grams      (whitespace tokens; n-grams do not cross samples)
averaged over prompts; prompts with no n-gram are excluded. 95% CIs: bootstrap over prompts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from fairalign.eval.stats import Estimate, bootstrap_ci, bootstrap_mean


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """#distinct n-grams / #n-grams over the whitespace tokens of `texts` (None when there is no n-gram)."""
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    grams = []
    for text in texts:
        words = text.split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def _by_prompt(records: Sequence[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for i, r in enumerate(records):
        if "prompt_id" not in r or "continuation" not in r:
            raise ValueError(f"record {i} needs 'prompt_id' and 'continuation' (has {sorted(r)})")
        out.setdefault(str(r["prompt_id"]), []).append(r)
    return out


def diversity(records: Sequence[dict], ns: Sequence[int] = (1, 2, 3), num_resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """`{"dist_1": Estimate, ...}`: Dist-n per prompt, averaged over prompts."""
    groups = _by_prompt(records)
    out = {}
    for n in ns:
        values = [v for rows in groups.values() if (v := distinct_n([r["continuation"] for r in rows], n)) is not None]
        out[f"dist_{n}"] = bootstrap_mean(values, num_resamples=num_resamples, seed=seed)
    return out


def load_evaluator(name: str = "smollm2", device=None, dtype=None):
    """(model in eval mode, tokenizer) of an evaluator LM for perplexity: a Hub id, a local folder, or a packaged
    GGUF model of `fairalign.align.modeling.EMBEDDED_MODELS` ("smollm2"; "gemma3-270m", opt-in: `bash
    scripts/setup.sh repro`), converted once to a cached safetensors folder. A missing package is an ImportError
    naming the pip command."""
    from fairalign.align.modeling import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(name, dtype=dtype, device=device, padding_side="right")
    return model.eval(), tokenizer


def continuation_perplexities(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 16) -> list[float | None]:
    """PPL(c | x) of each (context x, continuation c) under the evaluator (None: c adds no token)."""
    return [math.exp(nll / n) if n else None for nll, n in continuation_nll(model, tokenizer, pairs, batch_size)]


def _keeps_logits(model) -> bool:
    import inspect

    return "logits_to_keep" in inspect.signature(model.forward).parameters


def continuation_nll(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 16,
                     progress: bool = False, shard=None) -> list[tuple[float, int]]:
    """(summed negative log-likelihood in nats, number of tokens) of each continuation given its context.

    Batched with right padding, longest first (less padding). A pair whose continuation adds no token gets (0.0, 0).
    The LM head runs only from the batch's first scored position on (`logits_to_keep`, where the model takes it):
    logits are batch x positions x vocabulary, and Gemma's vocabulary is 262k.
    shard: a `fairalign.eval.distributed.Dist`: compute only the batches this process owns (the same batches as
    one process: the length order is global); the other pairs come back as None.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    encoded = []
    for context, continuation in pairs:
        ctx = tokenizer(context)["input_ids"]
        full = tokenizer(context + continuation)["input_ids"]
        k = 0
        while k < min(len(ctx), len(full)) and ctx[k] == full[k]:
            k += 1
        encoded.append((full, max(k, 1)))  # the first token has no context to be predicted from
    results: list[tuple[float, int]] = [(0.0, 0)] * len(pairs)
    order = sorted((i for i, (full, start) in enumerate(encoded) if start < len(full)), key=lambda i: -len(encoded[i][0]))
    starts = range(0, len(order), batch_size)
    if shard is not None:
        for j, s in enumerate(starts):
            if not shard.owns(j):
                for i in order[s : s + batch_size]:
                    results[i] = None
        starts = [s for j, s in enumerate(starts) if shard.owns(j)]
    window = _keeps_logits(model)
    for s in tqdm(starts, desc="perplexity", unit="batch", disable=not progress or len(starts) < 2):
        idx = order[s : s + batch_size]
        width = len(encoded[idx[0]][0])
        ids = torch.full((len(idx), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        targets = torch.full((len(idx), width - 1), -100, dtype=torch.long)  # -100: not scored
        for row, i in enumerate(idx):
            full, start = encoded[i]
            ids[row, : len(full)] = torch.tensor(full)
            mask[row, : len(full)] = 1
            targets[row, start - 1 : len(full) - 1] = torch.tensor(full[start:])  # position t predicts token t+1
        first = min(encoded[i][1] for i in idx) - 1 if window else 0  # no position before it predicts a scored token
        kwargs = {"logits_to_keep": torch.arange(first, width - 1, device=device)} if window else {}
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs).logits  # (B, T', V)
            logits = (logits if window else logits[:, :-1]).float()  # positions first .. T-2
        targets = targets[:, first:]
        nll = F.cross_entropy(logits.transpose(1, 2), targets.to(device), reduction="none", ignore_index=-100)  # (B, T-1-first)
        counts = (targets != -100).sum(1)
        for row, i in enumerate(idx):
            results[i] = (float(nll[row].sum()), int(counts[row]))
    return results


@dataclass
class FluencyResult:
    evaluator: str | None
    perplexity: Estimate | None
    token_weighted_perplexity: Estimate | None
    num_perplexity_excluded: int  # continuations with no token (empty): no perplexity
    distinct: dict[str, Estimate] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"evaluator": self.evaluator,
                "perplexity": self.perplexity.to_dict() if self.perplexity else None,
                "token_weighted_perplexity": self.token_weighted_perplexity.to_dict() if self.token_weighted_perplexity else None,
                "num_perplexity_excluded": self.num_perplexity_excluded,
                **{k: v.to_dict() for k, v in self.distinct.items()}}

    def to_markdown(self, task=None) -> str:
        from fairalign.eval.toxicity.report import fluency_markdown

        return fluency_markdown(self, task)


def _mean_ppl(clusters: list[list[tuple[float, int]]]) -> float:
    ppls = [math.exp(nll / n) for c in clusters for nll, n in c]
    return sum(ppls) / len(ppls) if ppls else math.nan


def _token_weighted_ppl(clusters: list[list[tuple[float, int]]]) -> float:
    tokens = sum(n for c in clusters for _, n in c)
    return math.exp(sum(nll for c in clusters for nll, _ in c) / tokens) if tokens else math.nan


def evaluate_fluency(
    records: Sequence[dict],
    evaluator=None,
    tokenizer=None,
    *,
    distinct_ns: Sequence[int] = (1, 2, 3),
    batch_size: int = 16,
    num_resamples: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> FluencyResult:
    """Perplexity under `evaluator` (a causal LM + `tokenizer`, a (model, tokenizer) pair, or an `HFLM`;
    None skips it) and Dist-n. Records need `prompt_id`, `prompt`, `continuation`."""
    groups = _by_prompt(records)
    distinct = diversity(records, distinct_ns, num_resamples, seed)
    if evaluator is None:
        return FluencyResult(None, None, None, 0, distinct)
    if isinstance(evaluator, tuple):
        evaluator, tokenizer = evaluator
    model = getattr(evaluator, "scoring_model", evaluator)  # an HFLM exposes its plain model
    tokenizer = tokenizer or getattr(evaluator, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("evaluate_fluency needs the evaluator's tokenizer: pass tokenizer=... or a (model, tokenizer) pair")
    flat = [r for rows in groups.values() for r in rows]
    for i, r in enumerate(flat):
        if not isinstance(r.get("prompt"), str):
            raise ValueError(f"record for prompt {r['prompt_id']!r} has no 'prompt' text: perplexity is conditioned on it")
    scored = continuation_nll(model, tokenizer, [(r["prompt"], r["continuation"]) for r in flat], batch_size, progress)
    clusters, pos = [], 0
    for rows in groups.values():
        clusters.append([x for x in scored[pos : pos + len(rows)] if x[1] > 0])
        pos += len(rows)
    excluded = sum(1 for _, n in scored if n == 0)
    clusters = [c for c in clusters if c]
    name = getattr(getattr(model, "config", None), "name_or_path", None) or type(model).__name__
    return FluencyResult(
        evaluator=name,
        perplexity=bootstrap_ci(clusters, _mean_ppl, num_resamples=num_resamples, seed=seed),
        token_weighted_perplexity=bootstrap_ci(clusters, _token_weighted_ppl, num_resamples=num_resamples, seed=seed),
        num_perplexity_excluded=excluded,
        distinct=distinct,
    )
