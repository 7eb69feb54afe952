"""`fairalign train` / scripts/train.py: recipes, overrides, resume, and a 2-process accelerate launch."""
import json
import os
import subprocess
import sys
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


def test_train_then_resume_equals_uninterrupted(tmp_path, tiny_llama_dir):
    from safetensors.torch import load_file

    recipe = _recipe(tmp_path)
    full = tmp_path / "full"
    assert cli.main(["train", "--config", str(recipe), "--model_name_or_path", str(tiny_llama_dir), "--output_dir", str(full)]) == 0
    run = json.loads((full / "fairalign_run.json").read_text())
    assert run["config"]["flip_rate"] == 0.1 and run["versions"]["trl"]
    # interrupted after step 2: keep checkpoint-2 only, then resume
    part = tmp_path / "part"
    assert cli.main(["train", "--config", str(recipe), "--model_name_or_path", str(tiny_llama_dir), "--output_dir", str(part), "--max_steps", "4", "--save_steps", "2"]) == 0
    for leftover in ("checkpoint-4", "model.safetensors"):
        target = part / leftover
        subprocess.run(["rm", "-rf", str(target)], check=True)
    assert cli.main(["train", "--config", str(recipe), "--model_name_or_path", str(tiny_llama_dir), "--output_dir", str(part), "--resume_from_checkpoint", "last"]) == 0
    a, b = load_file(full / "model.safetensors"), load_file(part / "model.safetensors")
    assert all((a[k] - b[k]).abs().max() == 0 for k in a)


def test_two_process_accelerate_launch(tmp_path, tiny_llama_dir):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", ACCELERATE_USE_CPU="true")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "configs/accelerate/cpu_2proc.yaml"),
           str(REPO / "scripts" / "train.py"), "--config", str(_recipe(tmp_path)), "--model_name_or_path", str(tiny_llama_dir),
           "--output_dir", str(out), "--max_steps", "2", "--save_strategy", "no"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.safetensors").exists()
    state = json.loads(next(out.rglob("fairalign_run.json")).read_text())
    assert state["script"]["method"] == "rdpo"
    assert state["world_size"] == 2, "accelerate started one process, not two: check configs/accelerate/cpu_2proc.yaml"
