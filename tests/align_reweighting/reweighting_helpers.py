"""Shared by the reweighting tests and reweighting_ddp_script.py: fixed texts, a tiny-model trainer whose
optimizer step is easy to compare (plain SGD, constant LR, no clipping), and a capture of per-sample weights
keyed by the sample's tokens (so batchings that order samples differently can be compared)."""
from __future__ import annotations

import torch

from fairalign.align.reweighting import ReweightingConfig, ReweightingTrainer, build_lm_dataset

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "She works as a nurse and he works as an engineer at the hospital downtown.",
    "Paris is the capital of France.",
    "You are a wonderful person. Thank you so much for your help!",
    "Language models should be helpful, honest and harmless to every group of people.",
    "The man and the woman are doctors, teachers, lawyers, cooks, pilots and programmers.",
    "0123456789 !?.,;:",
    "What is the capital of France? Paris is the capital of France.",
]


class CapturingTrainer(ReweightingTrainer):
    """Records {sample tokens: weight} for every sample this process weighted."""

    def _setup_reweighting(self):
        super()._setup_reweighting()
        self.captured: dict[str, float] = {}
        self._keys: list[str] = []

    def per_sample_losses(self, model, inputs):
        if self._current_weights is None:  # a call whose losses feed the next weighting
            for ids, mask in zip(inputs["input_ids"].tolist(), inputs["attention_mask"].tolist()):
                self._keys.append(" ".join(str(t) for t, m in zip(ids, mask) if m))
        return super().per_sample_losses(model, inputs)

    def _global_weights(self, losses, valid, temperature):
        weights, world = super()._global_weights(losses, valid, temperature)
        if self._keys:  # (uniform warm-up under accumulation counts samples without a forward: no keys)
            assert len(self._keys) == weights.shape[0]
            self.captured.update(zip(self._keys, weights.tolist()))
        self._keys = []
        return weights, world


def lm_dataset(tokenizer, texts=TEXTS, max_length=48):
    from datasets import Dataset

    return build_lm_dataset(Dataset.from_dict({"text": list(texts)}), tokenizer, max_length=max_length)


def sgd_args(output_dir, batch, accumulation, steps=1, **reweight):
    return ReweightingConfig(
        output_dir=str(output_dir), per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
        max_steps=steps, learning_rate=0.5, optim="sgd", lr_scheduler_type="constant", max_grad_norm=0.0,
        weight_decay=0.0, report_to=[], save_strategy="no", use_cpu=True, logging_steps=1, disable_tqdm=True,
        seed=0, dataloader_num_workers=0, **reweight,
    )


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in model.parameters()])


def train_once(output_dir, batch, accumulation, steps=1, trainer_class=CapturingTrainer, texts=TEXTS, **reweight):
    """Fresh tiny Llama (seed 0), `steps` optimizer steps; returns the trainer."""
    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    trainer = trainer_class(
        model=tiny_llama(), args=sgd_args(output_dir, batch, accumulation, steps, **reweight),
        train_dataset=lm_dataset(tokenizer, texts), processing_class=tokenizer,
    )
    trainer.train()
    return trainer
