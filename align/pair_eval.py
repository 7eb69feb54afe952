"""Score preference pairs with a policy and its reference: does the model prefer the chosen completion?

Used by the main job to report before/after numbers on held-out pairs:
- `logp_accuracy`: share of pairs with log pi(chosen) > log pi(rejected) (summed log-probs), for the base
  model (before) and the tuned one (after);
- `reward_accuracy` / `reward_margin`: DPO's implicit reward beta * [(lw - rw) - (ll - rl)] of the tuned
  model against its reference (0 before training by construction).
"""
from __future__ import annotations

import torch

from fairalign.align.logprobs import completion_logps


@torch.no_grad()
def score_pairs(trainer, dataset=None, batch_size: int = 8) -> dict:
    """Evaluate a fairalign PreferenceTrainer's policy and reference on a tokenised dataset (default: its
    eval_dataset). Returns per-pair arrays and summary numbers."""
    dataset = dataset if dataset is not None else trainer.eval_dataset
    model = trainer.model
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pol, ref = [], []
    try:
        for start in range(0, len(dataset), batch_size):
            batch = trainer.data_collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            shape = batch["completion_lengths"].shape
            pol.append(completion_logps(model, batch, *shape)[0][:, :2].float().cpu())
            with trainer._reference_context() as ref_model:
                ref.append(completion_logps(ref_model or model, batch, *shape)[0][:, :2].float().cpu())
    finally:
        model.train(was_training)
    pol, ref = torch.cat(pol), torch.cat(ref)
    margin = trainer.beta * ((pol[:, 0] - ref[:, 0]) - (pol[:, 1] - ref[:, 1]))
    return {
        "num_pairs": len(pol),
        "logp_accuracy_before": float((ref[:, 0] > ref[:, 1]).float().mean()),
        "logp_accuracy_after": float((pol[:, 0] > pol[:, 1]).float().mean()),
        "reward_accuracy": float((margin > 0).float().mean()),
        "reward_margin": float(margin.mean()),
    }
