"""The private TRL / transformers APIs fairalign relies on (all in fairalign.align.trl_internals) still behave
as that module says. A new TRL that changes one fails here, naming it."""
import re
from collections import defaultdict
from pathlib import Path

import datasets
import pytest
import torch

from fairalign.align import trl_internals
from fairalign.align.testing import TINY_PREFERENCES, tiny_llama, tiny_tokenizer

ROOT = Path(__file__).resolve().parents[2]


def test_every_internal_has_the_shape_fairalign_was_written_for():
    problems = trl_internals.check_internals()
    assert not problems, "TRL internals changed:\n" + "\n".join(problems)


def test_the_check_names_an_internal_that_changed(monkeypatch):
    from trl import DPOTrainer

    monkeypatch.setattr(DPOTrainer, "_prepare_dataset", lambda self, dataset, args: dataset)
    problems = trl_internals.check_internals()
    assert len(problems) == 1 and "DPOTrainer._prepare_dataset now takes" in problems[0]


def test_pyproject_pins_trl_to_the_tested_range():
    import trl
    from packaging.specifiers import SpecifierSet

    pins = re.findall(r'"trl([^"]*)"', (ROOT / "pyproject.toml").read_text())
    assert pins == [trl_internals.TESTED_TRL]
    assert trl.__version__ in SpecifierSet(trl_internals.TESTED_TRL)


def test_no_private_trl_name_outside_the_internals_module():
    """The promise of the module: grep align/ for TRL's private names and private imports."""
    pattern = re.compile(r"from trl\.trainer|trl\.trainer\.utils|\._metrics\b|_total_train_tokens|"
                         r"def _prepare_dataset|def _precompute_ref_logps|def _set_signature_columns|_signature_columns|"
                         r"def _compute_loss|fused_lm_head=|\bprecompute_ref_logps\b")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "align").rglob("*.py") if p.name != "trl_internals.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders


def _trainer(tmp_path, **kwargs):
    from fairalign.align.rdpo import RobustDPOConfig, RobustDPOTrainer

    args = RobustDPOConfig(output_dir=str(tmp_path), report_to=[], bf16=False, max_length=64,
                           per_device_train_batch_size=4, **kwargs)
    return RobustDPOTrainer(tiny_llama(), args=args, train_dataset=datasets.Dataset.from_list(TINY_PREFERENCES),
                            processing_class=tiny_tokenizer())


def test_recorded_metrics_reach_trls_logs(tmp_path):
    trainer = _trainer(tmp_path, precompute_ref_log_probs=True)
    assert isinstance(trainer._metrics["train"], defaultdict)
    trainer.record_metric("train", "probe/value", 2.0)
    trainer.record_metric("train", "probe/value", 4.0)
    trainer.model.train()
    trainer.log({"loss": 1.0})
    assert trainer.state.log_history[-1]["probe/value"] == pytest.approx(3.0)  # TRL averages the list
    assert trainer.add_train_tokens(5) == trainer.add_train_tokens(0) == 5


def test_precompute_flag_keeps_trl_from_building_a_reference(tmp_path):
    trainer = _trainer(tmp_path, precompute_ref_log_probs=True)
    assert trainer.ref_model is None and trainer.reference_is_precomputed
    assert "ref_chosen_logps" in trainer.train_dataset.column_names


def test_use_adapter_none_is_the_base_model():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    ids = torch.tensor([[3, 5, 7, 9]])
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
        with trl_internals.use_adapter(model, None):
            base = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    torch.testing.assert_close(base, tiny_llama()(input_ids=ids).logits)
    assert not torch.allclose(tuned, base)
    torch.testing.assert_close(after, tuned)  # the adapter is active again on exit
