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
from typing import ClassVar

logger = logging.getLogger("fairalign")


@dataclass
class ScriptArguments:
    """Keys of a recipe that are not trainer-config fields."""

    FIELD_RANGES: ClassVar[dict[str, str]] = {"max_train_samples": "[1, inf)", "lora_r": "[1, inf)", "lora_alpha": "(0, inf)", "lora_dropout": "[0, 1)"}

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

    def __post_init__(self):
        from fairalign.align.validation import validate_fields

        validate_fields(self)
        if self.dtype is not None:
            from fairalign.align.modeling import resolve_dtype

            resolve_dtype(self.dtype, "cpu")  # InputError naming the valid names, before any model loads


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


def _read_recipe(config_path: str) -> dict:
    import yaml

    from fairalign.align.errors import InputError, require_path

    path = require_path(config_path, "--config", "give a recipe YAML, e.g. configs/recipes/rdpo/smollm2-135m_lora.yaml")
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable YAML file ({' '.join(str(err).split())})") from None
    if not isinstance(recipe, dict):
        raise InputError(f"{path}: a recipe is a flat mapping of field: value, got a {type(recipe).__name__}")
    return recipe


def _check_recipe_types(recipe: dict, classes, where: str) -> None:
    """A recipe value of the wrong shape (a list or mapping for a scalar, text for a number) is one clear
    error here, instead of argparse's usage text about the argv the recipe becomes."""
    import typing

    from fairalign.align.errors import InputError
    from fairalign.align.validation import describe_type, type_ok

    hints = {}
    for cls in classes:
        hints.update(typing.get_type_hints(cls))
    for key, value in recipe.items():
        hint = hints.get(key)
        if hint is None or value is None or type_ok(value, hint):
            continue
        takes_number, takes_bool = type_ok(1.0, hint) or type_ok(1, hint), type_ok(True, hint)
        if isinstance(value, str) and takes_number and _is_number_text(value):
            continue  # YAML reads 5e-4 as text; argparse converts it
        if isinstance(value, str) and takes_bool and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            continue
        if isinstance(value, (list, dict)) or takes_number or takes_bool:
            raise InputError(f"{where}: {key}: {value!r} is a {type(value).__name__}; expected {describe_type(hint)}")
        # other mismatches (text for an enum-typed field, ...) are argparse's to judge


def _is_number_text(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _one_line_errors(parser, method: str, config_cls) -> None:
    """argparse prints its usage (every field: ~140 lines) and exits; raise one InputError instead."""
    from fairalign.align.errors import InputError

    def error(message):
        raise InputError(f"recipe/flags for method {method!r}: {message} (keys are fields of ScriptArguments or "
                         f"{config_cls.__name__}, see docs/training.md)")

    parser.error = error


def resolve_args(config_path: str | None, overrides: list[str]):
    """(ScriptArguments, method config) from a recipe plus overrides. Unknown keys, values of the wrong type and
    out-of-range numbers are InputErrors naming the key, before any model loads."""
    from transformers import HfArgumentParser

    from fairalign.align.errors import InputError
    from fairalign.align.registry import get_method

    recipe = _read_recipe(config_path) if config_path else {}
    method = recipe.get("method", "rdpo")
    if "--method" in overrides:
        i = overrides.index("--method")
        method = overrides[i + 1] if i + 1 < len(overrides) else ""
    try:
        config_cls, _ = get_method(method).load()
    except ValueError as err:
        raise InputError(str(err)) from None
    _check_recipe_types(recipe, (ScriptArguments, config_cls), config_path or "recipe")
    parser = HfArgumentParser((ScriptArguments, config_cls), allow_abbrev=False)  # a typo must not match a field
    _one_line_errors(parser, method, config_cls)
    try:
        script_args, config = parser.parse_args_into_dataclasses(args=_yaml_to_argv(recipe) + list(overrides))
    except ValueError as err:
        if "not used by the HfArgumentParser" not in str(err):
            raise
        raise InputError(
            f"invalid recipe/flags for method {method!r}: unknown keys {str(err).split(': ', 1)[1]}; keys must be "
            f"fields of ScriptArguments or {config_cls.__name__}"
        ) from None
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
    from fairalign.align.errors import InputError
    from fairalign.align.registry import get_method

    method = get_method(script_args.method)
    _, trainer_cls = method.load()
    if not script_args.dataset_path:
        raise InputError("dataset_path is required (a local file, a saved dataset directory or a Hub id)")
    # data first: a bad file is reported before a model loads
    train = load_preference_dataset(script_args.dataset_path, script_args.dataset_split)
    if script_args.max_train_samples:
        train = train.select(range(min(script_args.max_train_samples, len(train))))
    evals = None
    if script_args.eval_dataset_path:
        evals = load_preference_dataset(script_args.eval_dataset_path, script_args.eval_split)
    model, tokenizer = _load_model(script_args, config)
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
    from fairalign.align.locking import hold_folder
    from fairalign.align.run_guard import resolve_checkpoint

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="[fairalign] %(message)s")
    script_args, config = resolve_args(args.config, args.overrides)
    resume = resolve_checkpoint(config.output_dir, config.resume_from_checkpoint)  # checked before any model loads
    # The folder is this run's from the first file written to the saved model (the trainer holds it too).
    with hold_folder(config.output_dir, f"fairalign train -> {config.output_dir}"):
        trainer = build_trainer(script_args, config)
        if trainer.accelerator.is_main_process:
            from fairalign.align.files import write_json_atomic

            provenance = json.loads(json.dumps(_provenance(script_args, config, trainer.accelerator.num_processes), default=str))
            write_json_atomic(Path(config.output_dir) / "fairalign_run.json", provenance)
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
    from fairalign.scripts.cli import run

    parser = make_parser()
    parser.prog = "scripts/train.py"
    sys.exit(run(sys.modules[__name__], parser, sys.argv[1:]))
