"""The base of every fairalign preference trainer: a thin subclass of TRL's DPOTrainer.

Contract for a method (see rdpo.py, rpo.py, logic/trainer.py for reference implementations):
- subclass `PreferenceConfig` for the method's knobs (validated in `__post_init__`, ValueError naming the field);
- subclass `PreferenceTrainer` and override **one** method, `pair_losses(logps: PairLogps) -> (B,) losses`;
- optionally set `needs_reference = False` (no reference forward) or `extra_columns` (dataset columns the
  collator carries into the batch, e.g. `flip_rate`), and override `extra_metrics` to log more.

Everything else is shared and inherited from TRL: tokenisation (plain and conversational data, chat
templates), the HF Trainer loop, accelerate (DDP / FSDP / DeepSpeed), checkpoint and resume, PEFT (the
adapter-disabled policy is the reference, no second copy). What the base replaces is the step itself
(`compute_loss`): log-probs come from `fairalign.align.logprobs` (prompt encoded once for both completions,
LM head only over completion tokens), the loss comes from the method's pure function, and metrics are
gathered in one collective per step.

Every method also takes `loss_reduction`: "mean" (the papers' average over pairs) or "reweight" (Sow et al.'s
loss-based sample reweighting of the per-pair losses, the `reweight_*` fields; see docs/reweighting.md).
The private TRL APIs this needs are all in `fairalign.align.trl_internals`.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from trl import DPOConfig

from fairalign.align.data import validate_preference_dataset
from fairalign.align.logprobs import add_completion_logps_forward, completion_logps, pack_examples
from fairalign.align.reweighting.config import ReweightingArguments
from fairalign.align.reweighting.trainer import ReweightingMixin
from fairalign.align.run_guard import RunGuardMixin, configure_cpu_launch
from fairalign.align.trl_internals import DPOTrainerInternals, trl_builds_no_reference, use_adapter
from fairalign.align.validation import validate_fields

REDUCTIONS = ("mean", "reweight")
# What TRL's DPOTrainer logs that fairalign does not: each needs the full-vocabulary logits of every completion
# token, which the completion-only LM head (fairalign.align.logprobs) never forms. Every other metric has TRL's
# name (checked by tests/contract against a TRL run).
TRL_METRICS_NOT_LOGGED = ("entropy", "mean_token_accuracy", "logits/chosen", "logits/rejected")

logger = logging.getLogger("fairalign")


@dataclass
class PairLogps:
    """Sequence log-probabilities of one batch, summed over completion tokens. Shapes (B,)."""

    policy_chosen: torch.Tensor
    policy_rejected: torch.Tensor
    ref_chosen: torch.Tensor | None
    ref_rejected: torch.Tensor | None
    chosen_lengths: torch.Tensor  # completion tokens (float)
    rejected_lengths: torch.Tensor
    batch: dict
    policy_baseline: torch.Tensor | None = None  # RPO's SFT target when a `baseline` column exists
    baseline_lengths: torch.Tensor | None = None


@dataclass
class PreferenceConfig(ReweightingArguments, DPOConfig):
    """TRL's DPOConfig with CPU-friendly defaults and the knobs of fairalign's step.

    Differences from DPOConfig: `gradient_checkpointing` defaults to False and `bf16` to "auto" (on for a
    bf16-capable CUDA device, off on CPU, where bf16 matmuls are ~10x slower). `loss_type` is not used: the
    trainer class defines the loss. `loss_reduction="reweight"` turns on loss-based reweighting of the pairs,
    configured by the `reweight_*` fields (ignored with "mean").
    """

    gradient_checkpointing: bool = field(default=False, metadata={"help": "Trade compute for activation memory."})
    bf16: bool | None = field(default=None, metadata={"help": "bf16 mixed precision; None = on for bf16-capable CUDA only."})
    shared_prefix: bool = field(
        default=True,
        metadata={"help": "Encode the prompt once for both completions (4-D attention mask). Turned off "
                  "automatically for attention kernels without arbitrary masks (flash-attention)."},
    )
    long_sequences: str = field(
        default="skip",
        metadata={"help": "Pairs whose prompt+completion exceeds max_length: 'skip' (counted and logged) or 'error'."},
    )
    loss_reduction: str = field(
        default="mean",
        metadata={"help": "How per-pair losses become the batch loss: 'mean' (the method's paper) or 'reweight' "
                  "(loss-based sample reweighting, Sow et al. 2025, set by the reweight_* fields)."},
    )

    def __post_init__(self):
        validate_fields(self)  # every number finite and in range (beta > 0, ...), named in the error
        configure_cpu_launch(self)
        if self.bf16 is None:
            self.bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()) and not self.fp16
        if self.long_sequences not in ("skip", "error"):
            raise ValueError(f"long_sequences must be 'skip' or 'error'; got {self.long_sequences!r}")
        if self.loss_reduction not in REDUCTIONS:
            raise ValueError(f"loss_reduction must be one of {REDUCTIONS}; got {self.loss_reduction!r}")
        super().__post_init__()
        unsupported = {
            "loss_type": (self.loss_type, ["sigmoid"]),
            "ld_alpha": (self.ld_alpha, None),
            "f_divergence_type": (str(getattr(self.f_divergence_type, "value", self.f_divergence_type)), "reverse_kl"),
            "use_weighting": (self.use_weighting, False),
            "padding_free": (self.padding_free, False),
        }
        for name, (value, default) in unsupported.items():
            if value != default:
                raise ValueError(
                    f"{name}={value!r} is a TRL DPOTrainer option that {type(self).__name__} does not use; the trainer "
                    f"class defines the loss. Leave {name} at its default ({default!r}) or use trl.DPOTrainer."
                )


@dataclass
class PreferenceCollator:
    """Collates tokenised pairs into packed rows (see fairalign.align.logprobs) plus per-example columns."""

    pad_token_id: int
    shared_prefix: bool = True
    pad_to_multiple_of: int | None = None
    extra_columns: tuple[str, ...] = ()

    def __call__(self, examples: list[dict]) -> dict:
        use_baseline = "baseline_ids" in examples[0]
        branches = [
            [ex["chosen_ids"], ex["rejected_ids"]] + ([ex["baseline_ids"]] if use_baseline else []) for ex in examples
        ]
        prompts = [ex["prompt_ids"] for ex in examples]
        rows = pack_examples(prompts, branches, self.pad_token_id, self.shared_prefix, self.pad_to_multiple_of)
        batch = {
            "input_ids": rows.input_ids,
            "attention_mask": rows.attention_mask(self.shared_prefix),
            "position_ids": rows.position_ids,
            "completion_targets": rows.targets,
            "branch_index": rows.branch_index,
            "completion_lengths": torch.tensor([[len(c) for c in b] for b in branches], dtype=torch.float32),
            # tokens of the two logical sequences (prompt+chosen, prompt+rejected): the same count TRL reports
            "num_tokens": torch.tensor([2 * len(p) + len(b[0]) + len(b[1]) for p, b in zip(prompts, branches)]),
        }
        for key in ("ref_chosen_logps", "ref_rejected_logps", *self.extra_columns):
            if key in examples[0]:  # float64 as stored; the step casts to the model's precision
                batch[key] = torch.tensor([float(ex[key]) for ex in examples], dtype=torch.float64)
        return batch


class PreferenceTrainer(RunGuardMixin, ReweightingMixin, DPOTrainerInternals):
    """Base class: override `pair_losses`. See the module docstring for the contract (and
    `fairalign.align.run_guard` for what every run guarantees: finite steps, one run per folder, resume)."""

    needs_reference: bool = True
    extra_columns: tuple[str, ...] = ()
    _tag_names = ["trl", "dpo", "fairalign"]

    def __init__(self, model, ref_model=None, args: PreferenceConfig | None = None, data_collator=None,
                 train_dataset=None, eval_dataset=None, processing_class=None, peft_config=None, **kwargs):
        if args is None:
            raise ValueError(f"{type(self).__name__} needs args=<its config>")
        if isinstance(model, str):  # Hub id, path or "smollm2": load here so the step's forward can be patched first
            from transformers import AutoModelForCausalLM

            from fairalign.align.modeling import resolve_model_path

            model = AutoModelForCausalLM.from_pretrained(resolve_model_path(model), **(args.model_init_kwargs or {}))
        if processing_class is None:
            from fairalign.align.modeling import load_tokenizer

            processing_class = load_tokenizer(model.name_or_path)
        train_dataset = self._validate(train_dataset, "train_dataset")
        if isinstance(eval_dataset, dict):
            eval_dataset = {k: self._validate(v, f"eval_dataset[{k!r}]") for k, v in eval_dataset.items()}
        elif eval_dataset is not None:
            eval_dataset = self._validate(eval_dataset, "eval_dataset")
        if processing_class.pad_token is None:
            processing_class.pad_token = processing_class.eos_token
        attn = getattr(model.config, "_attn_implementation", None) or ""
        if "flash" in attn and args.shared_prefix:
            logger.warning("%s cannot take a 4-D attention mask: shared_prefix turned off", attn)
            args.shared_prefix = False
        if data_collator is None:
            data_collator = PreferenceCollator(
                processing_class.pad_token_id, args.shared_prefix, args.pad_to_multiple_of, self.extra_columns
            )
        uses_peft = peft_config is not None or _is_peft(model)
        # A reference-free method wants no reference model, but TRL would rebuild one from the model's path
        # (and refuses ref_model=model); see trl_builds_no_reference. `precompute_reference` skips the pass.
        reference_free = not self.needs_reference and ref_model is None and not uses_peft
        copied_reference = reference_from_path = False
        if not reference_free and ref_model is None and not uses_peft:
            ref_model, copied_reference, reference_from_path = _full_reference(model, args)
        add_completion_logps_forward(_unwrap_peft(model))  # before TRL's init, which may precompute reference log-probs
        if ref_model is not None:
            add_completion_logps_forward(_unwrap_peft(ref_model))
        self._skipped_long = 0
        with trl_builds_no_reference(args) if reference_free else contextlib.nullcontext():
            super().__init__(model, ref_model=ref_model, args=args, data_collator=data_collator,
                             train_dataset=train_dataset, eval_dataset=eval_dataset,
                             processing_class=processing_class, peft_config=peft_config, **kwargs)
        if reference_free:
            self.reference_is_precomputed, self.ref_model = False, None
        self._patch_reference()
        if reference_from_path:
            _check_same_partitions(self.model, self.accelerator.unwrap_model(self.ref_model),
                                   model.config.name_or_path)
        if copied_reference and args.precompute_ref_log_probs:
            self.ref_model = None  # only needed for the pass above (FSDP): not held during training
        self._setup_reweighting(active=args.loss_reduction == "reweight")

    @classmethod
    def reference_needed(cls, args) -> bool:
        """Whether this method with these settings uses a reference model (False: reference-free)."""
        return cls.needs_reference

    # ---- data -------------------------------------------------------------------------------------------
    @staticmethod
    def _validate(dataset, name):
        if dataset is None or "prompt_ids" in dataset.column_names:
            return dataset
        return validate_preference_dataset(dataset, name)

    def precompute_reference(self, dataset, name, batch_size):
        if not self.needs_reference:
            return dataset  # reference-free method: nothing to precompute
        self._patch_reference()
        if self.accelerator.num_processes > 1 and not dataset.cache_files:
            dataset = self._file_backed(dataset, name)
        return self.trl_precompute_ref_logps(dataset, name, batch_size)

    def _patch_reference(self) -> None:
        """A reference model TRL built itself (loaded from the model's path) gets the step's forward too."""
        if getattr(self, "ref_model", None) is not None:
            add_completion_logps_forward(_unwrap_peft(self.accelerator.unwrap_model(self.ref_model)))

    def _file_backed(self, dataset, name):
        """TRL (1.16) writes the precomputed log-probs next to the dataset's cache files and every process reads
        rank 0's file. An in-memory dataset (Dataset.from_list, ...) has no files, so each process picks its own
        temporary folder and the others fail to open rank 0's file. Store it once under output_dir (shared by
        the processes of one job), then every process reads the same files."""
        import datasets

        folder = Path(self.args.output_dir) / ".fairalign_datasets" / name
        if self.accelerator.is_main_process:
            dataset.save_to_disk(str(folder))
        self.accelerator.wait_for_everyone()
        return datasets.load_from_disk(str(folder))

    def prepare_pairs(self, dataset, processing_class, args, dataset_name):
        """TRL's tokenisation plus the `baseline` column, empty-completion checks and counted length skips."""
        if "prompt_ids" in dataset.column_names:  # already tokenised (idempotent, like TRL)
            return dataset
        has_baseline = "baseline" in dataset.column_names
        n_before = len(dataset)
        dataset = self.trl_prepare_dataset(dataset, processing_class, args, dataset_name)
        if len(dataset) < n_before:  # TRL drops pairs whose prompt alone fills max_length: count them
            if args.long_sequences == "error":
                raise ValueError(f"{dataset_name}: {n_before - len(dataset)} prompt(s) alone exceed max_length="
                                 f"{args.max_length}. Raise max_length or set long_sequences='skip'.")
            logger.warning("%s: skipping %d pairs whose prompt alone fills max_length=%d", dataset_name,
                           n_before - len(dataset), args.max_length)
            self._skipped_long += n_before - len(dataset)
        if has_baseline:
            dataset = dataset.map(_tokenize_baseline, fn_kwargs={"tokenizer": processing_class}, desc="Tokenizing baseline")
        for i, row in enumerate(dataset.select_columns(["chosen_ids", "rejected_ids"])):
            if not row["chosen_ids"] or not row["rejected_ids"]:
                raise ValueError(f"{dataset_name} row {i}: a completion is empty after tokenisation")
        if args.max_length is not None:
            cols = ["prompt_ids", "chosen_ids", "rejected_ids"] + (["baseline_ids"] if has_baseline else [])
            too_long = [
                i for i, r in enumerate(dataset.select_columns(cols))
                if len(r["prompt_ids"]) + max(len(r[c]) for c in cols[1:]) > args.max_length
            ]
            if too_long and args.long_sequences == "error":
                raise ValueError(
                    f"{dataset_name}: {len(too_long)} pair(s) exceed max_length={args.max_length} tokens (rows "
                    f"{too_long[:10]}). Raise max_length or set long_sequences='skip'."
                )
            if too_long:
                logger.warning("%s: skipping %d of %d pairs longer than max_length=%d (rows %s)", dataset_name,
                               len(too_long), len(dataset), args.max_length, too_long[:10])
                self._skipped_long += len(too_long)
                dataset = dataset.select(sorted(set(range(len(dataset))) - set(too_long)))
                if len(dataset) == 0:
                    raise ValueError(f"{dataset_name}: every pair exceeds max_length={args.max_length}")
        return dataset

    def signature_columns(self):
        """Dataset columns the collator needs besides TRL's."""
        return ["baseline_ids", *self.extra_columns]

    # ---- log-probs --------------------------------------------------------------------------------------
    def _policy_and_ref_logps(self, model, inputs, with_policy: bool = True):
        lengths = inputs["completion_lengths"]
        B, K = lengths.shape
        policy = completion_logps(model, inputs, B, K)[0] if with_policy else None
        if "ref_chosen_logps" in inputs:
            ref = torch.stack([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]], dim=1)
            ref = ref if policy is None else ref.to(policy.dtype)
        elif self.needs_reference:
            with torch.no_grad(), self._reference_context() as ref_model:
                ref = completion_logps(ref_model or model, inputs, B, K)[0][:, :2]
        else:
            ref = None
        return policy, ref, lengths

    @contextlib.contextmanager
    def _reference_context(self):
        """Yields the reference model, or None with the policy's adapters disabled (PEFT)."""
        if self.ref_model is not None:
            yield self.ref_model
            return
        unwrapped = self.accelerator.unwrap_model(self.model)
        if not _is_peft(unwrapped):
            if self.reference_is_precomputed and self.state.global_step == 0:
                yield None  # precomputing before any update: the policy is still the reference
                return
            raise RuntimeError("no reference model: pass ref_model, a peft_config, or precompute_ref_log_probs=True "
                               "(reference log-probs of new data cannot be computed once training has changed the policy)")
        with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
            yield None

    def compute_ref_log_probs(self, model, inputs):
        """Reference log-probs of one batch (used by precompute_ref_log_probs)."""
        with torch.no_grad(), self._reference_context() as ref_model:
            lengths = inputs["completion_lengths"]
            logps = completion_logps(ref_model or model, inputs, *lengths.shape)[0]
        return logps[:, 0], logps[:, 1]

    # ---- the step ---------------------------------------------------------------------------------------
    def pair_losses(self, logps: PairLogps) -> torch.Tensor:
        """Per-example losses (B,). Override in each method."""
        raise NotImplementedError

    def extra_metrics(self, logps: PairLogps, losses: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example (B,) values to average into the logs, besides rewards and log-probs. Optional."""
        return {}

    def pair_logps(self, model, inputs) -> PairLogps:
        policy, ref, lengths = self._policy_and_ref_logps(model, inputs)
        K = lengths.shape[1]
        return PairLogps(
            policy_chosen=policy[:, 0], policy_rejected=policy[:, 1],
            ref_chosen=None if ref is None else ref[:, 0], ref_rejected=None if ref is None else ref[:, 1],
            chosen_lengths=lengths[:, 0], rejected_lengths=lengths[:, 1], batch=inputs,
            policy_baseline=policy[:, 2] if K > 2 else None, baseline_lengths=lengths[:, 2] if K > 2 else None,
        )

    def per_sample_losses(self, model, inputs):
        """(per-pair losses, valid mask, None): what loss-based reweighting weighs (ReweightingMixin)."""
        losses = self.pair_losses(self.pair_logps(model, inputs))
        return losses, torch.ones_like(losses, dtype=torch.bool), None

    def valid_samples(self, inputs):
        return torch.ones(inputs["completion_lengths"].shape[0], dtype=torch.bool, device=inputs["input_ids"].device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        logps = self.pair_logps(model, inputs)
        losses = self.pair_losses(logps)
        if mode == "train" and self.reweighting_active:
            loss = self.reweighted_loss(losses, torch.ones_like(losses, dtype=torch.bool))
        else:
            loss = losses.mean()  # evaluation is always the plain mean, as for every reweighted trainer
        self._log_step_metrics(mode, logps, losses, inputs["num_tokens"])
        if return_outputs:
            return loss, {"losses": losses.detach()}
        return loss

    def _log_step_metrics(self, mode, logps: PairLogps, losses, num_tokens):
        """All per-example metrics in one gather (one collective and one device sync per step)."""
        with torch.no_grad():
            cols = {"logps/chosen": logps.policy_chosen, "logps/rejected": logps.policy_rejected,
                    "loss/per_example": losses}
            if logps.ref_chosen is not None:
                chosen_r = self.beta * (logps.policy_chosen - logps.ref_chosen)
                rejected_r = self.beta * (logps.policy_rejected - logps.ref_rejected)
                cols.update({"rewards/chosen": chosen_r, "rewards/rejected": rejected_r,
                             "rewards/margins": chosen_r - rejected_r,
                             "rewards/accuracies": (chosen_r > rejected_r).float()})
            else:
                cols["logps/margins"] = logps.policy_chosen - logps.policy_rejected
            cols.update(self.extra_metrics(logps, losses))
            stacked = torch.stack([v.detach().float().reshape(-1) for v in cols.values()])
            gathered = self.accelerator.gather_for_metrics(stacked.T.contiguous()).cpu()
            tokens = int(self.accelerator.gather_for_metrics(num_tokens.sum()[None]).sum())
        for name, column in zip(cols, gathered.T):
            self.record_metric(mode, name, float(column.mean()))
        total = self.add_train_tokens(tokens if mode == "train" else 0)
        self.set_metric(mode, "num_tokens", total)
        if self._skipped_long:
            self.set_metric(mode, "data/skipped_long_pairs", self._skipped_long)


def _tokenize_baseline(example, tokenizer):
    """baseline_ids = tokens of (prompt + baseline) after the prompt, as TRL does for chosen/rejected."""
    from trl import is_conversational

    if is_conversational(example):
        full = tokenizer.apply_chat_template(example["prompt"] + example["baseline"], tokenize=True, return_dict=True)["input_ids"]
    else:
        full = tokenizer(example["prompt"] + example["baseline"] + (tokenizer.eos_token or ""))["input_ids"]
    n = len(example["prompt_ids"])
    if full[:n] != list(example["prompt_ids"]):
        raise ValueError("the tokenised prompt is not a prefix of prompt+baseline; end the prompt on a token boundary")
    return {"baseline_ids": full[n:]}


def _full_reference(model, args):
    """The reference of a full fine-tune given none: (ref_model or None, copied, TRL loads it from the path).

    - Under ZeRO-3 the policy's parameters may already be partitioned (loaded under zero.Init): a deep copy of
      them is not a model. Without precompute_ref_log_probs, TRL loads the reference from the policy's path,
      partitioned the same way, and `_check_same_partitions` then checks it is the policy. With it, the
      policy itself, before any update, gives the reference log-probs (no second model).
    - Otherwise a copy of the unwrapped policy, made before accelerate wraps or shards anything: an in-memory
      model has no path TRL could reload it from. Under FSDP it is also made for precompute_ref_log_probs (TRL
      would load one from the path), and dropped after that pass. Without FSDP, precompute runs the policy."""
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        if args.precompute_ref_log_probs:
            return None, False, False
        if not getattr(model.config, "name_or_path", ""):
            raise ValueError("ZeRO-3 full fine-tune: the policy is partitioned and has no path to load the reference "
                             "from. Pass ref_model=, set precompute_ref_log_probs=True (no reference held during "
                             "training), or train a LoRA adapter.")
        return None, False, True
    if args.precompute_ref_log_probs and not _fsdp_requested(args):
        return None, False, False
    return copy.deepcopy(model), True, False


def _fsdp_requested(args) -> bool:
    """Whether the Trainer about to be built shards with FSDP (its config, or `accelerate launch`'s variables)."""
    return bool(getattr(args, "fsdp", None)) or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def _check_same_partitions(policy, reference, path) -> None:
    """ZeRO-3: the reference TRL loaded from `path` must be the policy (both partitioned the same way across
    ranks): compare this rank's partitions, then OR the verdict over the ranks (one collective)."""
    ref_params = dict(reference.named_parameters())
    differs = [name for name, p in policy.named_parameters()
               if name not in ref_params or not torch.equal(p.ds_tensor, ref_params[name].ds_tensor.to(p.ds_tensor))]
    flag = torch.tensor([int(bool(differs))], device=next(policy.parameters()).ds_tensor.device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    if int(flag):
        raise ValueError(
            f"ZeRO-3 full fine-tune: the reference loaded from {path} differs from the policy passed in (e.g. "
            f"{differs[:3] or 'on another rank'}); a partitioned policy cannot be copied. Pass ref_model=, or set "
            "precompute_ref_log_probs=True."
        )


def _is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def _unwrap_peft(model):
    return model.get_base_model() if _is_peft(model) else model
