"""Sampling settings resolved as `model.generate` resolves them, the logits warpers it would build, and UDDIA's
fusion of the adapted and unadapted next-token distributions.

Fusion (UDDIA §3.2, weight w = 0.9):
    P(v) ∝ P_tuned(v)^w · P_base(v)^(1-w)
computed in log space as  scores = logits_base + w · (log P_tuned - log P_ref),  where P_ref is the
adapted pass's own distribution at θ = 0. log P_ref equals log P_base up to rounding, and when θ stays 0
(lr = 0) the correction is exactly zero, so the scores are bit-identical to plain decoding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# generate() kwargs this wrapper accepts (beyond input_ids/attention_mask) and the neutral values of the
# GenerationConfig fields it does not implement (a model whose generation_config sets one is refused).
SUPPORTED = {
    "max_new_tokens", "max_length", "do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty",
    "num_return_sequences", "pad_token_id", "eos_token_id", "return_dict_in_generate", "output_scores",
    "output_logits", "use_cache", "generation_config",
}
UNSUPPORTED_NEUTRAL = {
    "num_beams": 1, "num_beam_groups": 1, "no_repeat_ngram_size": 0, "bad_words_ids": None, "min_length": 0,
    "min_new_tokens": None, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "top_h": None,
    "forced_bos_token_id": None, "forced_eos_token_id": None, "suppress_tokens": None, "begin_suppress_tokens": None,
    "exponential_decay_length_penalty": None, "sequence_bias": None, "guidance_scale": None, "penalty_alpha": None,
    "watermarking_config": None, "renormalize_logits": False, "remove_invalid_values": False,
}
DEFAULTS = {"max_length": 20, "do_sample": False, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None,
            "repetition_penalty": 1.0}


@dataclass
class Settings:
    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_k: int | None
    top_p: float
    min_p: float | None
    repetition_penalty: float
    eos_token_ids: list[int]
    pad_token_id: int | None
    num_return_sequences: int
    return_dict_in_generate: bool
    output_scores: bool
    output_logits: bool


def _as_list(value) -> list[int]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.flatten().tolist()]
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def resolve_settings(model, prompt_length: int, kwargs: dict) -> Settings:
    """user kwargs > generation_config argument > model.generation_config > transformers' global defaults."""
    unknown = sorted(set(kwargs) - SUPPORTED)
    if unknown:
        raise ValueError(f"UDDIAGenerator.generate does not support {unknown}; supported: {sorted(SUPPORTED)}")
    if kwargs.get("use_cache") is False:
        raise ValueError("UDDIAGenerator.generate needs use_cache=True (the KV cache is reused for the adapted passes)")
    sources = [{k: v for k, v in kwargs.items() if v is not None}]
    if kwargs.get("generation_config") is not None:
        sources.append(kwargs["generation_config"].to_dict())
    if getattr(model, "generation_config", None) is not None:
        sources.append(model.generation_config.to_dict())

    def get(name, default=None):
        for source in sources:
            if source.get(name) is not None:
                return source[name]
        return DEFAULTS.get(name, default)

    for name, neutral in UNSUPPORTED_NEUTRAL.items():
        value = get(name, neutral)
        if value is not None and value != neutral:
            raise ValueError(f"UDDIAGenerator does not implement generation setting {name}={value!r}; unset it "
                             f"(model.generation_config.{name} = {neutral!r}) or use plain model.generate")
    max_new = get("max_new_tokens")
    if max_new is None:
        max_new = int(get("max_length")) - prompt_length
    if max_new < 1:
        raise ValueError(f"max_new_tokens must be >= 1 (got {max_new}; prompt length {prompt_length})")
    eos = _as_list(get("eos_token_id"))
    pad = get("pad_token_id")
    if pad is None and eos:
        pad = eos[0]  # as generate() does, with its warning
    nrs = int(get("num_return_sequences", 1))
    if nrs < 1:
        raise ValueError(f"num_return_sequences must be >= 1, got {nrs}")
    return Settings(
        max_new_tokens=int(max_new), do_sample=bool(get("do_sample")), temperature=float(get("temperature")),
        top_k=get("top_k"), top_p=float(get("top_p")), min_p=get("min_p"),
        repetition_penalty=float(get("repetition_penalty")), eos_token_ids=eos,
        pad_token_id=None if pad is None else int(_as_list(pad)[0]), num_return_sequences=nrs,
        return_dict_in_generate=bool(get("return_dict_in_generate", False)),
        output_scores=bool(get("output_scores", False)), output_logits=bool(get("output_logits", False)),
    )


def build_processors(settings: Settings):
    """The LogitsProcessorList generate() builds for these settings, in its order."""
    from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor
    from transformers.generation.logits_process import (
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    procs = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(penalty=settings.repetition_penalty))
    if settings.do_sample:
        if settings.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_k is not None and settings.top_k != 0:
            procs.append(TopKLogitsWarper(top_k=settings.top_k, min_tokens_to_keep=1))
        if settings.top_p < 1.0:
            procs.append(TopPLogitsWarper(top_p=settings.top_p, min_tokens_to_keep=1))
        if settings.min_p is not None:
            procs.append(MinPLogitsWarper(min_p=settings.min_p, min_tokens_to_keep=1))
    return procs


def fuse(base_logits: torch.Tensor, log_ratio: torch.Tensor, weight: float) -> torch.Tensor:
    """Scores whose softmax is ∝ P_tuned^w · P_base^(1-w), given log_ratio = log P_tuned - log P_ref."""
    return base_logits + weight * log_ratio


def select_tokens(scores: torch.Tensor, do_sample: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """generate()'s token choice: multinomial over softmax(scores), or argmax."""
    if do_sample:
        probs = torch.softmax(scores, dim=-1)
        return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
    return torch.argmax(scores, dim=-1)
