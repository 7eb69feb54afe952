"""TRL SFTTrainer integration, padding-free samples, and the causal-LM data helpers."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reweighting_helpers import TEXTS, flat_params, train_once  # noqa: E402

from fairalign.align.reweighting import LMCollator, build_lm_dataset  # noqa: E402
from fairalign.align.reweighting.samples import reduce_per_sample, sample_index  # noqa: E402


def test_sft_variant_matches_the_plain_trainer(tmp_path):
    """Same texts, same step: TRL's data preparation + fused LM head give the update of ReweightingTrainer."""
    from datasets import Dataset

    from fairalign.align.reweighting.sft import ReweightingSFTConfig, ReweightingSFTTrainer
    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    reference = train_once(tmp_path / "lm", 4, 2)
    args = ReweightingSFTConfig(
        output_dir=str(tmp_path / "sft"), per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=1,
        learning_rate=0.5, optim="sgd", lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0,
        report_to=[], save_strategy="no", use_cpu=True, bf16=False, gradient_checkpointing=False, logging_steps=1,
        disable_tqdm=True, seed=0, max_length=48,
    )
    trainer = ReweightingSFTTrainer(model=tiny_llama(), args=args, train_dataset=Dataset.from_dict({"text": TEXTS}),
                                    processing_class=tiny_tokenizer())
    trainer.train()
    torch.testing.assert_close(flat_params(trainer.model), flat_params(reference.model), rtol=1e-4, atol=1e-6)
    row = trainer.state.log_history[0]
    assert row["reweight/active"] == 1.0 and 0 < row["reweight/weight_entropy"] < 1
    assert "mean_token_accuracy" in row and "entropy" in row  # SFTTrainer's own train metrics survive
    losses, weights, _ = trainer.last_global_weights
    assert weights.shape == (8,) and float(weights.sum()) == pytest.approx(1.0, abs=1e-6)


def test_sft_variant_rejects_other_loss_types(tmp_path):
    from datasets import Dataset

    from fairalign.align.reweighting.sft import ReweightingSFTConfig, ReweightingSFTTrainer
    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    args = ReweightingSFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, gradient_checkpointing=False,
                                report_to=[], loss_type="dft")
    with pytest.raises(ValueError, match="loss_type"):
        ReweightingSFTTrainer(model=tiny_llama(), args=args, train_dataset=Dataset.from_dict({"text": TEXTS[:2]}),
                              processing_class=tiny_tokenizer())


def test_padding_free_batches_split_into_sequences():
    # Three sequences of lengths 3, 4, 2 flattened into one row, like TRL's padding-free collator
    position_ids = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 0, 1]])
    labels = torch.tensor([[-100, 5, 6, -100, 7, 8, 9, -100, 4]])
    nll = torch.arange(1.0, 9.0)[None]  # per-target nll, target t predicts token t+1
    mask = labels[:, 1:] != -100
    index, num = sample_index({"position_ids": position_ids, "labels": labels}, mask.shape)
    assert num == 3
    losses, valid = reduce_per_sample(nll * mask, mask, index, num)
    # seq 1 targets at t=0,1 (nll 1, 2); seq 2 at t=3,4,5 (4, 5, 6); seq 3 at t=7 (8)
    torch.testing.assert_close(losses, torch.tensor([1.5, 5.0, 8.0]))
    assert valid.tolist() == [True, True, True]


def test_rows_are_samples_and_empty_rows_are_invalid():
    nll = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    index, num = sample_index({"attention_mask": torch.ones(2, 4)}, mask.shape)
    assert index is None and num == 2
    losses, valid = reduce_per_sample(nll, mask, index, num)
    torch.testing.assert_close(losses, torch.tensor([2.0, 0.0]))
    assert valid.tolist() == [True, False]


def test_build_lm_dataset_and_collator():
    from datasets import Dataset

    from fairalign.align.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    data = Dataset.from_dict({"text": ["Paris is the capital of France.", "", "   ", "The quick brown fox " * 20],
                              "id": [1, 2, 3, 4]})
    out = build_lm_dataset(data, tok, max_length=16)
    assert len(out) == 2 and set(out.column_names) == {"input_ids", "attention_mask", "labels"}
    first = out[0]
    assert first["labels"] == first["input_ids"]
    assert first["input_ids"] == tok("Paris is the capital of France." + tok.eos_token)["input_ids"]
    assert first["input_ids"][-1] == tok.eos_token_id
    assert len(out[1]["input_ids"]) == 16  # truncated

    # pad == eos (like SmolLM2): padding is masked by position, the real eos keeps its label
    batch = LMCollator(pad_token_id=tok.eos_token_id)([out[0], out[1]])
    n = len(first["input_ids"])
    assert batch["input_ids"].shape == (2, 16)
    assert batch["labels"][0, n - 1] == tok.eos_token_id
    assert torch.all(batch["labels"][0, n:] == -100) and torch.all(batch["attention_mask"][0, n:] == 0)
    assert torch.all(batch["input_ids"][0, n:] == tok.eos_token_id)
    assert LMCollator(0, pad_to_multiple_of=8)([{"input_ids": [1, 2, 3]}])["input_ids"].shape == (1, 8)


@pytest.mark.parametrize("kwargs,match", [({"text_column": "body"}, "text_column"), ({"max_length": 1}, "max_length")])
def test_build_lm_dataset_rejects_bad_arguments(kwargs, match):
    from datasets import Dataset

    from fairalign.align.testing import tiny_tokenizer

    with pytest.raises(ValueError, match=match):
        build_lm_dataset(Dataset.from_dict({"text": ["a b c"]}), tiny_tokenizer(), **kwargs)
