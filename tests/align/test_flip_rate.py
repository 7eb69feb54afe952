"""Estimating rDPO's flip rate from a doubly-labelled subset (fairalign.align.flip_rate) and the recipe option
`flip_rate_estimate_file` (RobustDPOConfig, `fairalign train`, the trainer)."""
import dataclasses
import json
import math

import numpy as np
import pytest
from scipy.stats import binom

from fairalign.align.errors import InputError, MissingPathError
from fairalign.align.flip_rate import (clopper_pearson, estimate_flip_rate, estimate_flip_rate_from_agreement,
                                       flip_rate_from_agreement, flip_rate_from_file)


def _simulate(rng, n, eps, repeats=1):
    """(truth, noisy a, noisy b): true preferences and two independent annotations flipped with rate eps."""
    truth = rng.random((repeats, n)) < 0.5
    return truth, truth ^ (rng.random((repeats, n)) < eps), truth ^ (rng.random((repeats, n)) < eps)


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------------------------ estimators
def test_trusted_estimate_is_the_disagreement_fraction_and_its_interval_holds_the_truth():
    truth, noisy, _ = _simulate(np.random.default_rng(0), 20_000, 0.2)
    est = estimate_flip_rate(noisy[0], truth[0])
    assert est.rate == np.mean(noisy[0] != truth[0]) and est.n == 20_000 and est.method == "trusted"
    assert est.low < est.rate < est.high and est.low <= 0.2 <= est.high and est.high - est.low < 0.015
    # Clopper-Pearson's defining tails, from the binomial distribution itself: P(X >= k | low) = P(X <= k | high) = 2.5%
    k = round(est.rate * est.n)
    assert binom.sf(k - 1, est.n, est.low) == pytest.approx(0.025, rel=1e-6)
    assert binom.cdf(k, est.n, est.high) == pytest.approx(0.025, rel=1e-6)


@pytest.mark.parametrize("mode", ["trusted", "agreement"])
def test_the_95_percent_interval_covers_the_true_rate_about_95_percent_of_the_time(mode):
    eps, n, repeats = 0.2, 200, 400
    truth, a, b = _simulate(np.random.default_rng(1), n, eps, repeats)
    if mode == "trusted":
        estimates = [estimate_flip_rate(a[r], truth[r]) for r in range(repeats)]
    else:
        estimates = [estimate_flip_rate_from_agreement(a[r], b[r]) for r in range(repeats)]
    coverage = np.mean([e.low <= eps <= e.high for e in estimates])
    assert 0.92 <= coverage <= 0.98, coverage
    assert abs(np.mean([e.rate for e in estimates]) - eps) < 0.01  # centred on the truth


def test_agreement_formula_against_the_closed_form():
    for eps in (0.0, 0.05, 0.2, 0.35, 0.49):
        assert flip_rate_from_agreement((1 - eps) ** 2 + eps ** 2) == pytest.approx(eps, abs=1e-12)
    # 68 agreements in 100 rows: a = 0.68 = 0.8^2 + 0.2^2, so eps = 0.2 exactly; the interval is the agreement's mapped
    labels_a = [1] * 100
    labels_b = [1] * 68 + [0] * 32
    est = estimate_flip_rate_from_agreement(labels_a, labels_b)
    a_low, a_high = clopper_pearson(68, 100, 0.95)
    assert est.rate == pytest.approx(0.2, abs=1e-12) and est.method == "agreement" and not est.note
    assert est.low == pytest.approx((1 - math.sqrt(2 * a_high - 1)) / 2)
    assert est.high == pytest.approx((1 - math.sqrt(2 * a_low - 1)) / 2)


def test_agreement_at_or_below_one_half_is_not_identifiable():
    for agree in (50, 40):  # of 100
        with pytest.raises(InputError, match="not identifiable"):
            estimate_flip_rate_from_agreement([1] * 100, [1] * agree + [0] * (100 - agree))


def test_an_agreement_interval_below_one_half_clips_only_the_upper_bound_and_says_so():
    est = estimate_flip_rate_from_agreement([1] * 20, [1] * 12 + [0] * 8)  # a = 0.6, its interval reaches ~0.36
    assert est.rate == pytest.approx((1 - math.sqrt(0.2)) / 2) and est.high == 0.5 and "clipped to 0.5" in est.note


def test_a_trusted_disagreement_of_one_half_or_more_is_refused():
    with pytest.raises(InputError, match="no better than chance"):
        estimate_flip_rate([1, 0, 1, 0], [1, 1, 0, 0])


@pytest.mark.parametrize("labels, trusted, message", [
    ([1, 0, 2], [1, 0, 1], r"labels\[2\]=2 is not a preference label"),
    ([True, False], [1.0, 0.0], r"trusted\[0\]=1.0 is not a preference label"),
    (["1", "0"], [1, 0], r"labels\[0\]='1'"),
    ([1, None], [1, 0], r"labels\[1\]=None"),
    ([1, 0, 1], [1, 0], "labels has 3 rows and trusted has 2"),
    ([], [], "empty"),
    ("1010", "1010", "must be a sequence"),
])
def test_bad_labels_name_the_argument_and_row(labels, trusted, message):
    with pytest.raises(ValueError, match=message):
        estimate_flip_rate(labels, trusted)


def test_numpy_bools_and_ints_are_labels():
    est = estimate_flip_rate(np.array([1, 0, 1, 1]), np.array([True, False, True, False]))
    assert (est.rate, est.n) == (0.25, 4)


# ------------------------------------------------------------------------------------------------ the file
def test_files_in_each_format_give_the_in_memory_estimate(tmp_path):
    rows = [{"label": 1, "trusted_label": 1, "prompt": "p"}] * 7 + [{"label": False, "trusted_label": True, "prompt": "p"}] * 3
    from_jsonl = flip_rate_from_file(_write_jsonl(tmp_path / "t.jsonl", rows))
    assert from_jsonl == estimate_flip_rate([1] * 7 + [0] * 3, [1] * 10)
    (tmp_path / "t.json").write_text(json.dumps(rows))
    assert flip_rate_from_file(tmp_path / "t.json") == from_jsonl
    (tmp_path / "a.csv").write_text("prompt,label_a,label_b\n" + "x,1,true\n" * 8 + "y,0,1\n" * 2)
    assert flip_rate_from_file(str(tmp_path / "a.csv")) == estimate_flip_rate_from_agreement([1] * 10, [1] * 8 + [0] * 2)


def test_file_errors_name_the_file_row_and_column(tmp_path):
    with pytest.raises(MissingPathError, match="missing.jsonl does not exist"):
        flip_rate_from_file(tmp_path / "missing.jsonl")
    bad_columns = _write_jsonl(tmp_path / "cols.jsonl", [{"label": 1, "gold": 1}])
    with pytest.raises(InputError, match=r"cols.jsonl: unknown columns \['gold', 'label'\].*trusted_label"):
        flip_rate_from_file(bad_columns)
    bad_value = _write_jsonl(tmp_path / "val.jsonl", [{"label": 1, "trusted_label": 1}, {"label": 2, "trusted_label": 1}])
    with pytest.raises(InputError, match=r"val.jsonl line 2, column 'label': 2 is not a preference label"):
        flip_rate_from_file(bad_value)
    (tmp_path / "val.csv").write_text("label_a,label_b\n1,1\n1,yes\n")
    with pytest.raises(InputError, match=r"val.csv line 3, column 'label_b': 'yes'"):
        flip_rate_from_file(tmp_path / "val.csv")
    missing_cell = _write_jsonl(tmp_path / "gap.jsonl", [{"label_a": 1, "label_b": 1}, {"label_a": 0}])
    with pytest.raises(InputError, match=r"gap.jsonl line 2: column 'label_b' is missing"):
        flip_rate_from_file(missing_cell)
    (tmp_path / "x.txt").write_text("1 1\n")
    with pytest.raises(InputError, match="unsupported file type .txt"):
        flip_rate_from_file(tmp_path / "x.txt")


# ------------------------------------------------------------------------------------------------ the recipe option
@pytest.fixture
def quarter_file(tmp_path):
    """A trusted-mode subset where 1 row in 4 is flipped: eps = 0.25 (not rDPO's default 0.1)."""
    return _write_jsonl(tmp_path / "subset.jsonl", [{"label": int(i % 4 != 0), "trusted_label": 1} for i in range(40)])


def test_config_takes_the_estimate_and_refuses_a_second_flip_rate(tmp_path, quarter_file):
    from fairalign.align.rdpo import RobustDPOConfig

    assert RobustDPOConfig(output_dir=str(tmp_path), report_to=[]).flip_rate == 0.1  # neither given: the default
    config = RobustDPOConfig(output_dir=str(tmp_path), report_to=[], flip_rate_estimate_file=str(quarter_file))
    assert config.flip_rate == 0.25 and config.flip_rate_estimate == flip_rate_from_file(quarter_file)
    assert dataclasses.replace(config, beta=0.2).flip_rate == 0.25  # a rebuilt config is the same setting
    with pytest.raises(InputError, match="give flip_rate=0.1 or flip_rate_estimate_file=.*not both"):
        RobustDPOConfig(output_dir=str(tmp_path), flip_rate=0.1, flip_rate_estimate_file=str(quarter_file))


def test_recipe_field_through_fairalign_train(tmp_path, quarter_file, capsys):
    import yaml

    from fairalign.scripts import cli
    from fairalign.scripts import train as train_script

    recipe = dict(method="rdpo", model_name_or_path="smollm2", dataset_name=str(tmp_path), output_dir=str(tmp_path / "o"),
                  flip_rate_estimate_file=str(quarter_file), report_to=[])
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    _, config, _, _ = train_script.resolve_args(str(path), [])
    assert config.flip_rate == 0.25 and config.flip_rate_estimate_file == str(quarter_file)
    assert cli.main(["train", "--config", str(path), "--flip_rate", "0.2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not both" in err[0]


def test_trainer_uses_and_records_the_estimate(tmp_path, tokenizer, quarter_file):
    import datasets
    import torch

    from fairalign.align.losses import robust_dpo_loss
    from fairalign.align.rdpo import RobustDPOConfig, RobustDPOTrainer
    from fairalign.align.testing import TINY_PREFERENCES, tiny_llama

    args = RobustDPOConfig(output_dir=str(tmp_path / "out"), flip_rate_estimate_file=str(quarter_file), max_steps=1,
                           per_device_train_batch_size=4, report_to=[], save_strategy="no", max_length=64, bf16=False)
    # another seed for the reference: at policy == reference every eps gives log 2
    trainer = RobustDPOTrainer(tiny_llama(), ref_model=tiny_llama(seed=1), args=args, processing_class=tokenizer,
                               train_dataset=datasets.Dataset.from_list(TINY_PREFERENCES))
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(4)]))
    with torch.no_grad():
        logps = trainer.pair_logps(trainer.model, batch)
        used = trainer.pair_losses(logps)
    pair = (logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected, trainer.beta)
    torch.testing.assert_close(used, robust_dpo_loss(*pair, 0.25))
    assert not torch.allclose(used, robust_dpo_loss(*pair, 0.1))
    trainer.train()
    assert trainer.state.global_step == 1 and trainer.args.flip_rate == 0.25
    record = json.loads((tmp_path / "out" / "flip_rate_estimate.json").read_text())
    assert record["flip_rate"] == 0.25 and record["file"] == str(quarter_file) and record["method"] == "trusted"
    assert record["low"] < 0.25 < record["high"] and record["n"] == 40
