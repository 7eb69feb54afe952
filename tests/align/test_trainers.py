"""rDPO / RPO trainers: peer equivalence with TRL, PEFT, data handling, bad input."""
import datasets
import pytest
import torch

from fairalign.align.rdpo import RobustDPOConfig, RobustDPOTrainer
from fairalign.align.rpo import RPOConfig, RPOTrainer
from fairalign.align.testing import tiny_llama

COMMON = dict(per_device_train_batch_size=4, max_steps=3, learning_rate=1e-2, report_to=[], logging_steps=1,
              save_strategy="no", bf16=False, gradient_checkpointing=False, seed=0, beta=0.1, max_length=128)


def _max_param_diff(a, b):
    return max((x.cpu() - y.cpu()).abs().max().item() for x, y in zip(a.parameters(), b.parameters()))


# Peer tests compare what the formula determines: per-example losses, logged metrics and the gradient of one
# batch (float64 models), then the loss trajectory of a short run. Not the parameters after several Adam steps:
# Adam moves a parameter by ~lr * g / (|g| + eps) whatever |g|'s size, so entries whose true gradient is ~1e-8
# (rare tokens' embeddings) turn summation-order rounding (packed vs padded batches, the CPU's vector width,
# a library's kernels) into differences of ~lr * 1e-2 after a few steps (seen: 3.5e-4 with ATEN_CPU_CAPABILITY=default).
PEER_TOL = dict(rtol=1e-5, atol=1e-6)  # TRL computes its losses in float32 even for a float64 model


def _trl(tmp_path, tokenizer, dataset, dtype=torch.float32, **kwargs):
    from trl import DPOConfig, DPOTrainer

    return DPOTrainer(tiny_llama().to(dtype), ref_model=tiny_llama().to(dtype),
                      args=DPOConfig(output_dir=str(tmp_path / "trl"), **{**COMMON, **kwargs}),
                      train_dataset=dataset, processing_class=tokenizer)


def _step(trainer, rows):
    """(loss, per-example losses or None, {name: grad}, {metric: value}) of one batch of the trainer's own
    tokenised rows, in training mode, without an optimizer step."""
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in rows]))
    trainer.model.train()
    trainer.model.zero_grad()
    loss, out = trainer.compute_loss(trainer.model, batch, return_outputs=True)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if v}
    losses = out.get("losses") if isinstance(out, dict) else None
    return loss.detach(), losses, grads, metrics


def _assert_same_step(ours, theirs, rows, metrics=("rewards/accuracies", "rewards/margins", "rewards/chosen",
                                                    "logps/chosen", "logps/rejected")):
    loss, per_example, grads, logged = _step(ours, rows)
    trl_loss, _, trl_grads, trl_logged = _step(theirs, rows)
    assert float(loss) == pytest.approx(float(trl_loss), rel=1e-6)
    # TRL keeps no per-example losses: one single-row batch each
    trl_per_example = torch.stack([_step(theirs, [i])[0] for i in rows])
    torch.testing.assert_close(per_example, trl_per_example.to(per_example.dtype), rtol=1e-6, atol=1e-8)
    for key in metrics:
        assert logged[key] == pytest.approx(trl_logged[key], rel=1e-6, abs=1e-8), key
    assert grads.keys() == trl_grads.keys()
    assert max(g.abs().max().item() for g in grads.values()) > 1e-3  # a real gradient, not zeros
    for name, g in grads.items():
        torch.testing.assert_close(g, trl_grads[name], **PEER_TOL, msg=lambda m: f"{name}: {m}")


def _assert_same_trajectory(ours, theirs, keys=("loss", "rewards/accuracies", "rewards/margins", "logps/chosen")):
    ours.train()
    theirs.train()
    ours_log = [h for h in ours.state.log_history if "loss" in h]
    trl_log = [h for h in theirs.state.log_history if "loss" in h]
    assert len(ours_log) == len(trl_log) == COMMON["max_steps"]
    for step, (a, b) in enumerate(zip(ours_log, trl_log)):
        for key in keys:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (step, key)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_rdpo_matches_trl_robust(tmp_path, tokenizer, preference_rows, eps):
    ds = datasets.Dataset.from_list(preference_rows)

    def ours(dtype):
        return RobustDPOTrainer(tiny_llama().to(dtype), ref_model=tiny_llama().to(dtype), train_dataset=ds,
                                args=RobustDPOConfig(output_dir=str(tmp_path / "ours"), flip_rate=eps, **COMMON),
                                processing_class=tokenizer)

    _assert_same_step(ours(torch.float64), _trl(tmp_path, tokenizer, ds, torch.float64, loss_type=["robust"],
                                                 label_smoothing=eps), rows=[0, 1, 2, 3])
    trainer = ours(torch.float32)
    _assert_same_trajectory(trainer, _trl(tmp_path, tokenizer, ds, loss_type=["robust"], label_smoothing=eps))
    assert _max_param_diff(trainer.model, tiny_llama()) > 1e-3  # it trained


def test_precomputed_reference_without_ref_model_equals_a_reference_copy(tmp_path, tokenizer, preference_rows):
    # full fine-tune, no ref_model, no PEFT: the precompute pass must use the (not yet updated) policy
    ds = datasets.Dataset.from_list(preference_rows)
    pre = tiny_llama().double()
    trainer = RobustDPOTrainer(pre, args=RobustDPOConfig(output_dir=str(tmp_path / "pre"), flip_rate=0.1,
                               precompute_ref_log_probs=True, **COMMON), train_dataset=ds, processing_class=tokenizer)
    assert trainer.ref_model is None
    live = RobustDPOTrainer(tiny_llama().double(), ref_model=tiny_llama().double(), train_dataset=ds,
                            args=RobustDPOConfig(output_dir=str(tmp_path / "live"), flip_rate=0.1, **COMMON),
                            processing_class=tokenizer)
    # the precomputed column equals the live reference forward (float64: both exact to rounding)
    trainer.get_train_dataloader()  # TRL precomputes the reference column when the dataloader is built
    column = trainer.train_dataset
    rows = list(range(4))
    batch = live._prepare_inputs(live.data_collator([live.train_dataset[i] for i in rows]))
    _, ref, _ = live._policy_and_ref_logps(live.model, batch, with_policy=False)
    stored = torch.tensor([[column[i]["ref_chosen_logps"], column[i]["ref_rejected_logps"]] for i in rows], dtype=ref.dtype)
    torch.testing.assert_close(stored, ref, rtol=1e-12, atol=1e-10)
    loss, per_example, grads, _ = _step(trainer, rows)
    live_loss, live_per_example, live_grads, _ = _step(live, rows)
    torch.testing.assert_close(per_example, live_per_example, rtol=1e-12, atol=1e-12)
    for name, g in grads.items():
        torch.testing.assert_close(g, live_grads[name], rtol=1e-10, atol=1e-12, msg=lambda m: f"{name}: {m}")
    trainer.train()
    live.train()
    assert [h["loss"] for h in trainer.state.log_history if "loss" in h] == pytest.approx(
        [h["loss"] for h in live.state.log_history if "loss" in h], rel=1e-9)
    assert _max_param_diff(pre, tiny_llama()) > 1e-3
    with pytest.raises(RuntimeError, match="once training has changed the policy"):
        with trainer._reference_context():
            pass


def test_rpo_mean_matches_trl_sigmoid_plus_sft_for_equal_length_chosen(tmp_path, tokenizer):
    # chosen answers are permutations of the same words: equal token counts, where both definitions agree
    words = [" a", " b", " c", " d"]
    rows = [{"prompt": f"Question {i}?", "chosen": "".join(words[i:] + words[:i]), "rejected": " no" * (i + 1)} for i in range(4)]
    lengths = {len(tokenizer(r["chosen"])["input_ids"]) for r in rows}
    assert len(lengths) == 1
    ds = datasets.Dataset.from_list(rows * 2)

    def ours(dtype):
        return RPOTrainer(tiny_llama().to(dtype), ref_model=tiny_llama().to(dtype), train_dataset=ds,
                          args=RPOConfig(output_dir=str(tmp_path / "o"), eta=0.3, sft_reduction="mean", **COMMON),
                          processing_class=tokenizer)

    trl_kwargs = dict(loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.3])
    # TRL's SFT term is a token mean over the whole batch, so only whole batches (not single rows) agree
    loss, _, grads, _ = _step(ours(torch.float64), [0, 1, 2, 3])
    trl_loss, _, trl_grads, _ = _step(_trl(tmp_path, tokenizer, ds, torch.float64, **trl_kwargs), [0, 1, 2, 3])
    assert float(loss) == pytest.approx(float(trl_loss), rel=1e-6)
    for name, g in grads.items():
        torch.testing.assert_close(g, trl_grads[name], **PEER_TOL, msg=lambda m: f"{name}: {m}")
    _assert_same_trajectory(ours(torch.float32), _trl(tmp_path, tokenizer, ds, **trl_kwargs), keys=("loss",))


def _one_batch_loss(trainer_cls, config, tokenizer, rows, tmp_path):
    ds = datasets.Dataset.from_list(rows)
    trainer = trainer_cls(tiny_llama(), args=config, train_dataset=ds, processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    trainer.model.train()
    return trainer.compute_loss(trainer.model, batch, return_outputs=True)[1]["losses"], trainer, batch


def test_rpo_paper_mode_differs_from_dpo_by_eta_beta_summed_logp(tmp_path, tokenizer, preference_rows):
    rows = preference_rows[:4]
    kw = {**COMMON, "beta": 0.1}
    rpo, trainer, batch = _one_batch_loss(RPOTrainer, RPOConfig(output_dir=str(tmp_path), eta=0.5, sft_reduction="sum", **kw), tokenizer, rows, tmp_path)
    dpo, _, _ = _one_batch_loss(RobustDPOTrainer, RobustDPOConfig(output_dir=str(tmp_path), flip_rate=0.0, **kw), tokenizer, rows, tmp_path)
    # sum log pi(y_w) computed independently: plain forward + log_softmax over prompt+chosen
    model = tiny_llama()
    summed = []
    for ex in [trainer.train_dataset[i] for i in range(4)]:
        ids = ex["prompt_ids"] + ex["chosen_ids"]
        lp = model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)
        p = len(ex["prompt_ids"])
        summed.append(sum(float(lp[p - 1 + j, ids[p + j]]) for j in range(len(ex["chosen_ids"]))))
    assert torch.allclose(rpo - dpo, -0.5 * 0.1 * torch.tensor(summed), atol=1e-4)


def test_rpo_baseline_column_is_the_sft_target(tmp_path, tokenizer, preference_rows):
    rows = [dict(r, baseline=" A kind and neutral answer.") for r in preference_rows[:4]]
    losses, trainer, batch = _one_batch_loss(RPOTrainer, RPOConfig(output_dir=str(tmp_path), eta=1.0, sft_reduction="mean", **COMMON), tokenizer, rows, tmp_path)
    assert batch["completion_lengths"].shape[1] == 3
    base_ids = trainer.train_dataset[0]["baseline_ids"]
    assert tokenizer.decode(base_ids).startswith(" A kind")


def test_peft_adapter_uses_disabled_adapter_as_reference(tmp_path, tokenizer, preference_rows):
    from peft import LoraConfig

    model = tiny_llama()
    trainer = RobustDPOTrainer(model, args=RobustDPOConfig(output_dir=str(tmp_path), flip_rate=0.1, **COMMON),
                               train_dataset=datasets.Dataset.from_list(preference_rows), processing_class=tokenizer,
                               peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    assert trainer.ref_model is None
    trainer.train()
    first = trainer.state.log_history[0]
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-6)  # policy == reference at step 0
    assert trainer.state.log_history[-2]["rewards/margins"] != 0.0


def test_conversational_dataset(tmp_path, tokenizer, preference_rows):
    conv = [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "chosen": [{"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in preference_rows]
    trainer = RobustDPOTrainer(tiny_llama(), args=RobustDPOConfig(output_dir=str(tmp_path), **COMMON),
                               train_dataset=datasets.Dataset.from_list(conv), processing_class=tokenizer)
    trainer.train()
    assert "<|im_start|>assistant" in tokenizer.decode(trainer.train_dataset[0]["prompt_ids"])


def test_per_example_flip_rate_column(tmp_path, tokenizer, preference_rows):
    rows = [dict(r, flip_rate=0.0 if i % 2 else 0.3) for i, r in enumerate(preference_rows[:4])]
    losses, trainer, batch = _one_batch_loss(RobustDPOTrainer, RobustDPOConfig(output_dir=str(tmp_path), flip_rate=0.1, **COMMON), tokenizer, rows, tmp_path)
    assert batch["flip_rate"].tolist() == pytest.approx([0.3, 0.0, 0.3, 0.0])


@pytest.mark.parametrize("eps", [0.5, -0.1, 1.0])
def test_flip_rate_validated_when_config_is_built(tmp_path, eps):
    with pytest.raises(ValueError, match="flip_rate"):
        RobustDPOConfig(output_dir=str(tmp_path), flip_rate=eps)


def test_trl_only_options_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="loss_type"):
        RobustDPOConfig(output_dir=str(tmp_path), loss_type=["hinge"])


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"prompt": "p", "chosen": "a"}], "missing column"),
        ([{"chosen": "a", "rejected": "b"}], "no `prompt` column"),
        ([{"prompt": "p", "chosen": "", "rejected": "b"}], "empty chosen"),
        ([{"prompt": "p", "chosen": "a", "rejected": "b", "flip_rate": 0.5}], "flip_rate=0.5"),
    ],
)
def test_bad_datasets_raise_clear_errors(tmp_path, tokenizer, rows, message):
    with pytest.raises(ValueError, match=message):
        RobustDPOTrainer(tiny_llama(), args=RobustDPOConfig(output_dir=str(tmp_path), **COMMON),
                         train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer)


def test_identical_and_too_long_pairs_are_counted_skips(tmp_path, tokenizer, preference_rows, caplog):
    rows = preference_rows[:4] + [{"prompt": "p", "chosen": " same", "rejected": " same"},
                                  {"prompt": "long " * 200, "chosen": " a", "rejected": " b"}]
    trainer = RobustDPOTrainer(tiny_llama(), args=RobustDPOConfig(output_dir=str(tmp_path), **COMMON),
                               train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer)
    assert len(trainer.train_dataset) == 4
    assert trainer._skipped_long == 1
    with pytest.raises(ValueError, match="exceed max_length"):
        RobustDPOTrainer(tiny_llama(), args=RobustDPOConfig(output_dir=str(tmp_path), long_sequences="error", **COMMON),
                         train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer)
