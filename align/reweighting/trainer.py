"""Trainer with dynamic loss-based sample reweighting (Sow et al., ICLR 2025, arXiv 2502.06733, Alg. 1).

Per optimizer step:
    l_i = mean token cross-entropy of sample i                          (per-sample loss, with gradient)
    w   = sample_weights(detached l over the global batch, f, r, delta) (every rank, see reweight_scope)
    L   = sum_i w_i l_i                                                 (uniform w: the ordinary mean loss)
On each rank the backpropagated loss is world_size * sum_{i local} w_i l_i (DDP averages over ranks), so the
optimizer sees the gradient of L; no gradient flows through w.

Gradient accumulation: the Trainer hands `training_step` one micro-batch at a time, but `get_batch_samples`
receives all micro-batches of the step first. With reweight_scope="accumulation" (default) and more than one
micro-batch, a no-grad forward over them gives the losses, the weights span the whole accumulated global
batch, and each micro-batch then trains with its slice (batch 8 x accumulation 1 == batch 1 x accumulation 8).
The cost is one extra forward (~1/3 of a step) when accumulating; with dropout the weights come from that
forward's losses. reweight_scope="micro_batch" spans one global micro-batch (all ranks) at no extra cost.
"""
from __future__ import annotations

import math
from collections import deque

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import IntervalStrategy

from fairalign.align.reweighting.config import ReweightingArguments, ReweightingConfig
from fairalign.align.reweighting.data import LMCollator
from fairalign.align.reweighting.distributed import gather_rows
from fairalign.align.reweighting.samples import (
    check_batch,
    reduce_per_sample,
    sample_index,
    target_mask,
    token_nll_from_logits,
)
from fairalign.align.reweighting.weights import STAT_KEYS, sample_weights, weight_stats_tensor
from fairalign.align.run_guard import RunGuardMixin

LOG_KEYS = ("active", "temperature", *STAT_KEYS)  # logged as "reweight/<key>"


class ReweightingPlotCallback(TrainerCallback):
    """Writes output_dir/reweighting.png from the logged statistics when training ends (main process)."""

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and getattr(args, "reweight_plot", False):
            from pathlib import Path

            from fairalign.align.reweighting.plot import plot_reweighting

            plot_reweighting(state.log_history, Path(args.output_dir) / "reweighting.png")


class ReweightingMixin:
    """Loss-based sample reweighting for any transformers.Trainer subclass.

    Contract: list the mixin before the Trainer class, give it `args` with the ReweightingArguments fields,
    and call `self._setup_reweighting()` at the end of `__init__`. Override `per_token_nll(model, inputs) ->
    (nll (R, T-1), target mask (R, T-1), outputs)` to change how token losses are computed; the reference is
    the logits path below (`ReweightingSFTTrainer` uses TRL's fused LM head instead).
    Evaluation is unweighted: the parent trainer's ordinary loss.
    """

    def _setup_reweighting(self, active: bool = True) -> None:
        """active=False leaves the trainer's loss alone (a preference trainer with loss_reduction="mean")."""
        if not isinstance(self.args, ReweightingArguments):
            raise ValueError(
                f"{type(self).__name__} needs args=ReweightingConfig(...) (or ReweightingSFTConfig); got {type(self.args).__name__}"
            )
        self.reweighting_active = active
        if active:
            # Our loss is already normalised over the whole accumulated batch: the Trainer must not divide it again.
            self.loss_is_scaled_for_ga = True
        self._pending_weights: deque = deque()
        self._current_weights: tuple[torch.Tensor, float] | None = None
        self._reweight_stats: list[torch.Tensor] = []
        self._reweight_schedule: list[tuple[float, float]] = []
        # (losses, weights, valid) of the global batch last weighted, identical on every rank: for inspection.
        self.last_global_weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        if active and self.args.reweight_plot:
            self.add_callback(ReweightingPlotCallback())

    # ---- the weighting -------------------------------------------------------------------------------------
    def reweight_temperature(self) -> float | None:
        """r for the current optimizer step; None = no reweighting (uniform weights)."""
        args = self.args
        if self.state.global_step < args.reweight_warmup_steps:
            return args.reweight_warmup_temperature
        return None if args.reweight_strategy == "uniform" else float(args.reweight_temperature)

    def per_token_nll(self, model, inputs: dict):
        """Next-token NLL (R, T-1), target mask (R, T-1) and the model outputs, from the full logits."""
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"}, use_cache=False)
        nll, mask = token_nll_from_logits(outputs.logits, inputs["labels"])
        return nll, mask, outputs

    def valid_samples(self, inputs: dict) -> torch.Tensor:
        """(S,) bool: the samples of a batch that have a loss (no forward pass)."""
        check_batch(inputs)
        mask = target_mask(inputs)
        index, num = sample_index(inputs, mask.shape)
        return reduce_per_sample(torch.zeros(mask.shape, device=mask.device), mask, index, num)[1]

    def per_sample_losses(self, model, inputs: dict):
        """(losses (S,), valid (S,), outputs): mean token NLL per sample, with gradient."""
        check_batch(inputs)
        nll, mask, outputs = self.per_token_nll(model, inputs)
        index, num = sample_index(inputs, mask.shape)
        losses, valid = reduce_per_sample(nll, mask, index, num)
        return losses, valid, outputs

    def _global_weights(self, losses: torch.Tensor, valid: torch.Tensor, temperature: float | None):
        """Gather detached (losses, valid) over the ranks, weight them, record stats.
        Returns (this rank's weights, world size)."""
        rows = torch.stack([losses.detach().float(), valid.float()], dim=1)
        gathered = gather_rows(rows)
        all_losses, all_valid = gathered.values[:, 0], gathered.values[:, 1] > 0.5
        if temperature is None:
            weights = sample_weights(all_losses, "uniform", 1.0, mask=all_valid)
        else:
            weights = sample_weights(all_losses, self.args.reweight_strategy, temperature, self.args.reweight_delta, all_valid)
        if self._stats_due():
            self._record(weight_stats_tensor(all_losses, weights, all_valid), temperature)
        self.last_global_weights = (all_losses, weights, all_valid)
        return gathered.local(weights, losses.shape[0]), gathered.world_size

    def _stats_due(self) -> bool:
        """Whether the step in progress will be logged: statistics cost ~40 small kernels, so only the logged
        steps compute them (with logging_strategy="epoch", every step does and the log has their mean)."""
        strategy, step = self.args.logging_strategy, self.state.global_step + 1
        if strategy == IntervalStrategy.NO:
            return False
        if strategy != IntervalStrategy.STEPS or (step == 1 and self.args.logging_first_step):
            return True
        return bool(self.state.logging_steps) and step % self.state.logging_steps == 0

    def _record(self, stats: torch.Tensor, temperature: float | None) -> None:
        # Kept on the device until `log` (no host sync per step); the schedule values are plain floats.
        self._reweight_stats.append(stats.detach())
        self._reweight_schedule.append((float(temperature is not None), math.nan if temperature is None else temperature))

    # ---- accumulation: weights over every micro-batch of the step -----------------------------------------
    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        self._pending_weights.clear()
        if self.reweighting_active and self.args.reweight_scope == "accumulation" and len(batch_samples) > 1:
            self._pending_weights.extend(self._accumulation_weights(batch_samples))
        return batch_samples, num_items_in_batch

    @torch.no_grad()
    def _accumulation_weights(self, batch_samples: list) -> list[tuple[torch.Tensor, float]]:
        temperature = self.reweight_temperature()
        # accelerate's dataloader already placed the batches; the move covers a plain DataLoader (public API only)
        prepared = [{k: v.to(self.args.device) if torch.is_tensor(v) else v for k, v in batch.items()} for batch in batch_samples]
        losses, valids = [], []
        if temperature is None:
            # Uniform weights only need the number of valid samples: no forward pass.
            for inputs in prepared:
                valid = self.valid_samples(inputs)
                losses.append(torch.full(valid.shape, math.nan, device=valid.device))  # unknown, not needed
                valids.append(valid)
        else:
            model = self.model_wrapped
            was_training = model.training
            model.train()  # the same mode (dropout) as the training forward
            with self.compute_loss_context_manager():
                for inputs in prepared:
                    loss, valid, _ = self.per_sample_losses(model, inputs)
                    losses.append(loss)
                    valids.append(valid)
            model.train(was_training)
        sizes = [loss.shape[0] for loss in losses]
        weights, world_size = self._global_weights(torch.cat(losses), torch.cat(valids), temperature)
        return [(w, float(world_size)) for w in weights.split(sizes)]

    def training_step(self, model, inputs, num_items_in_batch=None):
        self._current_weights = self._pending_weights.popleft() if self._pending_weights else None
        try:
            return super().training_step(model, inputs, num_items_in_batch)
        finally:
            self._current_weights = None

    # ---- the loss ------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # evaluation: the parent's ordinary, unweighted loss
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        losses, valid, outputs = self.per_sample_losses(model, inputs)
        loss = self.reweighted_loss(losses, valid)
        return (loss, outputs) if return_outputs else loss

    def reweighted_loss(self, losses: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The loss to backpropagate for this micro-batch's per-sample losses (S,), weighted over the global
        batch: the accumulation step's precomputed weights, or this global micro-batch's."""
        if self._current_weights is not None:
            weights, scale = self._current_weights
            if weights.shape != losses.shape:
                raise RuntimeError(
                    f"precomputed weights for {weights.shape[0]} samples but the micro-batch has {losses.shape[0]}"
                )
        else:
            weights, world_size = self._global_weights(losses, valid, self.reweight_temperature())
            # Weights sum to 1 over this global micro-batch: average the micro-batches of the step.
            scale = world_size / getattr(self, "current_gradient_accumulation_steps", 1)
        kept = torch.where(valid, losses, torch.zeros_like(losses))
        return scale * (weights.to(kept.dtype) * kept).sum()  # w is detached: no gradient through the weights

    # ---- logging -------------------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._reweight_stats and "loss" in logs:
            stats = torch.stack(self._reweight_stats).float().nanmean(0).tolist()
            schedule = torch.tensor(self._reweight_schedule).nanmean(0).tolist()
            self._reweight_stats.clear()
            self._reweight_schedule.clear()
            means = dict(zip(LOG_KEYS, schedule + stats))
            logs.update({f"reweight/{k}": v for k, v in means.items() if not math.isnan(v)})
        super().log(logs, start_time)


class ReweightingTrainer(RunGuardMixin, ReweightingMixin, Trainer):
    """transformers.Trainer for causal-LM pretraining / fine-tuning with loss-based sample reweighting
    (Sow et al., ICLR 2025): see the module docstring for the formulas and `ReweightingConfig` for the fields.

    Batches need input_ids, attention_mask and labels (-100 = no loss): `build_lm_dataset` makes them, and the
    default collator (`LMCollator`) pads them dynamically.
    """

    def __init__(self, model=None, args: ReweightingConfig | None = None, data_collator=None, train_dataset=None,
                 eval_dataset=None, processing_class=None, **kwargs):
        if args is None:
            args = ReweightingConfig(output_dir="trainer_output")
        if data_collator is None and processing_class is not None:
            data_collator = LMCollator(pad_token_id=_pad_id(processing_class))
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, **kwargs)
        self._setup_reweighting()


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither pad_token nor eos_token: set tokenizer.pad_token before training")
    return pad


def build_lm_trainer(model, tokenizer, config: ReweightingConfig, train_dataset, eval_dataset=None,
                     text_column: str = "text", peft_config=None) -> ReweightingTrainer:
    """What `fairalign train` does for method `reweight`: tokenise the text column (truncated to
    config.max_length, labels = input_ids, padding masked by the collator), optionally wrap the model in a
    PEFT adapter, and build the trainer."""
    from fairalign.align.reweighting.data import prepare_lm_dataset

    train = prepare_lm_dataset(train_dataset, tokenizer, text_column, config.max_length)
    evals = None if eval_dataset is None else prepare_lm_dataset(eval_dataset, tokenizer, text_column, config.max_length)
    if peft_config is not None:
        from peft import get_peft_model
        from transformers.trainer_utils import enable_full_determinism, set_seed

        # The adapter's initial weights are random: seed first (the Trainer seeds only once it is built), so two
        # runs with the same config start from the same adapter, and every process of a launch from the same one.
        enable_full_determinism(config.seed) if config.full_determinism else set_seed(config.seed)
        model = get_peft_model(model, peft_config)
    return ReweightingTrainer(model=model, args=config, train_dataset=train, eval_dataset=evals, processing_class=tokenizer)
