"""The reweight recipes resolve through `fairalign train`, and the demo recipe trains end to end."""
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "configs" / "recipes" / "reweight").glob("*.yaml"))


def test_there_are_recipes():
    assert {p.name for p in RECIPES} >= {"smollm2-135m_demo.yaml", "smollm2-135m_pretrain.yaml"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_resolves_to_a_reweighting_config(recipe):
    from fairalign.align.reweighting import ReweightingConfig
    from fairalign.scripts.train import resolve_args

    # bf16 recipes are for GPUs; the keys and values are what is checked here
    script_args, config, _, _ = resolve_args(str(recipe), ["--bf16", "false"])
    assert script_args.method == "reweight"
    assert isinstance(config, ReweightingConfig)
    assert config.reweight_strategy == "linupper" and config.max_length >= 2


def test_demo_recipe_trains_end_to_end(tmp_path, tiny_llama, tokenizer):
    from fairalign.scripts import cli

    model_dir = tmp_path / "tiny-model"
    tiny_llama.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    out = tmp_path / "out"
    argv = ["train", "--config", str(REPO / "configs/recipes/reweight/smollm2-135m_demo.yaml"),
            "--model_name_or_path", str(model_dir), "--output_dir", str(out), "--max_steps", "3",
            "--eval_steps", "3", "--learning_rate", "1e-3"]
    assert cli.main(argv) == 0
    run = json.loads((out / "fairalign_run.json").read_text())
    assert run["script"]["method"] == "reweight" and run["config"]["reweight_strategy"] == "linupper"
    assert (out / "model.safetensors").exists()
    assert (out / "reweighting.png").exists()
