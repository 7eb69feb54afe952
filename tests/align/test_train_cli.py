"""`fairalign train` / scripts/train.py: TRL's CLI conventions (TrlParser, ModelConfig, ScriptArguments,
DatasetMixtureConfig), --help, one-line errors, and the shipped recipes."""
import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
import trl
import yaml

from fairalign.align.testing import TINY_PREFERENCES
from fairalign.scripts import cli
from fairalign.scripts import train as train_script

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "configs" / "recipes").glob("*/*.yaml"))
DEMO_DATA = REPO / "align" / "resources" / "preferences_demo"


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _recipe(tmp_path, **overrides):
    recipe = dict(method="rdpo", model_name_or_path="smollm2", dataset_name=str(DEMO_DATA), max_length=128, flip_rate=0.1,
                  per_device_train_batch_size=4, max_steps=4, save_strategy="no", logging_steps=1, report_to=[],
                  learning_rate=1e-3, output_dir=str(tmp_path / "out"))
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _one_line_error(capsys, argv) -> str:
    code = cli.main(["train", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("fairalign train: error: ")
    return err[0]


def test_cli_help_lists_commands(capsys):
    assert cli.main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert cli.main(["no-such-command"]) == 2


# ------------------------------------------------------------------------------------------- a TRL recipe
def test_a_trl_dpo_recipe_runs_with_method_and_flip_rate_added(tmp_path, tiny_llama_dir):
    """A recipe written for `trl dpo` (TRL's own parser accepts it as is) trains with `fairalign train` once
    `method: rdpo` and rDPO's `flip_rate` are added."""
    data = tmp_path / "prefs"
    _write_jsonl(data / "train.jsonl", TINY_PREFERENCES)
    _write_jsonl(data / "test.jsonl", TINY_PREFERENCES[:4])
    out = tmp_path / "out"
    trl_recipe = dict(model_name_or_path=str(tiny_llama_dir), dataset_name=str(data), learning_rate=1e-3,
                      per_device_train_batch_size=4, gradient_accumulation_steps=1, beta=0.1, max_length=64,
                      use_peft=True, lora_r=8, lora_alpha=16, lora_target_modules=["q_proj", "v_proj"],
                      output_dir=str(out), logging_steps=1, max_steps=2, save_strategy="steps", save_steps=2,
                      report_to="none", eval_strategy="steps", eval_steps=2)
    trl_path = tmp_path / "trl_dpo.yaml"
    trl_path.write_text(yaml.safe_dump(trl_recipe))
    from trl.scripts.dpo import make_parser as trl_dpo_parser

    no_gpu = [] if torch.cuda.is_available() else ["--bf16", "false"]  # TRL's DPOConfig defaults to bf16
    _, trl_training, trl_model, _ = trl_dpo_parser().parse_args_and_config(["--config", str(trl_path), *no_gpu])
    assert trl_training.beta == 0.1 and trl_model.lora_r == 8  # a genuine TRL recipe

    ours = tmp_path / "fairalign.yaml"
    ours.write_text(trl_path.read_text() + "method: rdpo\nflip_rate: 0.1\n")
    assert cli.main(["train", "--config", str(ours)]) == 0
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16 and sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    run = json.loads((out / "fairalign_run.json").read_text())
    assert run["script"]["method"] == "rdpo" and run["config"]["flip_rate"] == 0.1
    assert run["model"]["model_name_or_path"] == str(tiny_llama_dir) and run["script"]["dataset_name"] == str(data)
    logged = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    assert any("eval_loss" in row for row in logged)  # on the folder's test split (dataset_test_split)


def test_recipe_and_flags_follow_trl_precedence(tmp_path):
    """Flags override the recipe; the LoRA config is trl.get_peft_config's; 'smollm2' is a model name."""
    recipe = _recipe(tmp_path, use_peft=True, lora_r=4, lora_target_modules="all-linear")
    script_args, config, model_args, data_args = train_script.resolve_args(str(recipe), ["--learning_rate", "1e-5",
                                                                                         "--lora_alpha", "8"])
    assert isinstance(model_args, trl.ModelConfig) and isinstance(data_args, trl.DatasetMixtureConfig)
    assert isinstance(script_args, trl.ScriptArguments) and script_args.dataset_train_split == "train"
    assert config.learning_rate == 1e-5 and model_args.lora_alpha == 8 and model_args.lora_r == 4
    assert model_args.model_name_or_path == "smollm2"
    peft = trl.get_peft_config(model_args)
    assert (peft.r, peft.lora_alpha, peft.target_modules) == (4, 8, "all-linear")


# ------------------------------------------------------------------------------------------- --help
def _fields(*classes):
    return [f.name for cls in classes for f in dataclasses.fields(cls) if f.init]


@pytest.mark.parametrize("argv, method", [(["--help"], "rdpo"), (["--help", "--method", "rpo"], "rpo"),
                                          (["--config", str(REPO / "configs/recipes/logic/smollm2-135m_cpo_lora.yaml"), "-h"], "logic")])
def test_help_lists_every_field_with_its_help_text(capsys, argv, method):
    from fairalign.align.registry import get_method

    config_cls, _ = get_method(method).load()
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", *argv])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    classes = (train_script.ScriptArguments, config_cls, trl.ModelConfig, trl.DatasetMixtureConfig)
    missing = [name for name in _fields(*classes) if not re.search(rf"^\s+--{name}\b", out, re.M)]
    assert not missing
    flat = " ".join(out.split())
    for cls, name in [(config_cls, "beta"), (trl.ModelConfig, "lora_r"), (trl.DatasetMixtureConfig, "test_split_size"),
                      (train_script.ScriptArguments, "dataset_test_split"), (train_script.ScriptArguments, "method")]:
        text = " ".join(next(f for f in dataclasses.fields(cls) if f.name == name).metadata["help"].split())
        assert text[:40] in flat, (name, text)
    if "--config" in argv:  # the recipe's values are the defaults shown
        assert re.search(r"--structure STRUCTURE.*?\(default: cpo\)", flat)


# ------------------------------------------------------------------------------------------- one-line errors
@pytest.mark.parametrize("recipe_keys, argv, message", [
    ({"flip_rat": 0.1}, [], r"unknown key 'flip_rat'; did you mean 'flip_rate'\?"),
    ({}, ["--lerning_rate", "1e-4"], r"unknown flag --lerning_rate; did you mean --learning_rate\?"),
    ({}, ["--flip_rate", "0.5"], r"flip_rate"),
    ({"dataset_path": "x.jsonl"}, [], r"recipe.yaml: dataset_path is now dataset_name"),
    ({}, ["--dataset_split", "train"], r"the flags: dataset_split is now dataset_train_split"),
    ({}, ["--eval_dataset_path", "x.jsonl"], r"eval_dataset_path is now dataset_test_split"),
    ({"eval_split": "test"}, [], r"eval_split is now dataset_test_split"),
    ({"dtype": "float33"}, [], r"dtype='float33' is not a dtype"),
    ({}, ["--dtype", "float33"], r"invalid choice: 'float33'"),
    ({"lora_r": 0}, [], r"ModelConfig.lora_r=0 is out of range"),
    ({}, ["--max_train_samples", "0"], r"ScriptArguments.max_train_samples=0 is out of range"),
    ({"model_name_or_path": None}, [], r"model_name_or_path is required"),
    ({"dataset_name": None}, [], r"dataset_name is required"),
    ({"datasets": [{"path": "a.jsonl"}]}, [], r"give dataset_name or a datasets: mixture, not both"),
    ({"dataset_name": None, "datasets": [{"pth": "a.jsonl"}]}, [], r"datasets\[0\] \(None\): unknown key 'pth'; did you mean 'path'\?"),
    ({"dataset_name": None, "datasets": "a.jsonl"}, [], r"datasets must be a list of entries"),
    ({}, ["--test_split_size", "0.2"], r"test_split_size splits a datasets: mixture"),
    ({}, ["--dataset_streaming"], r"dataset_streaming"),
    ({}, ["--load_in_4bit"], r"does not load quantized models"),
    ({"method": "dpo"}, [], r"unknown method 'dpo'"),
    ({}, ["0.3"], r"values without a --field before them: \['0.3'\]"),
])
def test_bad_recipes_and_flags_are_one_line_errors(tmp_path, capsys, recipe_keys, argv, message):
    line = _one_line_error(capsys, ["--config", str(_recipe(tmp_path, **recipe_keys)), *argv])
    assert re.search(message, line), line


def test_eval_strategy_without_an_eval_split_names_dataset_test_split(tmp_path, capsys):
    from fairalign.align.mixtures import load_dataset_dict

    load_dataset_dict(str(DEMO_DATA / "train.jsonl"))  # cached now: a first load prints a progress bar to stderr
    capsys.readouterr()
    line = _one_line_error(capsys, ["--config", str(_recipe(tmp_path, dataset_name=str(DEMO_DATA / "train.jsonl"),
                                                            eval_strategy="steps", eval_steps=2))])
    assert "has no split 'test'" in line and "dataset_test_split" in line and "test_split_size" in line


# ------------------------------------------------------------------------------------------- data sources
def test_eval_split_of_a_data_folder_and_of_a_mixture(tmp_path):
    from fairalign.scripts.train import load_train_and_eval

    args = train_script.resolve_args(str(_recipe(tmp_path)), ["--max_train_samples", "5"])
    train, evals = load_train_and_eval(args[0], args[1], args[3])
    assert len(train) == 5 and len(evals) == 12  # demo folder: train.jsonl (48 rows), test.jsonl (12 rows)
    a = _write_jsonl(tmp_path / "a.jsonl", TINY_PREFERENCES)
    b = _write_jsonl(tmp_path / "b.jsonl", TINY_PREFERENCES[:4])
    mixture = _recipe(tmp_path, dataset_name=None, datasets=[{"path": str(a), "fraction": 0.5}, {"path": str(b), "fraction": 0.5}],
                      test_split_size=2)
    args = train_script.resolve_args(str(mixture), [])
    train, evals = load_train_and_eval(args[0], args[1], args[3])
    assert len(train) + len(evals) == 8 and len(evals) == 2  # 4 + 4 rows (b has only 4), 2 held out
    args = train_script.resolve_args(str(_recipe(tmp_path, dataset_name=None)), ["--datasets", str(a), str(b)])  # TRL's flag form
    train, evals = load_train_and_eval(args[0], args[1], args[3])
    assert len(train) == 12 and evals is None


def test_the_mixture_example_of_docs_training_md(tmp_path, monkeypatch):
    from fairalign.scripts.train import load_train_and_eval

    doc = (REPO / "docs" / "training.md").read_text()
    block = re.search(r"A mixture:\n\n```yaml\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "mixture.yaml").write_text(block)
    monkeypatch.chdir(REPO)  # the example's paths are relative to the repository
    args = train_script.resolve_args(str(tmp_path / "mixture.yaml"), ["--output_dir", str(tmp_path / "out")])
    train, evals = load_train_and_eval(args[0], args[1], args[3])
    # shares 3/4 and 1/4 of 48 and 12 rows: N = min(48 / 0.75, 12 / 0.25) = 48, so 36 + 12 rows; 10% held out (rounded up)
    assert (len(train), len(evals)) == (43, 5)


# ------------------------------------------------------------------------------------------- shipped recipes
HARDWARE = re.compile(r"^# hardware: (cpu|gpu) \(.+\)", re.M)


def _hardware(path):
    match = HARDWARE.search(path.read_text())
    return match.group(1) if match else None


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_recipe_states_its_hardware_and_resolves(path):
    assert _hardware(path), f"{path.name}: no '# hardware: cpu (...)' or '# hardware: gpu (...)' line"
    recipe = yaml.safe_load(path.read_text())
    # bf16 recipes are for GPUs (TrainingArguments refuses bf16 without one); the keys and values are checked here
    extra = ["--bf16", "false"] if recipe.get("bf16") and not torch.cuda.is_available() else []
    script_args, config, model_args, data_args = train_script.resolve_args(str(path), extra)
    assert script_args.method == recipe["method"] and config.output_dir == recipe["output_dir"]
    assert model_args.model_name_or_path == recipe["model_name_or_path"]
    if config.eval_strategy != "no" or "zephyr" in path.name:  # the paper recipe evaluates on test_prefs
        assert script_args.dataset_test_split == recipe.get("dataset_test_split", "test") and config.eval_strategy != "no"


CPU_RECIPES = [p for p in RECIPES if _hardware(p) == "cpu"]


@pytest.mark.parametrize("path", [p for p in CPU_RECIPES if p.name not in ("smollm2-135m_demo.yaml", "smollm2-135m_formula_lora.yaml")],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_cpu_recipe_trains_one_step(path, tmp_path, tiny_llama_dir):
    """Each CPU recipe as written, on a tiny model, for one step (reweight/smollm2-135m_demo and
    logic/smollm2-135m_formula_lora train in their own modules' tests)."""
    assert cli.main(["train", "--config", str(path), "--model_name_or_path", str(tiny_llama_dir), "--max_steps", "1",
                     "--max_train_samples", "16", "--output_dir", str(tmp_path / "out"), "--save_strategy", "no",
                     "--eval_strategy", "no", "--report_to", "none"]) == 0
    assert json.loads((tmp_path / "out" / "fairalign_run.json").read_text())["script"]["method"] == path.parent.name


# Resume equals uninterrupted (after SIGKILL, and past a half-written checkpoint) and the README's 2-process
# launch are tested in tests/faults/test_training_faults.py.
