"""LogicDPATrainer: config validation, DPO equivalence with TRL's DPOTrainer, reference-free structures."""
import copy

import pytest
import torch

pytest.importorskip("trl")


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=3, learning_rate=0.5, optim="sgd",
                lr_scheduler_type="constant", report_to=[], bf16=False, gradient_checkpointing=False, seed=0,
                logging_steps=1, save_strategy="no", use_cpu=True, beta=0.1, max_length=None)
    base.update(kw)
    return base


def _dataset(rows):
    from datasets import Dataset

    return Dataset.from_list(rows)


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_logic_dpo_structure_trains_like_trl_dpo(tmp_path, tiny_llama, tokenizer, preference_rows):
    """Same seed, data order, optimiser (SGD): the `dpo` structure and TRL's sigmoid DPO land on the same
    parameters after 3 steps, and the parameters did move."""
    from trl import DPOConfig, DPOTrainer

    from fairalign.align.logic import LogicDPAConfig, LogicDPATrainer

    start = _params(tiny_llama)
    ours_model, trl_model = copy.deepcopy(tiny_llama), copy.deepcopy(tiny_llama)
    ours = LogicDPATrainer(ours_model, ref_model=copy.deepcopy(tiny_llama), processing_class=tokenizer,
                           args=LogicDPAConfig(structure="dpo", **_args(tmp_path / "ours")),
                           train_dataset=_dataset(preference_rows))
    assert ours.needs_reference
    ours.train()
    trl = DPOTrainer(trl_model, ref_model=copy.deepcopy(tiny_llama), processing_class=tokenizer,
                     args=DPOConfig(loss_type=["sigmoid"], **_args(tmp_path / "trl")),
                     train_dataset=_dataset(preference_rows))
    trl.train()
    a, b = _params(ours_model), _params(trl_model)
    moved = max(float((a[n] - start[n]).abs().max()) for n in a)
    assert moved > 1e-3
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=2e-5, rtol=1e-4, msg=name)


def test_logic_reference_free_structure_skips_reference(tmp_path, tiny_llama, tokenizer, preference_rows):
    """CPO-like structures need no reference model; training still moves every trainable tensor that gets a
    gradient and logs rho."""
    from fairalign.align.logic import LogicDPAConfig, LogicDPATrainer

    trainer = LogicDPATrainer(tiny_llama, processing_class=tokenizer,
                              args=LogicDPAConfig(structure="orpo", **_args(tmp_path, max_steps=2)),
                              train_dataset=_dataset(preference_rows))
    assert not trainer.needs_reference and trainer.ref_model is None
    assert trainer.args.logp_normalisation == "mean"  # ORPO's recommendation
    trainer.train()
    logged = [h for h in trainer.state.log_history if "logic/rho" in h]
    assert logged and all(torch.isfinite(torch.tensor(h["logic/rho"])) for h in logged)


def test_logic_trainer_loss_matches_structure_on_a_batch(tmp_path, tiny_llama, tokenizer, preference_rows):
    """pair_losses applies the per-atom normalisation and flip rate: compare with a direct computation."""
    from fairalign.align.logic import STRUCTURES, LogicDPAConfig, LogicDPATrainer
    from fairalign.align.preference import PairLogps

    trainer = LogicDPATrainer(tiny_llama, processing_class=tokenizer,
                              args=LogicDPAConfig(structure="uncpo", logp_normalisation="Mw=mean", flip_rate=0.2,
                                                  **_args(tmp_path)),
                              train_dataset=_dataset(preference_rows))
    g = torch.Generator().manual_seed(0)
    lw, ll = (-torch.rand(4, generator=g, dtype=torch.float64) * 30 for _ in range(2))
    nw, nl = torch.tensor([3.0, 5, 7, 9]), torch.tensor([2.0, 4, 6, 8])
    logps = PairLogps(lw, ll, None, None, nw, nl, batch={})
    got = trainer.pair_losses(logps)
    s = STRUCTURES["uncpo"]
    z = lambda a, b: s.loss(a, b, beta=0.1)  # noqa: E731
    want = (0.8 * z(lw / nw, ll) - 0.2 * z(ll, lw / nw)) / 0.6
    torch.testing.assert_close(got, want)
    # a `flip_rate` dataset column overrides the config row by row
    eps = torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64)
    got = trainer.pair_losses(PairLogps(lw, ll, None, None, nw, nl, batch={"flip_rate": eps}))
    torch.testing.assert_close(got, ((1 - eps) * z(lw / nw, ll) - eps * z(ll, lw / nw)) / (1 - 2 * eps))


@pytest.mark.parametrize("kw, field", [
    ({}, "structure"),
    ({"structure": "dpo", "core": "Mw"}, "structure/core"),
    ({"core": "Mw -> "}, "core"),
    ({"core": "Mw", "condition": "Mw & Xx"}, "condition"),
    ({"structure": "cpo", "condition": "Mw"}, "condition"),
    ({"structure": "cpo", "link": "relu"}, "link"),
    ({"structure": "cpo", "logp_normalisation": "median"}, "logp_normalisation"),
    ({"structure": "cpo", "flip_rate": 0.5}, "flip_rate"),
    ({"structure": "bogus"}, "structure"),
    ({"core": "F"}, "core"),
])
def test_logic_config_validation(tmp_path, kw, field):
    from fairalign.align.logic import LogicDPAConfig

    with pytest.raises(ValueError, match=field.split("/")[0]):
        LogicDPAConfig(**_args(tmp_path), **kw)


def test_logic_config_recommended_and_explicit(tmp_path):
    from fairalign.align.logic import LogicDPAConfig

    simpo = LogicDPAConfig(structure="simpo", **_args(tmp_path))
    assert (simpo.link, simpo.logp_normalisation, simpo.margin) == ("logistic", "mean", 0.5)
    ipo = LogicDPAConfig(structure="ipo", link="hinge", **_args(tmp_path))
    assert ipo.link == "hinge"
    own = LogicDPAConfig(core="Ml -> Mw", condition="Mw ^ Ml", **_args(tmp_path))
    assert own.build_structure().atoms == ("Mw", "Ml") and own.logp_normalisation == "sum"
    again = LogicDPAConfig(**{k: v for k, v in own.to_dict().items() if k in ("structure", "core", "condition",
                                                                               "additional", "link", "margin")},
                           **_args(tmp_path))
    assert again.build_structure().check_table.tolist() == own.build_structure().check_table.tolist()


def test_logic_recipe_resolves(tmp_path):
    from pathlib import Path

    from fairalign.scripts.train import resolve_args

    recipes = sorted(Path(__file__).resolve().parents[2].joinpath("configs/recipes/logic").glob("*.yaml"))
    assert recipes
    for recipe in recipes:
        script_args, config, _, _ = resolve_args(str(recipe), ["--output_dir", str(tmp_path)])
        assert script_args.method == "logic" and config.build_structure() is not None


def test_logic_recipe_trains_tiny_model(tmp_path, tiny_llama, tokenizer):
    """`fairalign train` on the formula recipe (reference atoms through the LoRA-disabled model, mean
    log-probs, flip rate), with the model swapped for a tiny one saved to disk. (Every recipe is resolved and
    validated in test_logic_recipe_resolves.)"""
    import json
    from pathlib import Path

    from fairalign.scripts.cli import main

    root = Path(__file__).resolve().parents[2]
    model_dir = tmp_path / "tiny"
    tiny_llama.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    out = tmp_path / "out"
    rc = main(["train", "--config", str(root / "configs/recipes/logic/smollm2-135m_formula_lora.yaml"),
               "--model_name_or_path", str(model_dir),
               "--dataset_name", str(root / "align/resources/preferences_demo/train.jsonl"), "--max_train_samples", "8",
               "--max_steps", "2", "--logging_steps", "1", "--save_strategy", "no",
               "--output_dir", str(out)])
    assert rc == 0
    run = json.loads((out / "fairalign_run.json").read_text())
    assert run["script"]["method"] == "logic"
    assert (out / "adapter_model.safetensors").exists()
