"""Subprocess side of the contract battery: imports once, runs every case it is given, writes JSON.

    python tests/contract/contract_worker.py resume CASES.json OUT      # SIGKILL mid-run, resume, and uninterrupted
    <launcher> tests/contract/contract_worker.py distributed CASES.json OUT   # one job of N processes

resume: for each case a forked child trains with a checkpoint every step and SIGKILLs itself during the last
step (no cleanup, no final save, like an OOM kill); this process then resumes from the newest checkpoint.
The test compares with the uninterrupted run it made itself. Forking is safe because this process keeps one
intra-op thread (no OpenMP pool to inherit).
distributed: every process trains each case with the per-device batch split so that the global batch is
the one-process batch; rank 0 writes the results.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

import contract_cases as cc  # noqa: E402


class KillDuringStep(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def resume(cases: list[cc.Case], out: Path) -> None:
    torch.set_num_threads(1)
    results = {}
    for case in cases:
        folder = out / case.id
        settings = dict(save_strategy="steps", save_steps=1)
        pid = os.fork()
        if pid == 0:  # child: train until the kill
            try:
                trainer = cc.build(case, folder, **settings)
                trainer.add_callback(KillDuringStep(cc.STEPS - 1))
                trainer.train()
            finally:
                os._exit(3)  # only reached if the kill did not happen
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        checkpoints = sorted(p.name for p in folder.glob("checkpoint-*"))
        resumed = cc.train_result(cc.build(case, folder, **settings), resume=True)
        results[case.id] = {"killed_by_sigkill": killed, "resumed": resumed, "checkpoints": checkpoints}
    (out / "resume.json").write_text(json.dumps(results))


def distributed(cases: list[cc.Case], out: Path) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    results = {}
    for case in cases:
        trainer = cc.build(case, out / case.id, per_device_train_batch_size=cc.BATCH // world)
        result = cc.train_result(trainer)
        result["world_size"] = trainer.accelerator.num_processes
        results[case.id] = result
        trainer.accelerator.wait_for_everyone()
    if int(os.environ.get("RANK", "0")) == 0:
        (out / f"distributed_{world}.json").write_text(json.dumps(results))
    torch.distributed.barrier() if torch.distributed.is_initialized() else None


def main() -> None:
    mode, cases_file, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    cases = [cc.Case(**c) for c in json.loads(cases_file.read_text())]
    out.mkdir(parents=True, exist_ok=True)
    {"resume": resume, "distributed": distributed}[mode](cases, out)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
