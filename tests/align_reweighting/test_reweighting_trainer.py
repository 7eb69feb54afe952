"""ReweightingTrainer: gradient accumulation, the uniform limit, the gradient, warm-up, logging, eval, config."""
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reweighting_helpers import flat_params, lm_dataset, sgd_args, train_once  # noqa: E402

from fairalign.align.reweighting import LMCollator, ReweightingConfig, ReweightingTrainer, config_from_dict  # noqa: E402


def sorted_weights(trainer):
    """Weights ordered by sample (token key), comparable across batchings."""
    return np.array([trainer.captured[k] for k in sorted(trainer.captured)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One optimizer step for each batching, shared by the tests below (trainers are the slow part)."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "8x1": train_once(root / "a", 8, 1),
        "1x8": train_once(root / "b", 1, 8),
        "uniform 8x1": train_once(root / "u", 8, 1, reweight_strategy="uniform"),
        "micro 1x8": train_once(root / "m", 1, 8, reweight_scope="micro_batch"),
    }


def test_accumulation_weights_span_the_whole_accumulated_batch(runs):
    """batch 8 x accumulation 1 == batch 1 x accumulation 8 (weights and update); 2 processes x 2 micro-batches
    of 2 are checked against the same reference in test_reweighting_distributed.py."""
    full, acc = runs["8x1"], runs["1x8"]
    assert len(full.captured) == 8 and sum(full.captured.values()) == pytest.approx(1.0, abs=1e-6)
    assert set(acc.captured) == set(full.captured)
    np.testing.assert_allclose(sorted_weights(acc), sorted_weights(full), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(flat_params(acc.model), flat_params(full.model), rtol=1e-5, atol=1e-6)
    assert acc.state.log_history[0]["loss"] == pytest.approx(full.state.log_history[0]["loss"], rel=1e-5)


def test_micro_batch_scope_weights_each_micro_batch_alone(runs):
    """reweight_scope="micro_batch" with one sample per micro-batch gives every sample weight 1: the uniform update."""
    micro, uniform = runs["micro 1x8"], runs["uniform 8x1"]
    assert len(micro.captured) == 8 and all(w == pytest.approx(1.0) for w in micro.captured.values())
    torch.testing.assert_close(flat_params(micro.model), flat_params(uniform.model), rtol=1e-5, atol=1e-6)
    # and the weighting does change the update
    assert (flat_params(runs["8x1"].model) - flat_params(uniform.model)).abs().max() > 1e-5


def _equal_length_dataset(n=8, length=12, seed=0):
    from datasets import Dataset

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 300, (n, length), generator=g).tolist()
    return Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * length] * n, "labels": ids})


def test_uniform_limit_reproduces_the_ordinary_trainer(tmp_path):
    """r -> inf (and strategy uniform) train exactly like transformers.Trainer: equal-length rows make the
    per-sample mean equal to the model's token mean."""
    from transformers import Trainer, TrainingArguments

    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    tok, data = tiny_tokenizer(), _equal_length_dataset()
    plain = None
    for i, reweight in enumerate([{"reweight_temperature": math.inf}, {"reweight_strategy": "uniform"}]):
        ours = ReweightingTrainer(model=tiny_llama(), args=sgd_args(tmp_path / str(i), 4, 1, steps=2, **reweight),
                                  train_dataset=data, processing_class=tok)
        ours.train()
        if plain is None:
            fields = {f.name: getattr(ours.args, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
            plain = Trainer(model=tiny_llama(), args=TrainingArguments(**{**fields, "output_dir": str(tmp_path / "p")}),
                            train_dataset=data, data_collator=LMCollator(tok.pad_token_id))
            plain.train()
        torch.testing.assert_close(flat_params(ours.model), flat_params(plain.model), rtol=1e-5, atol=1e-6)
        assert ours.state.log_history[0]["loss"] == pytest.approx(plain.state.log_history[0]["loss"], rel=1e-5)


def test_gradient_is_the_weighted_sum_of_per_sample_gradients(tmp_path):
    """Independent check: grad of the trainer's loss == sum_i w_i grad(l_i), each l_i from its own unpadded
    forward and w from the numpy formula; any gradient through w would add a term."""
    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    tok = tiny_tokenizer()
    data = lm_dataset(tok)
    model = tiny_llama().train()
    trainer = ReweightingTrainer(model=model, args=sgd_args(tmp_path, 8, 1, reweight_temperature=0.7),
                                 train_dataset=data, processing_class=tok)
    batch = LMCollator(tok.pad_token_id)([data[i] for i in range(8)])
    model.zero_grad()
    trainer.compute_loss(model, batch).backward()
    got = torch.cat([p.grad.flatten() for p in model.parameters()])

    grads, losses = [], []
    for i in range(8):
        ids = torch.tensor([data[i]["input_ids"]])
        model.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss  # transformers' own token-mean loss of one sample
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    l = np.array(losses)
    x = (2 * l - (l.max() + l.min())) / (l.max() - l.min())
    s = np.minimum(x + 1, 1) / 0.7
    w = np.exp(s) / np.exp(s).sum()
    expected = sum(float(wi) * g for wi, g in zip(w, grads))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_warmup_without_reweighting_then_active(tmp_path):
    trainer = train_once(tmp_path / "w", 4, 2, steps=3, reweight_warmup_steps=2)
    logs = [row for row in trainer.state.log_history if "loss" in row]
    assert [row["reweight/active"] for row in logs] == [0.0, 0.0, 1.0]
    assert "reweight/temperature" not in logs[0] and logs[2]["reweight/temperature"] == 0.5
    assert logs[0]["reweight/weight_entropy"] == pytest.approx(1.0)  # uniform while warming up
    hot = train_once(tmp_path / "h", 8, 1, steps=3, reweight_warmup_steps=2, reweight_warmup_temperature=100.0)
    logs = [row for row in hot.state.log_history if "loss" in row]
    assert [row["reweight/temperature"] for row in logs] == [100.0, 100.0, 0.5]
    assert logs[0]["reweight/weight_entropy"] > 0.9999 and logs[0]["reweight/weight_entropy"] < 1.0


def test_logs_statistics_and_saves_plot(tmp_path):
    trainer = train_once(tmp_path, 4, 1, steps=2, reweight_plot=True)
    row = trainer.state.log_history[0]
    for key in ("weight_entropy", "weight_max", "weight_min", "ess", "frac_upweighted", "loss_mean",
                "loss_up_q50", "loss_down_q50", "loss_up_q25", "loss_down_q75"):
        assert math.isfinite(row[f"reweight/{key}"]), key
    assert row["reweight/weight_max"] > 1 > row["reweight/weight_min"] > 0
    assert row["reweight/loss_up_q50"] > row["reweight/loss_down_q50"]  # linupper favours high losses
    assert row["loss"] == pytest.approx(row["reweight/loss_weighted"], rel=1e-5)
    assert (tmp_path / "reweighting.png").stat().st_size > 1000


def test_eval_loss_is_the_ordinary_unweighted_loss(tmp_path):
    from transformers import Trainer, TrainingArguments

    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    tok = tiny_tokenizer()
    data = lm_dataset(tok)
    args = sgd_args(tmp_path, 4, 1)
    ours = ReweightingTrainer(model=tiny_llama(), args=args, eval_dataset=data, processing_class=tok)
    plain = Trainer(model=tiny_llama(), args=TrainingArguments(output_dir=str(tmp_path / "p"), use_cpu=True,
                    per_device_eval_batch_size=args.per_device_eval_batch_size, report_to=[]), eval_dataset=data, data_collator=LMCollator(tok.pad_token_id))
    assert ours.evaluate()["eval_loss"] == pytest.approx(plain.evaluate()["eval_loss"], rel=1e-6)


def test_config_round_trip_and_validation(tmp_path):
    config = ReweightingConfig(output_dir=str(tmp_path), reweight_strategy="quadratic", reweight_temperature=0.8,
                               reweight_scope="micro_batch", reweight_warmup_steps=10, reweight_warmup_temperature=100.0)
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}
    again = config_from_dict(values)
    for name in ("reweight_strategy", "reweight_temperature", "reweight_scope", "reweight_warmup_steps",
                 "reweight_warmup_temperature", "reweight_delta", "learning_rate", "output_dir"):
        assert getattr(again, name) == getattr(config, name)
    bad = [({"reweight_scope": "global"}, "reweight_scope"), ({"reweight_warmup_steps": -1}, "reweight_warmup_steps"),
           ({"reweight_warmup_temperature": 0.0}, "reweight_warmup_temperature"),
           ({"reweight_strategy": "upper"}, "strategy"), ({"reweight_delta": -1.0}, "delta"),
           ({"reweight_temprature": 1.0}, "reweight_temperature")]
    for override, field in bad:
        with pytest.raises(ValueError, match=field):
            config_from_dict({"output_dir": str(tmp_path), **override})


def test_trainer_needs_reweighting_arguments(tmp_path):
    from transformers import TrainingArguments

    from fairalign.align.testing import tiny_llama

    with pytest.raises(ValueError, match="ReweightingConfig"):
        ReweightingTrainer(model=tiny_llama(), args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True))


def test_batches_without_labels_are_rejected(tmp_path):
    from fairalign.align.testing import tiny_llama

    model = tiny_llama().train()
    trainer = ReweightingTrainer(model=model, args=sgd_args(tmp_path, 2, 1))
    with pytest.raises(ValueError, match="labels"):
        trainer.compute_loss(model, {"input_ids": torch.tensor([[5, 6, 7]])})


def test_lora_adapter_starts_the_same_whatever_the_random_state(tiny_llama_dir, tmp_path):
    """build_lm_trainer seeds before creating the adapter: two runs of one config start from one adapter (and
    every process of a launch from the same one), even when the caller left the RNG elsewhere."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    from fairalign.align.reweighting import build_lm_trainer
    from fairalign.align.testing import tiny_tokenizer

    def adapter(rng_seed):
        torch.manual_seed(rng_seed)  # whatever state the caller leaves behind
        config = ReweightingConfig(output_dir=str(tmp_path / str(rng_seed)), max_steps=1, report_to=[], seed=0)
        trainer = build_lm_trainer(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), tiny_tokenizer(), config,
                                   Dataset.from_list([{"text": "hello world"}] * 2),
                                   peft_config=LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
        return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_A" in n}

    first, second = adapter(1), adapter(2)
    assert first and all(torch.equal(first[name], second[name]) for name in first)
