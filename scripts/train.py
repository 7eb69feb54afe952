"""Train with a recipe: one entry point for every method (rdpo, rpo, logic, reweight).

    fairalign train --config configs/recipes/rdpo/smollm2-135m_lora.yaml
    fairalign train --config configs/recipes/rdpo/smollm2-135m_lora.yaml --flip_rate 0.2 --max_steps 50
    accelerate launch --config_file configs/accelerate/ddp.yaml scripts/train.py --config configs/recipes/rpo/smollm2-135m_lora.yaml
    fairalign train --config ... --resume_from_checkpoint last      # or a checkpoint directory

A recipe is flat YAML whose keys are the method config's field names (a TRL DPOConfig / TrainingArguments
subclass) plus the script keys of `ScriptArguments` below. Command-line flags override the recipe; unknown
keys are errors. The resolved config, library versions and git hash are written to output_dir.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger("fairalign")


@dataclass
class ScriptArguments:
    """Keys of a recipe that are not trainer-config fields."""

    method: str = field(default="rdpo", metadata={"help": "Training method: rdpo | rpo | logic | reweight."})
    model_name_or_path: str = field(default="smollm2", metadata={"help": "Hub id, local path, or 'smollm2' (embedded)."})
    dataset_path: str = field(default="", metadata={"help": "Local .jsonl/.json/.csv/.parquet, saved dataset dir, or Hub id."})
    dataset_split: str = field(default="train", metadata={"help": "Split of a Hub dataset."})
    eval_dataset_path: str | None = field(default=None, metadata={"help": "Held-out data (same formats)."})
    eval_split: str = field(default="test", metadata={"help": "Split of a Hub eval dataset."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training rows."})
    dtype: str | None = field(default=None, metadata={"help": "float32 | bfloat16 | float16; default: bf16 on CUDA, fp32 on CPU."})
    use_peft: bool = field(default=False, metadata={"help": "Train a LoRA adapter (the adapter-disabled model is the reference)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (0 keeps runs reproducible)."})
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"], metadata={"help": "Modules to adapt."})
    text_column: str = field(default="text", metadata={"help": "Text column for method=reweight (causal-LM data)."})


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=True)
    parser.add_argument("--config", required=False, help="Recipe YAML (configs/recipes/<method>/*.yaml).")
    parser.epilog = "Any other --field value pair overrides the recipe (fields of ScriptArguments or the method's config)."
    return parser


PASS_THROUGH_UNKNOWN = True  # the CLI hands unrecognised --field value pairs to main() as args.overrides


def _yaml_to_argv(recipe: dict) -> list[str]:
    argv = []
    for key, value in recipe.items():
        if value is None:
            continue
        if isinstance(value, bool):
            argv += [f"--{key}", str(value).lower()]
        elif isinstance(value, (list, tuple)):
            if value:
                argv += [f"--{key}", *map(str, value)]
            elif key == "report_to":  # an empty list means "no integrations"
                argv += [f"--{key}", "none"]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def resolve_args(config_path: str | None, overrides: list[str]):
    """(ScriptArguments, method config) from a recipe plus overrides; errors name unknown keys."""
    import yaml
    from transformers import HfArgumentParser

    from fairalign.align.registry import get_method

    recipe = {}
    if config_path:
        recipe = yaml.safe_load(Path(config_path).read_text()) or {}
        if not isinstance(recipe, dict):
            raise ValueError(f"{config_path}: a recipe is a flat mapping of field: value")
    method = recipe.get("method", "rdpo")
    if "--method" in overrides:
        method = overrides[overrides.index("--method") + 1]
    config_cls, _ = get_method(method).load()
    parser = HfArgumentParser((ScriptArguments, config_cls), allow_abbrev=False)  # a typo must not match a field
    try:
        script_args, config = parser.parse_args_into_dataclasses(args=_yaml_to_argv(recipe) + list(overrides))
    except SystemExit as err:  # argparse already printed what is wrong
        raise ValueError(
            f"invalid recipe/flags for method {method!r} (see the message above; keys must be fields of "
            f"ScriptArguments or {config_cls.__name__})"
        ) from err
    except ValueError as err:
        if "not used by the HfArgumentParser" not in str(err):
            raise
        raise ValueError(
            f"invalid recipe/flags for method {method!r}: unknown keys {str(err).split(': ', 1)[1]}; keys must be "
            f"fields of ScriptArguments or {config_cls.__name__}"
        ) from err
    return script_args, config


def _load_model(script_args, config):
    import torch

    from fairalign.align.modeling import load_model_and_tokenizer

    device = "cpu" if config.use_cpu or not torch.cuda.is_available() else None
    # Under accelerate the Trainer places the model; load on CPU first.
    model, tokenizer = load_model_and_tokenizer(script_args.model_name_or_path, dtype=script_args.dtype,
                                                device=device or "cpu", padding_side="left")
    return model, tokenizer


def _peft_config(script_args):
    if not script_args.use_peft:
        return None
    from peft import LoraConfig

    targets = script_args.lora_target_modules
    return LoraConfig(r=script_args.lora_r, lora_alpha=script_args.lora_alpha, lora_dropout=script_args.lora_dropout,
                      target_modules=targets[0] if targets == ["all-linear"] else targets, task_type="CAUSAL_LM")


def build_trainer(script_args, config):
    """Model, data and trainer for a resolved recipe (also used by the demo and tests)."""
    from fairalign.align.data import load_preference_dataset
    from fairalign.align.registry import get_method

    method = get_method(script_args.method)
    _, trainer_cls = method.load()
    if not script_args.dataset_path:
        raise ValueError("dataset_path is required (a local file, a saved dataset directory or a Hub id)")
    model, tokenizer = _load_model(script_args, config)
    train = load_preference_dataset(script_args.dataset_path, script_args.dataset_split)
    if script_args.max_train_samples:
        train = train.select(range(min(script_args.max_train_samples, len(train))))
    evals = None
    if script_args.eval_dataset_path:
        evals = load_preference_dataset(script_args.eval_dataset_path, script_args.eval_split)
    if method.data == "lm":
        from fairalign.align.reweighting import build_lm_trainer

        return build_lm_trainer(model, tokenizer, config, train, evals, text_column=script_args.text_column,
                                peft_config=_peft_config(script_args))
    return trainer_cls(model, args=config, train_dataset=train, eval_dataset=evals, processing_class=tokenizer,
                       peft_config=_peft_config(script_args))


def _provenance(script_args, config, world_size: int) -> dict:
    from fairalign.align.provenance import git_state, package_versions

    versions, git = package_versions(), git_state()[0]
    return {"script": asdict(script_args), "config": config.to_dict(), "world_size": world_size,
            "versions": versions, "git": git}


def main(args) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="[fairalign] %(message)s")
    script_args, config = resolve_args(args.config, args.overrides)
    trainer = build_trainer(script_args, config)
    if trainer.accelerator.is_main_process:
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "fairalign_run.json").write_text(json.dumps(_provenance(script_args, config, trainer.accelerator.num_processes), indent=2, default=str))
    resume = config.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() in ("true", "last", "latest"):
        resume = True
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(config.output_dir)
    if trainer.accelerator.is_main_process:
        logger.info("saved to %s", config.output_dir)
    # every rank reaches here before the process group goes: gloo aborts ("terminate called without an active
    # exception") when a rank exits with its group still up while another is in its last collective
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return 0


if __name__ == "__main__":  # `accelerate launch scripts/train.py --config ...`
    from fairalign.scripts.cli import parse

    sys.exit(main(parse(sys.modules[__name__], make_parser(), sys.argv[1:])))
