"""The contract battery's cases, built from the method registry (fairalign.align.registry.METHODS).

A case is one registered method with one of its registered `examples`, trained full or with LoRA, with one
reference mode the method allows ("model": a reference model, or the adapter-disabled policy under LoRA;
"precompute": reference log-probs computed once before training; "none": a reference-free method), and a
loss reduction ("mean" or "reweight"; a causal-LM method always reweights). Registering a method adds its
cases: no test code names a method.

Runs use SGD, not Adam: Adam moves a parameter by ~lr * sign(g) whatever |g|, so summation-order rounding in
a near-zero gradient would become a visible parameter difference; with SGD a parameter difference is
lr times the gradient difference, and the tolerances below mean what they say.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import torch

from fairalign.align.registry import METHODS
from fairalign.align.testing import TINY_PREFERENCES, tiny_llama, tiny_tokenizer

TOL = 1e-6  # max abs difference of trainable parameters where two runs must agree (float32, SGD)
BATCH = 4
STEPS = 3  # 1.5 epochs of the 8 tiny pairs: the second epoch's shuffle is exercised too


@dataclass(frozen=True)
class Case:
    method: str
    example: str
    peft: bool
    reference: str  # "model" | "precompute" | "none"
    reduction: str = "mean"  # "mean" | "reweight"

    @property
    def id(self) -> str:
        return "-".join([self.method, self.example, "lora" if self.peft else "full", self.reference, self.reduction])

    @property
    def spec(self):
        return METHODS[self.method]

    def with_(self, **changes) -> "Case":
        return dataclasses.replace(self, **changes)


def reference_modes(method: str, example: str) -> tuple[str, ...]:
    spec = METHODS[method]
    if spec.data != "preference":
        return ("none",)
    config_cls, trainer_cls = spec.load()
    args = config_cls(output_dir="unused", report_to=[], **spec.examples[example])
    return ("model", "precompute") if trainer_cls.reference_needed(args) else ("none",)


def examples() -> list[tuple[str, str]]:
    return [(m, e) for m, spec in METHODS.items() for e in spec.examples]


def base_cases() -> list[Case]:
    """Every method x example x (full, LoRA) x allowed reference mode, with the method's own reduction."""
    return [Case(m, e, peft, ref, "mean" if METHODS[m].data == "preference" else "reweight")
            for m, e in examples() for peft in (False, True) for ref in reference_modes(m, e)]


def reduction_cases() -> list[Case]:
    """Every method x example x (full, LoRA) x reduction, with one reference mode (the cheapest it allows)."""
    out = []
    for m, e in examples():
        ref = reference_modes(m, e)[-1]
        reductions = ("mean", "reweight") if METHODS[m].data == "preference" else ("reweight",)
        out += [Case(m, e, peft, ref, red) for peft in (False, True) for red in reductions]
    return out


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def config(case: Case, output_dir, **overrides):
    config_cls, _ = case.spec.load()
    values = dict(output_dir=str(output_dir), per_device_train_batch_size=BATCH, max_steps=STEPS, learning_rate=0.5,
                  optim="sgd", lr_scheduler_type="constant", report_to=[], logging_steps=1, save_strategy="no",
                  seed=0, data_seed=0, bf16=False, disable_tqdm=True, dataloader_num_workers=0)
    if case.spec.data == "preference":
        values.update(beta=0.1, max_length=64, precompute_ref_log_probs=case.reference == "precompute",
                      loss_reduction=case.reduction)
    else:
        values.update(max_length=64)
    if case.reduction == "reweight":
        values.update(reweight_strategy="linupper", reweight_temperature=0.5, reweight_scope="accumulation")
    values.update(case.spec.examples[case.example])
    values.update(overrides)
    return config_cls(**values)


def data(case: Case):
    import datasets

    if case.spec.data == "preference":
        return datasets.Dataset.from_list([dict(r) for r in TINY_PREFERENCES])
    return datasets.Dataset.from_list([{"text": r["prompt"] + r["chosen"]} for r in TINY_PREFERENCES])


def build(case: Case, output_dir, **overrides):
    """The trainer of a case: the same model, data and settings every time (seeded), on CPU."""
    args = config(case, output_dir, **overrides)
    model, tokenizer = tiny_llama(), tiny_tokenizer()
    peft_config = _lora() if case.peft else None
    if case.spec.data == "lm":
        from fairalign.align.reweighting import build_lm_trainer

        return build_lm_trainer(model, tokenizer, args, data(case), peft_config=peft_config)
    _, trainer_cls = case.spec.load()
    ref_model = copy.deepcopy(model) if case.reference == "model" and not case.peft else None
    return trainer_cls(model, ref_model=ref_model, args=args, train_dataset=data(case), processing_class=tokenizer,
                       peft_config=peft_config)


def trainable_vector(model) -> torch.Tensor:
    """Every trainable parameter, flattened in name order (float64)."""
    named = sorted((n, p) for n, p in model.named_parameters() if p.requires_grad)
    return torch.cat([p.detach().double().reshape(-1).cpu() for _, p in named])


def train_result(trainer, resume=None) -> dict:
    start = trainable_vector(trainer.model).tolist()
    trainer.train(resume_from_checkpoint=resume)
    logs = [h for h in trainer.state.log_history if "loss" in h and "train_runtime" not in h]
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    return {"params": trainable_vector(unwrapped).tolist(), "start": start, "losses": [h["loss"] for h in logs],
            "keys": sorted({k for h in logs for k in h}), "steps": trainer.state.global_step}


def max_diff(a, b) -> float:
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        return math.inf
    return float((a - b).abs().max()) if a.numel() else 0.0
