"""Two CPU processes with half the batch each compute exactly the weights (and the update) one process
computes for the whole batch: the gather uses the global rank, and the loss is scaled for DDP's averaging."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fairalign.align.reweighting import Gathered, gather_rows  # noqa: E402


def test_gather_without_process_group_is_identity():
    rows = torch.randn(5, 2)
    g = gather_rows(rows)
    assert isinstance(g, Gathered) and g.start == 0 and g.world_size == 1
    torch.testing.assert_close(g.values, rows)
    torch.testing.assert_close(g.local(g.values, 5), rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    from reweighting_ddp_script import run

    # `accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x unless MPI is set up
    # (--mpirun_hostfile); the torchrun-based launcher with ACCELERATE_USE_CPU starts two CPU (gloo) processes.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "WANDB_DISABLED": "true", "ACCELERATE_USE_CPU": "true"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(HERE / "reweighting_ddp_script.py"), "--out", str(tmp_path / "ddp"), "--batch", "2", "--accumulation", "2",
    ]
    log = tmp_path / "launch.log"
    with open(log, "w") as sink:
        launched = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:  # the single-process reference (no process group) runs here meanwhile
            reference = torch.load(run(tmp_path / "single", batch=8, accumulation=1), weights_only=False)
            launched.wait(timeout=300)
        finally:
            if launched.poll() is None:
                launched.kill()
    assert launched.returncode == 0, log.read_text()[-5000:]
    assert reference["world_size"] == 1 and len(reference["weights"]) == 8
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]

    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    assert [r["process_index"] for r in ranks] == [0, 1]
    # each process weighted its own half (2 micro-batches of 2), with weights normalised over all 8 samples
    assert all(len(r["weights"]) == 4 for r in ranks)
    assert set(ranks[0]["weights"]).isdisjoint(ranks[1]["weights"])
    merged = {**ranks[0]["weights"], **ranks[1]["weights"]}
    assert set(merged) == set(reference["weights"])
    for key, weight in reference["weights"].items():
        assert merged[key] == pytest.approx(weight, rel=1e-5, abs=1e-7)
    assert sum(merged.values()) == pytest.approx(1.0, abs=1e-6)
    # DDP averaging of world_size * sum_local w l gives the single-process update
    for r in ranks:
        torch.testing.assert_close(r["params"], reference["params"], rtol=1e-5, atol=1e-6)
    # uneven gather: rank 0 sends 3 rows, rank 1 sends 5; offsets come from the global rank
    expected = torch.cat([torch.arange(3.0), torch.arange(5.0) + 100])
    for r in ranks:
        torch.testing.assert_close(r["uneven_values"], expected)
        assert r["uneven_world"] == 2
    assert [r["uneven_start"] for r in ranks] == [0, 3]
    # reweight_losses: same weights as one process over all 8 pairs; DDP's mean of the rank losses (and of
    # their gradients) is the single-process loss (and gradient)
    torch.testing.assert_close(torch.cat([r["pair_weights"] for r in ranks]), reference["pair_weights"])
    assert float(sum(r["pair_loss"] for r in ranks) / 2) == pytest.approx(float(reference["pair_loss"]), rel=1e-6)
    torch.testing.assert_close(torch.cat([r["pair_grad"] for r in ranks]) / 2, reference["pair_grad"])
    assert ranks[0]["pair_entropy"] == pytest.approx(reference["pair_entropy"], rel=1e-6)
