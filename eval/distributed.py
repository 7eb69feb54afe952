"""Data-parallel evaluation: which process am I, and how the processes exchange results.

Under `accelerate launch` (or torchrun) every process runs the whole command; work is split by *global batch
index* (batch j goes to process j % world_size), so each batch holds the same items, with the same seed, as in
a one-process run, and the gathered results equal it. Without a launcher, `Dist()` is one process and every
method is a no-op, so code written for many processes runs unchanged in one.

    dist = Dist.from_environment()
    mine = [b for b in range(num_batches) if dist.owns(b)]
    everything = dist.gather_dict({b: compute(b) for b in mine})   # every process gets every batch
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_environment(cls) -> "Dist":
        """One process unless WORLD_SIZE > 1; then the torch.distributed group is joined (gloo on CPU, nccl on
        CUDA), as `accelerate launch` and `torchrun` expect."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch
        import torch.distributed as td

        if not td.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            # Hours, not torch's 30-minute default: processes wait at a barrier while process 0 alone runs a task
            # that does not shard (a 7B model's occupation run can take longer than that).
            td.init_process_group(backend=backend, timeout=datetime.timedelta(hours=12))
        return cls(td.get_rank(), td.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, batch_index: int) -> bool:
        return batch_index % self.world_size == self.rank

    def shard_suffix(self) -> str:
        """'' in one process; '.rank1of2' etc. otherwise: per-process cache files (each resumes its own shard)."""
        return "" if self.world_size == 1 else f".rank{self.rank}of{self.world_size}"

    def gather_dict(self, mine: dict) -> dict:
        """The union of every process's dict (keys must not overlap), on every process."""
        if self.world_size == 1:
            return dict(mine)
        import torch.distributed as td

        parts: list = [None] * self.world_size
        td.all_gather_object(parts, mine)
        out: dict = {}
        for part in parts:
            clash = set(out) & set(part)
            if clash:
                raise RuntimeError(f"two processes computed the same batches {sorted(clash)[:5]}: shards overlap")
            out.update(part)
        return out

    def broadcast(self, value):
        """Process 0's value, on every process (a decision all must share, e.g. whether a result is reusable)."""
        if self.world_size == 1:
            return value
        import torch.distributed as td

        box = [value]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as td

            td.barrier()
