"""What every fairalign trainer guarantees about a run, whatever the method (a mixin over transformers.Trainer).

- **Finite or stopped.** A NaN/inf loss or gradient stops training *before* the optimizer step that would
  spread it, with an error naming the step; a model with a non-finite parameter is never saved. (transformers
  hides such losses by default: `logging_nan_inf_filter` logs the previous average instead.)
- **One run per folder.** `train()` holds `output_dir` (`fairalign.align.locking`): a second run on the same
  folder stops at once and names the holder.
- **Resume from a complete checkpoint.** `resume_from_checkpoint=True` / "last" picks the newest checkpoint
  that was completely written (trainer_state.json is written last; weight files must have intact headers);
  a half-written newest one is skipped with a warning. An explicit checkpoint must exist and be complete.
- **Distributed means distributed.** Launched as several processes, each trainer must see all of them
  (a CPU-only multi-process launch sets `use_cpu`, see `configure_cpu_launch`), never N independent copies.
  A GPU accelerate config (FSDP, DeepSpeed, bf16/fp16) launched without a GPU is an error naming it.
- **A saved model loads.** `save_model` under FSDP with SHARDED_STATE_DICT gathers the full state dict, so
  output_dir holds weights `from_pretrained` reads (checkpoints stay sharded, for resuming).

Contract: list `RunGuardMixin` first among the bases (`class T(RunGuardMixin, DPOTrainer)`), and call
`configure_cpu_launch(self)` in the config's `__post_init__` before the parent's.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import torch
from transformers import TrainerCallback

from fairalign.align.errors import InputError, MissingPathError, NonFiniteError
from fairalign.align.locking import hold_folder

logger = logging.getLogger("fairalign")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "adapter_model.bin", "pytorch_model.bin.index.json")


CPU_ENGINE_TEST_ENV = "FAIRALIGN_ENGINE_ON_CPU"  # set only by tests/distributed/launch.py (see cpu_engine_shim.py)


def gpu_launch_request() -> str | None:
    """What `accelerate launch` asked for that needs a GPU (FSDP, DeepSpeed, fp16/bf16 mixed precision), as the
    config that asks for it; None when nothing does. Read from the variables the launcher sets in each worker."""
    env = os.environ
    if env.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "distributed_type: FSDP (configs/accelerate/fsdp.yaml)"
    if env.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        stage = env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "?")
        return f"DeepSpeed ZeRO-{stage} (configs/accelerate/zero{stage}.yaml)"
    precision = env.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if precision in ("fp16", "bf16"):
        return f"mixed_precision: {precision} (configs/accelerate/ddp.yaml, single_gpu.yaml)"
    return None


def configure_cpu_launch(config) -> None:
    """Called by every config's __post_init__. On a machine without CUDA:
    - a launch with a GPU configuration (FSDP, DeepSpeed, mixed precision) is an InputError naming it and the
      CPU alternative, before any model loads (accelerate would otherwise train N independent copies, or
      bf16 at ~1/10 the speed of float32);
    - under a multi-process launch (WORLD_SIZE > 1), train on CPU with a gloo process group. Without this,
      transformers (no ACCELERATE_USE_CPU in the workers' environment, which `accelerate launch --config_file
      cpu_2proc.yaml` does not set) runs one independent copy per process."""
    if torch.cuda.is_available():
        return
    request = gpu_launch_request()
    if request is not None:
        if os.environ.get(CPU_ENGINE_TEST_ENV) == "1":
            return  # the test shim runs this engine on CPU processes itself
        raise InputError(
            f"this run was launched with a GPU configuration, {request}, but no CUDA GPU is visible. On CPU, "
            "launch with configs/accelerate/cpu_2proc.yaml (two gloo processes, float32) or run `fairalign train` "
            "in one process; FSDP and DeepSpeed configs need GPUs."
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not config.use_cpu:
        config.use_cpu = True


def _distributed_any(flags: torch.Tensor) -> torch.Tensor:
    """Element-wise OR of a bool tensor across ranks (sharded gradients: one rank may see what another does not)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        flags = flags.to(torch.int32)
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
    return flags.bool()


def _local_shard(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a parameter or gradient: the local shard of an FSDP2 DTensor, the partition of a
    ZeRO-3 parameter (whose own data is empty), else the tensor. Checks on shards are OR-ed across ranks."""
    if hasattr(tensor, "ds_tensor"):
        return tensor.ds_tensor
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def _total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """2-norm over all tensors: NaN/inf in any entry (or an overflowing one) makes it non-finite."""
    if hasattr(torch.nn.utils, "get_total_norm"):
        return torch.nn.utils.get_total_norm(tensors, norm_type=2.0)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors]))


class _FiniteStepGuard(TrainerCallback):
    """Checks the loss and the (clipped) gradients between backward and the optimizer step: one reduction and
    one host sync per optimizer step."""

    def __init__(self, trainer: "RunGuardMixin"):
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.trainer._check_step_finite(model, state)


class RunGuardMixin:
    """See the module docstring. Works with any transformers.Trainer subclass (TRL's included)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._nonfinite_loss: torch.Tensor | None = None
        self.add_callback(_FiniteStepGuard(self))

    # ---- finite or stopped -------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        bad = ~torch.isfinite(loss.detach()).all()  # kept on the device: checked once per optimizer step
        self._nonfinite_loss = bad if self._nonfinite_loss is None else self._nonfinite_loss | bad
        return loss

    def _check_step_finite(self, model, state) -> None:
        model = model if model is not None else self.model
        grads = [_local_shard(p.grad) for p in model.parameters() if p.grad is not None]
        device = grads[0].device if grads else self.args.device
        loss_bad = self._nonfinite_loss if self._nonfinite_loss is not None else torch.zeros((), dtype=torch.bool, device=device)
        grad_bad = ~torch.isfinite(_total_norm(grads)) if grads else torch.zeros((), dtype=torch.bool, device=device)
        self._nonfinite_loss = None
        flags = _distributed_any(torch.stack([loss_bad.to(device), grad_bad.to(device)]))
        if bool(flags.any()):
            what = " and ".join(w for w, bad in zip(("loss", "gradient"), flags.tolist()) if bad)
            raise NonFiniteError(
                f"training stopped at optimizer step {state.global_step + 1} (epoch {state.epoch or 0:.2f}): the {what} "
                f"is not finite (NaN or inf). The step was not applied: the model still holds step {state.global_step}'s "
                "parameters, and nothing non-finite was saved. Usual causes: a learning rate too high, fp16 overflow, "
                "a bad row in the data. Lower learning_rate, keep max_grad_norm > 0, or check the data; then resume "
                "from the last checkpoint."
            )

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        named = [(name, _local_shard(p)) for name, p in self.model.named_parameters()]
        named = [(name, p) for name, p in named if p.numel()]
        finite = torch.stack([torch.isfinite(p).all().to(self.args.device) for _, p in named]).cpu() if named else torch.ones(0)
        bad = [name for (name, _), ok in zip(named, finite.tolist()) if not ok]  # one sync above
        flag = _distributed_any(torch.tensor([bool(bad)], device=self.args.device))
        if bool(flag.any()):
            raise NonFiniteError(
                f"refusing to save to {output_dir or self.args.output_dir}: parameter(s) {bad[:5] or 'on another rank'} "
                "hold NaN or inf values. The model is broken; resume from the last checkpoint with a lower learning rate."
            )
        if not _internal_call and self._fsdp_sharded_state_dict():
            # transformers writes no weights for SHARDED_STATE_DICT (checkpoints keep that format for resuming):
            # gather the full state dict (a collective; rank 0 holds it) and write what from_pretrained reads
            from fairalign.align.trl_internals import save_state_dict

            save_state_dict(self, output_dir or self.args.output_dir, self.accelerator.get_state_dict(self.model))
            return None
        return super().save_model(output_dir, _internal_call)

    def _fsdp_sharded_state_dict(self) -> bool:
        plugin = getattr(self.accelerator.state, "fsdp_plugin", None) if getattr(self, "is_fsdp_enabled", False) else None
        return plugin is not None and "FULL_STATE_DICT" not in str(plugin.state_dict_type)

    # ---- one run per folder, resume from a complete checkpoint ---------------------------------------------
    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None, **kwargs):
        self._check_world_size()
        resume = resolve_checkpoint(self.args.output_dir, resume_from_checkpoint)
        with hold_folder(self.args.output_dir, f"{type(self).__name__}.train -> {self.args.output_dir}"):
            return super().train(resume_from_checkpoint=resume, trial=trial, ignore_keys_for_eval=ignore_keys_for_eval,
                                 **kwargs)

    def _check_world_size(self) -> None:
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched > 1 and self.accelerator.num_processes != launched:
            raise RuntimeError(
                f"launched as {launched} processes, but this trainer sees {self.accelerator.num_processes}: each process "
                "would train its own copy and write the same output_dir. On CPU, launch with "
                "configs/accelerate/cpu_2proc.yaml (or set use_cpu=True); on GPUs, check CUDA_VISIBLE_DEVICES."
            )


# ------------------------------------------------------------------------------------------- checkpoints
def checkpoint_problem(folder: Path) -> str | None:
    """None when `folder` is a completely written Trainer checkpoint, else what is wrong with it."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (transformers writes it last: the run stopped while saving)"
    try:
        json.loads(state.read_text(encoding="utf-8"))["global_step"]
    except (ValueError, KeyError, UnicodeDecodeError) as err:
        return f"trainer_state.json is unreadable ({type(err).__name__})"
    weights = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    # FSDP's SHARDED_STATE_DICT: a torch.distributed.checkpoint folder, whose .metadata is written last
    sharded = [d for d in folder.glob("pytorch_model_fsdp_*") if d.is_dir()]
    if sharded and not all((d / ".metadata").is_file() for d in sharded):
        return "a sharded FSDP model folder without .metadata (the run stopped while saving)"
    if not weights and not sharded:
        return f"no model weights ({' / '.join(WEIGHT_FILES[:2])}, or an FSDP pytorch_model_fsdp_* folder)"
    for path in sorted(folder.glob("*.safetensors")):
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt"):
                pass
        except Exception as err:  # SafetensorError: truncated or corrupt file
            return f"{path.name} is truncated or corrupt ({str(err).splitlines()[0][:120]})"
    return None


def resolve_checkpoint(output_dir: str | os.PathLike, resume):
    """What to pass to Trainer.train(resume_from_checkpoint=...): None, or the path of a complete checkpoint.
    resume: None/False (start fresh), True / "last" / "latest" / "true" (newest complete one in output_dir),
    or a checkpoint folder."""
    if resume is None or resume is False or (isinstance(resume, str) and resume.lower() in ("", "false", "none")):
        return None
    if resume is True or (isinstance(resume, str) and resume.lower() in ("true", "last", "latest")):
        out = Path(output_dir)
        candidates = sorted((p for p in out.glob("checkpoint-*") if p.is_dir() and _CHECKPOINT.match(p.name)),
                            key=lambda p: int(_CHECKPOINT.match(p.name).group(1)), reverse=True) if out.is_dir() else []
        skipped = []
        for folder in candidates:
            problem = checkpoint_problem(folder)
            if problem is None:
                for name, why in skipped:
                    logger.warning("skipping %s, which is incomplete: %s; resuming from %s", name, why, folder.name)
                return str(folder)
            skipped.append((folder.name, problem))
        detail = "; ".join(f"{n}: {w}" for n, w in skipped) or "none found"
        raise InputError(f"resume_from_checkpoint: no complete checkpoint in {out} ({detail}). Start without "
                         "resume_from_checkpoint, or point it at a complete checkpoint folder.")
    folder = Path(resume)
    if not folder.is_dir():
        raise MissingPathError(f"resume_from_checkpoint: {folder} does not exist (or is not a folder); pass a "
                               "checkpoint-N folder, or 'last' for the newest complete one in output_dir")
    problem = checkpoint_problem(folder)
    if problem is not None:
        raise InputError(f"resume_from_checkpoint: {folder} is incomplete: {problem}. Pass 'last' to use the newest "
                         "complete checkpoint, or an earlier checkpoint folder.")
    return str(folder)
