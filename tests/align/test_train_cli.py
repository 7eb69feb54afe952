"""`fairalign train` / scripts/train.py: recipes and overrides."""
from pathlib import Path

import pytest
import torch
import yaml

from fairalign.scripts import cli
from fairalign.scripts import train as train_script

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "align" / "resources" / "preferences_demo_train.jsonl"


def _recipe(tmp_path, **overrides):
    recipe = dict(method="rdpo", dataset_path=str(DATA), max_length=128, flip_rate=0.1, per_device_train_batch_size=4,
                  max_steps=4, save_strategy="steps", save_steps=2, logging_steps=1, report_to=[], learning_rate=1e-3,
                  output_dir=str(tmp_path / "out"))
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_cli_help_lists_commands(capsys):
    assert cli.main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert cli.main(["no-such-command"]) == 2


def test_shipped_recipes_resolve():
    for path in sorted((REPO / "configs" / "recipes").glob("*/*.yaml")):
        recipe = yaml.safe_load(path.read_text())
        if recipe.get("method") not in ("rdpo", "rpo"):
            continue  # other methods are tested with their own modules
        if recipe.get("bf16") and not torch.cuda.is_available():
            continue  # GPU recipes: TrainingArguments refuses bf16 without a GPU
        script_args, config = train_script.resolve_args(str(path), [])
        assert script_args.method == recipe["method"]
        assert config.output_dir == recipe["output_dir"]


def test_unknown_recipe_key_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="invalid recipe"):
        train_script.resolve_args(str(_recipe(tmp_path, flip_rat=0.1)), [])
    with pytest.raises(ValueError, match="flip_rate"):
        train_script.resolve_args(str(_recipe(tmp_path)), ["--flip_rate", "0.5"])


# Resume equals uninterrupted (after SIGKILL, and past a half-written checkpoint) and the README's 2-process
# launch are tested in tests/faults/test_training_faults.py.
