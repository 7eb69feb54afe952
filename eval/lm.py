"""The one interface through which evaluations reach a language model.

Evaluations never touch a model directly. They take either
- a plain callable `prompts: list[str] -> list[str]` (one continuation per prompt), or
- an `LM` (below), which adds batched sampling of several continuations and exact log-likelihoods.

`as_lm(obj, tokenizer)` turns what a user has into an `LM`: a transformers model (+ tokenizer), an object
with a `generate()` like `model.generate` and a `.tokenizer` (e.g. `UDDIAGenerator`), or a callable.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


class LM:
    """Batched text generation and scoring. Subclasses implement `generate`; `loglikelihood` is optional."""

    name: str = "lm"

    def generate(
        self,
        prompts: Sequence[str],
        num_samples: int = 1,
        max_new_tokens: int = 20,
        do_sample: bool = True,
        top_p: float = 1.0,
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> list[list[str]]:
        """For each prompt, `num_samples` continuations (text after the prompt)."""
        raise NotImplementedError

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """For each (context, continuation), log p(continuation | context) summed over its tokens."""
        raise NotImplementedError(f"{type(self).__name__} cannot score log-likelihoods; pass a transformers model")


@dataclass
class CallableLM(LM):
    """Wraps `fn(prompts) -> continuations`. Sampling several continuations calls fn once per sample."""

    fn: Callable[[list[str]], list[str]]
    name: str = "callable"

    def generate(self, prompts, num_samples=1, **_ignored) -> list[list[str]]:
        prompts = list(prompts)
        samples = [list(self.fn(prompts)) for _ in range(num_samples)]
        for s in samples:
            if len(s) != len(prompts):
                raise ValueError(f"generator returned {len(s)} continuations for {len(prompts)} prompts")
        return [[samples[k][i] for k in range(num_samples)] for i in range(len(prompts))]


class HFLM(LM):
    """A transformers causal LM, or any object whose `generate()` accepts model.generate's arguments
    (e.g. `fairalign.decoding.UDDIAGenerator`), plus its tokenizer.

    use_chat_template: wrap each prompt as a user turn (instruction-tuned models answering questions);
    off for completion-style prompts. Log-likelihoods always use the raw prompt text unless
    use_chat_template is on, in which case the context is templated the same way.
    """

    def __init__(self, model, tokenizer=None, batch_size: int = 8, use_chat_template: bool = False, name: str | None = None):
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        if self.tokenizer is None:
            raise ValueError("HFLM needs a tokenizer: pass tokenizer=... (or an object with a .tokenizer)")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.batch_size = batch_size
        self.use_chat_template = use_chat_template
        base = self.scoring_model
        self.name = name or getattr(getattr(base, "config", None), "name_or_path", None) or type(model).__name__

    @property
    def scoring_model(self) -> torch.nn.Module:
        """The plain model for log-likelihoods: the model itself, or a wrapper's `.model`."""
        return self.model if isinstance(self.model, torch.nn.Module) else self.model.model

    @property
    def device(self) -> torch.device:
        return next(self.scoring_model.parameters()).device

    def format(self, prompt: str) -> str:
        if not self.use_chat_template:
            return prompt
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    def _encode_left_padded(self, texts: list[str]):
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not self.use_chat_template)
        finally:
            self.tokenizer.padding_side = side
        return {k: v.to(self.device) for k, v in enc.items()}

    @torch.no_grad()
    def generate(self, prompts, num_samples=1, max_new_tokens=20, do_sample=True, top_p=1.0, temperature=1.0, seed=None):
        prompts = [self.format(p) for p in prompts]
        out: list[list[str]] = []
        if seed is not None:
            torch.manual_seed(seed)
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            enc = self._encode_left_padded(chunk)
            kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, num_return_sequences=num_samples,
                          pad_token_id=self.tokenizer.pad_token_id)
            if do_sample:
                kwargs.update(top_p=top_p, temperature=temperature, top_k=0)
            seqs = self.model.generate(**enc, **kwargs)
            new = seqs[:, enc["input_ids"].shape[1] :]
            texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            out += [texts[i * num_samples : (i + 1) * num_samples] for i in range(len(chunk))]
        return out

    @torch.no_grad()
    def loglikelihood(self, requests):
        """Exact summed log-probs of each continuation's tokens given its context.

        Each request needs the logits at the positions before its continuation tokens, i.e. the forward of
        its tokens without the last one; requests with the same such prefix (e.g. " yes" / " no" / " maybe"
        after one premise) share one row. Rows are batched in length order (little padding) and left-padded,
        so the needed positions are the last ones: the LM head runs only there (`logits_to_keep`), not on
        every token x the whole vocabulary."""
        model = self.scoring_model
        encoded = [self._encode_request(context, continuation) for context, continuation in requests]
        row_of: dict[tuple, int] = {}
        rows, keep_of, requests_of = [], [], []  # per row: prefix ids, positions needed, request indices
        for i, (full, n) in enumerate(encoded):
            r = row_of.setdefault(tuple(full[:-1]), len(rows))
            if r == len(rows):
                rows.append(full[:-1])
                keep_of.append(0)
                requests_of.append([])
            keep_of[r] = max(keep_of[r], n)
            requests_of[r].append(i)
        order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT passes kwargs through
        can_keep = "logits_to_keep" in inspect.signature(base.forward).parameters
        pad = self.tokenizer.pad_token_id
        results = [0.0] * len(requests)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(rows[r]) for r in batch)
            keep = max(keep_of[r] for r in batch)
            input_ids = torch.tensor([[pad] * (width - len(rows[r])) + rows[r] for r in batch], device=self.device)
            mask = torch.tensor([[0] * (width - len(rows[r])) + [1] * len(rows[r]) for r in batch], device=self.device)
            kwargs = {"logits_to_keep": keep} if can_keep else {}
            out = model(input_ids=input_ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0), **kwargs)
            logps = torch.log_softmax(out.logits[:, -keep:].float(), dim=-1)  # (B, keep, V): predicts the next tokens
            for b, r in enumerate(batch):
                for i in requests_of[r]:
                    full, n = encoded[i]
                    targets = torch.tensor(full[-n:], device=logps.device)
                    results[i] = float(logps[b, keep - n :].gather(-1, targets[:, None]).sum())
        return results

    def _encode_request(self, context: str, continuation: str) -> tuple[list[int], int]:
        """Token ids of context + continuation, and how many trailing tokens are the continuation's.

        Context and continuation are tokenised together (merges across the boundary count once); the tokens
        after the longest common prefix with the context alone are the continuation's."""
        special = not self.use_chat_template
        ctx = self.tokenizer(self.format(context), add_special_tokens=special)["input_ids"]
        full = self.tokenizer(self.format(context) + continuation, add_special_tokens=special)["input_ids"]
        k = 0
        while k < min(len(ctx), len(full)) and ctx[k] == full[k]:
            k += 1
        if k == len(full):
            raise ValueError(f"empty continuation after context {context!r}")
        return full, len(full) - max(k, 1)  # the first token has no prediction


def as_lm(obj, tokenizer=None, **kwargs) -> LM:
    """An `LM` from an LM, a (model, tokenizer) pair, a generate()-capable wrapper, or a callable."""
    if isinstance(obj, LM):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:
        return HFLM(obj[0], obj[1], **kwargs)
    if hasattr(obj, "generate") and (tokenizer is not None or hasattr(obj, "tokenizer")):
        return HFLM(obj, tokenizer, **kwargs)
    if callable(obj):
        return CallableLM(obj)
    raise TypeError(
        f"cannot use {type(obj).__name__} as a language model: pass a transformers model with its tokenizer, "
        "an object with generate() and .tokenizer, or a callable prompts -> continuations"
    )
