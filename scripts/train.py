"""Train with a recipe: one entry point for every method (rdpo, rpo, logic, reweight), with TRL's CLI conventions.

    fairalign train --config configs/recipes/rdpo/smollm2-135m_lora.yaml
    fairalign train --config configs/recipes/rdpo/smollm2-135m_lora.yaml --flip_rate 0.2 --max_steps 50
    fairalign train --help --method rpo                               # every field, with its help text
    accelerate launch --config_file configs/accelerate/ddp.yaml scripts/train.py --config configs/recipes/rpo/smollm2-135m_lora.yaml
    fairalign train --config ... --resume_from_checkpoint last      # or a checkpoint directory

Arguments are parsed by TRL's own `trl.TrlParser`, as `trl dpo --config x.yaml --learning_rate 1e-5` parses them:
a recipe is flat YAML whose keys are fields of four dataclasses, and `--field value` flags override it.
- `ScriptArguments`: TRL's (dataset_name, dataset_config, dataset_train_split, dataset_test_split, ...) plus
  `method` (the trainer: rdpo | rpo | logic | reweight), max_train_samples and text_column;
- the method's config (a TRL DPOConfig / TrainingArguments subclass, `fairalign.align.registry.METHODS`);
- `trl.ModelConfig`: model_name_or_path (a Hub id, a local folder, or 'smollm2', the embedded SmolLM2), dtype,
  use_peft, lora_* (the LoRA config is `trl.get_peft_config`'s);
- `trl.DatasetMixtureConfig`: a `datasets:` list (path, name, data_files, split, columns, fraction) and
  test_split_size, instead of dataset_name.
So a TRL DPO recipe runs once `method: rdpo` and the method's own fields (flip_rate) are added. Unknown keys,
wrong types and out-of-range numbers are one-line errors before any model loads. The resolved arguments, library
versions and git hash are written to output_dir/fairalign_run.json.
"""
from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import trl

from fairalign.align.registry import METHODS

logger = logging.getLogger("fairalign")


@dataclass
class ScriptArguments(trl.ScriptArguments):
    """TRL's script arguments plus what fairalign adds: the method, a row cap, the text column of LM data."""

    FIELD_RANGES: ClassVar[dict[str, str]] = {"max_train_samples": "[1, inf)"}

    method: str = field(default="rdpo", metadata={"help": "Training method, i.e. the trainer.", "choices": list(METHODS)})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on the first N rows of the training split."})
    text_column: str = field(default="text", metadata={"help": "Text column for method=reweight (causal-LM data)."})

    def __post_init__(self):
        from fairalign.align.validation import validate_fields

        validate_fields(self)


# Keys of fairalign's recipes before they took TRL's names: one spelling only, so an old key is an error.
RENAMED = {
    "dataset_path": "dataset_name",
    "dataset_split": "dataset_train_split",
    "eval_split": "dataset_test_split",
    "eval_dataset_path": "dataset_test_split (the eval set is that split of dataset_name: a folder holding train.jsonl "
                         "and test.jsonl, or a Hub split; or a datasets: mixture's test_split_size)",
}


def make_parser() -> argparse.ArgumentParser:
    # --help, like every field, is TRL's parser's (resolve_args): it lists the fields of the method being run
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False,
                                     usage="%(prog)s [--config RECIPE.yaml] [--field value ...] [--help [--method M]]")
    parser.add_argument("--config", required=False, help="Recipe YAML (configs/recipes/<method>/*.yaml).")
    return parser


PASS_THROUGH_UNKNOWN = True  # every other flag, --help included, reaches TRL's parser as args.overrides


# ------------------------------------------------------------------------------------------------ arguments
def resolve_args(config_path: str | None, overrides: list[str], prog: str = "fairalign train"):
    """(ScriptArguments, method config, trl.ModelConfig, trl.DatasetMixtureConfig) from a recipe plus flags, as
    TRL's parser reads them. Old, unknown or misspelt keys, values of the wrong type and out-of-range numbers are
    InputErrors naming the key, before any model loads. `--help` prints every field and exits."""
    from fairalign.align.errors import InputError
    from fairalign.align.mixtures import check_mixture, check_mixture_entries
    from fairalign.align.registry import get_method

    recipe = _read_recipe(config_path) if config_path else {}
    where = config_path or "the flags"
    _refuse_renamed(list(recipe), where)
    _refuse_renamed(_flag_names(overrides), "the flags")
    method = _method(recipe, overrides)
    try:
        config_cls, _ = get_method(method).load()
    except ValueError as err:
        raise InputError(str(err)) from None
    classes = (ScriptArguments, config_cls, trl.ModelConfig, trl.DatasetMixtureConfig)
    parser = _trl_parser(classes, method, prog)
    _refuse_unknown(recipe, overrides, classes, parser, method, where)
    if "datasets" in recipe:
        check_mixture_entries(recipe["datasets"], where)
    _check_recipe_types({k: v for k, v in recipe.items() if k not in ("datasets", "env")}, classes, where)
    argv = (["--config", config_path] if config_path else []) + list(overrides)
    try:
        script_args, config, model_args, data_args = parser.parse_args_and_config(argv)
    except ValueError as err:
        if "not used by the HfArgumentParser" not in str(err):
            raise
        raise InputError(f"the flags: values without a --field before them: {str(err).split(': ', 1)[1]}") from None
    _check_model_args(model_args)
    _check_data_source(script_args, data_args)
    check_mixture(data_args)
    return script_args, config, model_args, data_args


def _trl_parser(classes, method: str, prog: str):
    from fairalign.align.errors import InputError

    description = ("Train with a recipe: fairalign train --config RECIPE.yaml [--field value ...]. Every field below is "
                   "a recipe key and a flag; flags override the recipe. model_name_or_path: a Hub id, a local folder, or "
                   "'smollm2' (the embedded SmolLM2-135M-Instruct). Give dataset_name or a datasets: mixture (not both: "
                   f"an error here). Fields of method {method!r} (--method M lists another method's).")
    parser = trl.TrlParser(classes, prog=prog, description=description, allow_abbrev=False)  # no prefix matching

    def error(message):  # argparse would print its usage (every field: ~900 lines) and exit
        raise InputError(f"{message} (method {method!r}; `{prog} --help --method {method}` lists every field)")

    parser.error = error
    return parser


def _flag_names(overrides: list[str]) -> list[str]:
    return [token[2:].split("=", 1)[0] for token in overrides if token.startswith("--")]


def _method(recipe: dict, overrides: list[str]) -> str:
    method = recipe.get("method", "rdpo")
    for i, token in enumerate(overrides):  # the last --method wins, as in argparse
        if token == "--method":
            method = overrides[i + 1] if i + 1 < len(overrides) else ""
        elif token.startswith("--method="):
            method = token.split("=", 1)[1]
    return str(method)


def _refuse_renamed(keys: list[str], where: str) -> None:
    from fairalign.align.errors import InputError

    for key in keys:
        if key in RENAMED:
            raise InputError(f"{where}: {key} is now {RENAMED[key]}, TRL's name; rename the key")


def _refuse_unknown(recipe: dict, overrides: list[str], classes, parser, method: str, where: str) -> None:
    """An unknown recipe key or flag is an InputError suggesting the closest field name."""
    from fairalign.align.errors import InputError

    names = [f.name for cls in classes for f in fields(cls) if f.init]
    flags = {option[2:] for option in parser._option_string_actions if option.startswith("--")}
    listed = (f"keys are fields of {', '.join(c.__name__ for c in classes)} "
              f"(`fairalign train --help --method {method}` lists them)")
    for key in recipe:
        if key not in names and key != "env":  # env: environment variables, as in TRL's recipes
            close = difflib.get_close_matches(str(key), names, n=1)
            raise InputError(f"{where}: unknown key {key!r}; " + (f"did you mean {close[0]!r}? " if close else "") + listed)
    for key in _flag_names(overrides):
        if key not in flags:
            close = difflib.get_close_matches(key, names, n=1)
            raise InputError(f"unknown flag --{key}; " + (f"did you mean --{close[0]}? " if close else "") + listed)


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
    """A recipe value of the wrong shape (a list or mapping for a scalar, text for a number) is one clear error
    here: TRL's parser hands YAML values that are not text to the dataclasses unconverted."""
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
            continue  # YAML reads 5e-4 as text; the parser converts it
        if isinstance(value, str) and takes_bool and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            continue
        if isinstance(value, (list, dict)) or takes_number or takes_bool:
            raise InputError(f"{where}: {key}: {value!r} is a {type(value).__name__}; expected {describe_type(hint)}")
        # other mismatches (text for an enum-typed field, ...) are the parser's to judge


def _is_number_text(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_model_args(model_args) -> None:
    from fairalign.align.errors import InputError
    from fairalign.align.modeling import resolve_dtype
    from fairalign.align.validation import validate_fields

    if not model_args.model_name_or_path:
        raise InputError("model_name_or_path is required: a Hub id, a local model folder, or 'smollm2' (the embedded "
                         "SmolLM2-135M-Instruct)")
    validate_fields(model_args)  # lora_r, lora_alpha, lora_dropout (ranges in validation.INHERITED_RANGES)
    resolve_dtype(model_args.dtype, "cpu")  # a recipe's value skips the parser's choices
    if model_args.load_in_4bit or model_args.load_in_8bit:
        raise InputError("load_in_4bit / load_in_8bit: fairalign train does not load quantized models; train a LoRA "
                         "adapter on the unquantized model (use_peft: true, dtype: bfloat16)")


def _check_data_source(script_args, data_args) -> None:
    from fairalign.align.errors import InputError

    if data_args.datasets and script_args.dataset_name:
        raise InputError("give dataset_name or a datasets: mixture, not both (TRL would use the mixture and ignore "
                         f"dataset_name={script_args.dataset_name!r})")
    if not data_args.datasets and not script_args.dataset_name:
        raise InputError("dataset_name is required (a local .jsonl/.json/.csv/.parquet file or folder, a saved dataset "
                         "folder or a Hub id), or a datasets: mixture")
    if script_args.dataset_streaming:
        raise InputError("dataset_streaming: fairalign train needs datasets with a length; set it to false")
    if data_args.test_split_size is not None and not data_args.datasets:
        raise InputError("test_split_size splits a datasets: mixture; with dataset_name, name the eval split with "
                         "dataset_test_split, or write the data as a one-entry mixture (datasets: [{path: ...}])")


# ------------------------------------------------------------------------------------------------ building
def load_train_and_eval(script_args, config, data_args):
    """(train, eval or None), picked as TRL's scripts pick them: the dataset_train_split and dataset_test_split
    splits of dataset_name or of the mixture. The eval split is used when the data has it, and required when
    eval_strategy is not "no"."""
    from fairalign.align.errors import InputError
    from fairalign.align.mixtures import load_dataset_dict, load_mixture, pick_split

    if data_args.datasets:
        splits, source = load_mixture(data_args, seed=config.seed), "the datasets: mixture"
    else:
        splits, source = load_dataset_dict(script_args.dataset_name, script_args.dataset_config), script_args.dataset_name
    train = pick_split(splits, script_args.dataset_train_split, "dataset_train_split", source)
    if script_args.max_train_samples:
        train = train.select(range(min(script_args.max_train_samples, len(train))))
    test = script_args.dataset_test_split
    if test in splits:
        return train, splits[test]
    if config.eval_strategy != "no":
        raise InputError(f"eval_strategy={config.eval_strategy.value!r} needs an eval set, but {source} has no split "
                         f"{test!r} (its splits: {sorted(splits)}); name one with dataset_test_split, put a test file beside "
                         "the train file (a folder with train.jsonl and test.jsonl), or use a datasets: mixture with "
                         "test_split_size")
    return train, None


def _load_model(model_args, config):
    import torch

    from fairalign.align.modeling import load_model_and_tokenizer, resolve_dtype

    # Loaded on CPU: the Trainer places the model (under accelerate too). "auto" is bfloat16 where it will train on CUDA.
    target = "cuda" if torch.cuda.is_available() and not config.use_cpu else "cpu"
    return load_model_and_tokenizer(model_args.model_name_or_path, dtype=resolve_dtype(model_args.dtype, target),
                                    device="cpu", padding_side="left", revision=model_args.model_revision,
                                    attn_implementation=model_args.attn_implementation)


def build_trainer(script_args, config, model_args, data_args):
    """Model, data and trainer for resolved arguments (also used by the demo and tests)."""
    from fairalign.align.registry import get_method

    method = get_method(script_args.method)
    _, trainer_cls = method.load()
    train, evals = load_train_and_eval(script_args, config, data_args)  # data first: a bad file before a model loads
    model, tokenizer = _load_model(model_args, config)
    peft_config = trl.get_peft_config(model_args)
    if method.data == "lm":
        from fairalign.align.reweighting import build_lm_trainer

        trainer = build_lm_trainer(model, tokenizer, config, train, evals, text_column=script_args.text_column,
                                   peft_config=peft_config)
    else:
        trainer = trainer_cls(model, args=config, train_dataset=train, eval_dataset=evals, processing_class=tokenizer,
                              peft_config=peft_config)
    if script_args.ignore_bias_buffers:  # TRL's DDP fix for boolean buffers, as trl/scripts/dpo.py applies it
        import torch

        trainer.model._ddp_params_and_buffers_to_ignore = [
            name for name, buffer in trainer.model.named_buffers() if buffer.dtype == torch.bool]
    return trainer


def _provenance(script_args, config, model_args, data_args, world_size: int) -> dict:
    from fairalign.align.provenance import git_state, package_versions

    versions, git = package_versions(), git_state()[0]
    return {"script": asdict(script_args), "model": asdict(model_args), "data": asdict(data_args),
            "config": config.to_dict(), "world_size": world_size, "versions": versions, "git": git}


# ------------------------------------------------------------------------------------------------ the run
def main(args) -> int:
    from fairalign.align.locking import hold_folder
    from fairalign.align.run_guard import resolve_checkpoint

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="[fairalign] %(message)s")
    script_args, config, model_args, data_args = resolve_args(args.config, args.overrides)
    resume = resolve_checkpoint(config.output_dir, config.resume_from_checkpoint)  # checked before any model loads
    # The folder is this run's from the first file written to the saved model (the trainer holds it too).
    with hold_folder(config.output_dir, f"fairalign train -> {config.output_dir}"):
        trainer = build_trainer(script_args, config, model_args, data_args)
        if trainer.accelerator.is_main_process:
            from fairalign.align.files import write_json_atomic

            provenance = _provenance(script_args, config, model_args, data_args, trainer.accelerator.num_processes)
            write_json_atomic(Path(config.output_dir) / "fairalign_run.json", json.loads(json.dumps(provenance, default=str)))
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
