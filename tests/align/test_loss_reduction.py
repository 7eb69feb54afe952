"""loss_reduction="reweight" on every preference method: the batch loss is sum_i w_i l_i with Sow et al.'s
weights of the per-pair losses, computed here independently (numpy), and its gradient is sum_i w_i grad l_i
with the gradients of single pairs under the plain mean (no gradient through the weights)."""
import math

import datasets
import numpy as np
import pytest
import torch

from fairalign.align.registry import METHODS
from fairalign.align.testing import TINY_PREFERENCES, tiny_llama, tiny_tokenizer

PREFERENCE = [(m, e) for m, s in METHODS.items() if s.data == "preference" for e in s.examples]


def _trainer(tmp_path, method, example, **overrides):
    config_cls, trainer_cls = METHODS[method].load()
    args = config_cls(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to=[], bf16=False, beta=0.1,
                      max_length=64, seed=0, **{**METHODS[method].examples[example], **overrides})
    model = tiny_llama().double()
    ref = tiny_llama(seed=1).double() if trainer_cls.reference_needed(args) else None  # differs: unequal losses
    return trainer_cls(model, ref_model=ref, args=args, train_dataset=datasets.Dataset.from_list(TINY_PREFERENCES),
                       processing_class=tiny_tokenizer())


def _loss_and_grad(trainer, rows):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in rows])
    trainer.model.train()
    trainer.model.zero_grad()
    loss, out = trainer.compute_loss(trainer.model, batch, return_outputs=True)
    loss.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in trainer.model.parameters() if p.grad is not None])
    return loss.detach(), out["losses"].detach(), grad


def _linupper_weights(losses, temperature, delta=1.0):
    """Sow et al. 2025, Sec. 3, written out: min-max normalise to [-delta, delta], f(x) = min(x + delta, delta),
    softmax(f / r)."""
    l = np.asarray(losses, dtype=np.float64)
    x = delta * (2 * l - (l.max() + l.min())) / (l.max() - l.min())
    scores = np.minimum(x + delta, delta) / temperature
    e = np.exp(scores - scores.max())
    return e / e.sum()


@pytest.mark.parametrize("method,example", PREFERENCE)
def test_reweighted_loss_and_gradient_match_the_formula(tmp_path, method, example):
    rows = [0, 1, 2, 3]
    reweighted = _trainer(tmp_path / "rw", method, example, loss_reduction="reweight", reweight_strategy="linupper",
                          reweight_temperature=0.5)
    plain = _trainer(tmp_path / "mean", method, example)
    loss, per_pair, grad = _loss_and_grad(reweighted, rows)
    weights = _linupper_weights(per_pair.numpy(), 0.5)
    assert not np.allclose(weights, 0.25)  # the losses differ, so the weights must too
    # the weights are computed in float32 (they are gathered across ranks as float32 rows): 1e-6 relative
    assert float(loss) == pytest.approx(float((weights * per_pair.numpy()).sum()), rel=1e-6)
    single = [_loss_and_grad(plain, [i]) for i in rows]
    torch.testing.assert_close(torch.stack([s[0] for s in single]), per_pair, rtol=1e-10, atol=1e-12)
    expected = sum(w * s[2] for w, s in zip(weights, single))
    torch.testing.assert_close(grad, expected, rtol=1e-6, atol=1e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("method,example", PREFERENCE[:1])
def test_uniform_reweighting_is_the_mean(tmp_path, method, example):
    uniform = _trainer(tmp_path / "u", method, example, loss_reduction="reweight", reweight_strategy="uniform")
    plain = _trainer(tmp_path / "m", method, example)
    a, b = _loss_and_grad(uniform, [0, 1, 2, 3]), _loss_and_grad(plain, [0, 1, 2, 3])
    assert float(a[0]) == pytest.approx(float(b[0]), rel=1e-12)
    torch.testing.assert_close(a[2], b[2], rtol=1e-10, atol=1e-14)


def test_evaluation_loss_is_the_plain_mean(tmp_path):
    trainer = _trainer(tmp_path, "rdpo", next(iter(METHODS["rdpo"].examples)), loss_reduction="reweight")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    trainer.model.eval()
    with torch.no_grad():
        loss, out = trainer.compute_loss(trainer.model, batch, return_outputs=True)
    assert float(loss) == pytest.approx(float(out["losses"].mean()), rel=1e-12)


@pytest.mark.parametrize("field,value,message", [
    ("loss_reduction", "sum", "loss_reduction must be one of"),
    ("reweight_temperature", -1.0, "reweight_temperature"),
    ("reweight_temperature", math.nan, "reweight_temperature"),
    ("reweight_strategy", "linuper", "reweight strategy must be one of"),
])
def test_bad_reduction_settings_name_the_field(tmp_path, field, value, message):
    config_cls, _ = METHODS["rpo"].load()
    with pytest.raises(ValueError, match=message):
        config_cls(output_dir=str(tmp_path), report_to=[], **{"loss_reduction": "reweight", field: value})
