"""The controlled-sentiment task shared by the rDPO, RPO and logic reproductions (the IMDb set-up of the DPO
and rDPO papers, offline): continue a movie-review opening so that the continuation is positive.

- Prompts: data/review_openings.txt (360 neutral openings written for fairalign), split once into train and
  held-out prompts by a fixed seed.
- Gold reward: VADER's compound sentiment of the continuation, in [-1, 1] (a lexicon: offline, deterministic,
  and not a model any method here was trained with).
- Preference pairs: two samples of the base model per prompt, the higher-reward one chosen (ties dropped).
- The policy: the embedded SmolLM2-135M-Instruct with a LoRA adapter (reference = the adapter disabled);
  --quick uses a tiny random Llama.

Sampling and log-probabilities here are plain PyTorch/transformers, independent of fairalign's trainers, so
the measurements do not share code with the methods they measure.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from pathlib import Path

import torch

OPENINGS = Path(__file__).resolve().parent / "data" / "review_openings.txt"
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def review_openings() -> list[str]:
    lines = [line.strip() for line in OPENINGS.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def split_prompts(n_train: int, n_eval: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Disjoint train and held-out openings (the same split for every method and seed)."""
    prompts = review_openings()
    if n_train + n_eval > len(prompts):
        raise ValueError(f"asked for {n_train} + {n_eval} prompts, {OPENINGS} has {len(prompts)}")
    random.Random(seed).shuffle(prompts)
    return prompts[:n_train], prompts[n_train:n_train + n_eval]


_VADER = None


def gold_reward(texts: list[str]) -> list[float]:
    """VADER compound sentiment in [-1, 1] of each text."""
    global _VADER
    if _VADER is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _VADER = SentimentIntensityAnalyzer()
    return [_VADER.polarity_scores(t)["compound"] for t in texts]


def length_reward(texts: list[str]) -> list[float]:
    """--quick only: a tiny random model writes bytes VADER scores 0 (no preference at all), so quick runs rank
    samples by length instead. It checks the scripts' mechanics and means nothing."""
    return [len(t) / 100 for t in texts]


def load_base(quick: bool):
    """(model, tokenizer, model_path): SmolLM2-135M-Instruct (embedded, float32), or a tiny random Llama."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if quick:
        from fairalign.align.testing import tiny_llama, tiny_tokenizer

        return tiny_llama(), tiny_tokenizer(), None
    from fairalign.align.modeling import embedded_model_path

    path = embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), tokenizer, path


@dataclass
class Samples:
    prompts: list[str]            # one per sample (a prompt repeats n times)
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    texts: list[str]              # decoded completions


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], n: int, max_new_tokens: int, seed: int, batch_size: int = 32,
           temperature: float = 1.0) -> Samples:
    """n pure samples (top-k off, top-p off) per prompt; completions end at EOS or max_new_tokens."""
    torch.manual_seed(seed)
    flat = [p for p in prompts for _ in range(n)]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in flat]
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    completions = []
    model.eval()
    for start in range(0, len(flat), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in chunk])
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk])
        out = model.generate(input_ids=input_ids, attention_mask=attention, do_sample=True, top_k=0, top_p=1.0,
                             temperature=temperature, max_new_tokens=max_new_tokens, pad_token_id=pad,
                             eos_token_id=eos)
        for row in out[:, width:].tolist():
            completions.append(row[:row.index(eos) + 1] if eos in row else row)
    texts = [tokenizer.decode([t for t in ids if t != eos], skip_special_tokens=True) for ids in completions]
    return Samples(flat, encoded, completions, texts)


@torch.no_grad()
def completion_logps(model, prompt_ids: list[list[int]], completion_ids: list[list[int]], pad: int,
                     batch_size: int = 32) -> torch.Tensor:
    """Sum over completion tokens of log p(token | prompt, earlier tokens), one float64 per row."""
    sums = []
    for start in range(0, len(prompt_ids), batch_size):
        rows = [p + c for p, c in zip(prompt_ids[start:start + batch_size], completion_ids[start:start + batch_size])]
        width = max(len(r) for r in rows)
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].double()
        token_logps = torch.log_softmax(logits, -1).gather(-1, input_ids[:, 1:, None])[..., 0]
        mask = torch.zeros_like(token_logps)
        for i, (p, c) in enumerate(zip(prompt_ids[start:start + batch_size], completion_ids[start:start + batch_size])):
            mask[i, len(p) - 1:len(p) - 1 + len(c)] = 1
        sums.append((token_logps * mask).sum(-1))
    return torch.cat(sums)


def make_pairs(samples: Samples, rewards: list[float], n: int) -> tuple[list[dict], int]:
    """Pairs (0,1), (2,3), ... of each prompt's n samples; the higher gold reward is chosen. Returns the pairs
    and how many ties were dropped (identical rewards carry no preference)."""
    pairs, ties = [], 0
    for start in range(0, len(samples.texts), n):
        for a in range(start, start + n - 1, 2):
            b = a + 1
            if rewards[a] == rewards[b]:
                ties += 1
                continue
            hi, lo = (a, b) if rewards[a] > rewards[b] else (b, a)
            pairs.append({"prompt": samples.prompts[a], "chosen": samples.texts[hi], "rejected": samples.texts[lo],
                          "reward_chosen": rewards[hi], "reward_rejected": rewards[lo]})
    return pairs, ties


def draw_pairs(model, tokenizer, prompts: list[str], n_pairs: int, max_new_tokens: int, seed: int,
               reward=gold_reward, more: str = "sample more prompts") -> tuple[list[dict], int]:
    """The first `n_pairs` untied pairs from two samples per prompt (sampling seeded by `seed`), and the number of
    ties dropped; too few untied pairs is an error (`more` says how to get more), not a smaller experiment."""
    drawn = sample(model, tokenizer, prompts, 2, max_new_tokens, seed=seed)
    pairs, ties = make_pairs(drawn, reward(drawn.texts), 2)
    if len(pairs) < n_pairs:
        raise SystemExit(f"sampling seed {seed}: only {len(pairs)} untied pairs from {len(prompts)} prompts, "
                         f"need {n_pairs}: {more}")
    return pairs[:n_pairs], ties


def flip_labels(pairs: list[dict], rate: float, seed: int) -> tuple[list[dict], float]:
    """Each pair's label flips independently with probability `rate` (the rDPO noise model). Returns the noisy
    pairs (a `flipped` field marks them) and the realised flip fraction."""
    rng = random.Random(seed)
    out = []
    for pair in pairs:
        flipped = rng.random() < rate
        row = dict(pair, flipped=flipped)
        if flipped:
            row.update(chosen=pair["rejected"], rejected=pair["chosen"],
                       reward_chosen=pair["reward_rejected"], reward_rejected=pair["reward_chosen"])
        out.append(row)
    return out, sum(r["flipped"] for r in out) / max(1, len(out))


def train_policy(base, tokenizer, method: str, pairs: list[dict], seed: int, output_dir, trainer_cls=None,
                 callbacks=(), **config):
    """A LoRA policy trained on `pairs` with a registered fairalign method (rdpo, rpo, logic) and `config`
    overrides; returns the trainer (trainer.model is the PeftModel; the base weights are never changed)."""
    from datasets import Dataset
    from peft import LoraConfig

    from fairalign.align.registry import get_method

    config_cls, registered_cls = get_method(method).load()
    defaults = dict(output_dir=str(output_dir), per_device_train_batch_size=8, learning_rate=5e-4, num_train_epochs=1,
                    lr_scheduler_type="constant", warmup_steps=0, logging_steps=1, save_strategy="no", report_to=[],
                    seed=seed, beta=0.1, max_length=256, bf16=False, disable_tqdm=True, dataloader_num_workers=0)
    args = config_cls(**{**defaults, **config})
    columns = ("prompt", "chosen", "rejected")
    dataset = Dataset.from_list([{k: p[k] for k in columns} for p in pairs])
    # PEFT injects the adapter into the module it is given: train a copy, so `base` stays the reference for all runs
    trainer = (trainer_cls or registered_cls)(copy.deepcopy(base), args=args, train_dataset=dataset, processing_class=tokenizer,
                                              peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA),
                                              callbacks=list(callbacks))
    trainer.train()
    return trainer


def encode_pairs(tokenizer, pairs: list[dict]) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """(prompt, chosen, rejected) token ids of each pair, no special tokens."""
    enc = lambda key: [tokenizer(p[key], add_special_tokens=False)["input_ids"] for p in pairs]
    return enc("prompt"), enc("chosen"), enc("rejected")


def reference_pair_logps(base, tokenizer, pairs: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's (chosen, rejected) log-probs of held-out pairs, computed once from the base model: the same
    numbers, to the bit, as the policy's with its adapter disabled, which every run would otherwise recompute."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prompt_ids, chosen_ids, rejected_ids = encode_pairs(tokenizer, pairs)
    return (completion_logps(base, prompt_ids, chosen_ids, pad), completion_logps(base, prompt_ids, rejected_ids, pad))


def evaluate_policy(policy, tokenizer, prompts: list[str], seed: int, max_new_tokens: int, beta: float,
                    held_out_pairs: list[dict] | None = None, n: int = 1, held_out_ref=None) -> dict:
    """Gold reward and KL(policy || reference) of policy samples on held-out prompts; on held-out (clean) pairs,
    the implicit-reward preference accuracy and the chosen answers' log-likelihood. `policy` is a PeftModel:
    the reference is the same model with the adapter disabled. `held_out_ref`: the pairs' reference log-probs
    from reference_pair_logps, so that each run does not recompute them."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    drawn = sample(policy, tokenizer, prompts, n, max_new_tokens, seed)
    rewards = gold_reward(drawn.texts)
    policy_logps = completion_logps(policy, drawn.prompt_ids, drawn.completion_ids, pad)
    with policy.disable_adapter():
        ref_logps = completion_logps(policy, drawn.prompt_ids, drawn.completion_ids, pad)
    out = {"gold_reward": sum(rewards) / len(rewards), "positive_share": sum(r > 0.05 for r in rewards) / len(rewards),
           # sequence-level KL(pi || pi_ref), estimated on the policy's own samples (unbiased, can dip below 0)
           "kl": float((policy_logps - ref_logps).mean()), "samples": drawn.texts[:4]}
    if held_out_pairs:
        prompt_ids, chosen_ids, rejected_ids = encode_pairs(tokenizer, held_out_pairs)
        pc, pr = completion_logps(policy, prompt_ids, chosen_ids, pad), completion_logps(policy, prompt_ids, rejected_ids, pad)
        if held_out_ref is not None:
            rc, rr = held_out_ref
        else:
            with policy.disable_adapter():
                rc, rr = (completion_logps(policy, prompt_ids, chosen_ids, pad),
                          completion_logps(policy, prompt_ids, rejected_ids, pad))
        margin = beta * ((pc - rc) - (pr - rr))
        out.update(preference_accuracy=float((margin > 0).double().mean()), chosen_logp=float(pc.mean()),
                   chosen_logp_change=float((pc - rc).mean()), implicit_margin=float(margin.mean()))
    return out
