"""One ReweightingTrainer step, run by test_reweighting_distributed.py under
`accelerate launch --cpu --num_processes 2 reweighting_ddp_script.py --out DIR --batch 2 --accumulation 2`
(and in-process with batch 8 as the single-process reference).

Writes DIR/rank<global rank>.pt: the global rank and world size, {sample tokens: weight} for the samples this
process holds, the parameters after the step, a gather_rows check with uneven sizes (rank r sends 3 + 2r rows),
and reweight_losses on this rank's share of 8 fixed per-pair losses.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reweighting_helpers import flat_params, train_once  # noqa: E402

PAIR_LOSSES = torch.tensor([0.7, -1.3, 0.2, 2.4, -0.4, 0.9, -2.2, 1.1])


def run(out_dir, batch: int, accumulation: int, strategy: str = "linupper", temperature: float = 0.5) -> Path:
    import torch.distributed as dist

    from fairalign.align.reweighting import gather_rows, reweight_losses

    out_dir = Path(out_dir)
    trainer = train_once(out_dir / "trainer", batch, accumulation, reweight_strategy=strategy,
                         reweight_temperature=temperature)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    uneven = gather_rows(torch.arange(3 + 2 * rank, dtype=torch.float32) + 100 * rank)
    # reweight_losses on per-pair preference losses (some negative), split evenly over the ranks
    pairs = PAIR_LOSSES.chunk(world)[rank].clone().requires_grad_(True)
    pair_loss, pair_weights, pair_stats = reweight_losses(pairs, "linupper", 0.5)
    (pair_grad,) = torch.autograd.grad(pair_loss, pairs)
    record = {
        "rank": rank, "world_size": world, "process_index": trainer.args.process_index,
        "weights": trainer.captured, "params": flat_params(trainer.model),
        "uneven_values": uneven.values, "uneven_start": uneven.start, "uneven_world": uneven.world_size,
        "pair_loss": pair_loss.detach(), "pair_weights": pair_weights, "pair_grad": pair_grad,
        "pair_entropy": pair_stats["weight_entropy"],
    }
    path = out_dir / f"rank{rank}.pt"
    torch.save(record, path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--accumulation", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run(args.out, args.batch, args.accumulation)
    import torch.distributed as dist

    if dist.is_initialized():  # tear the gloo group down on every rank together; exiting with it up can SIGABRT
        dist.barrier()
        dist.destroy_process_group()
