"""Two CPU processes (gloo, launched as `accelerate launch -m fairalign.eval run`) give the numbers of one:
the parallel tasks split generation, scoring and perplexity by global batch and gather on process 0. Both
sides run as subprocesses with one thread each, so no kernel sees a different thread count."""
import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

from suite_helpers import write_prompts

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "TOKENIZERS_PARALLELISM": "false", "ACCELERATE_USE_CPU": "true"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(config, out, processes: int, log):
    run = ["-m", "fairalign.eval", "run", "--config", str(config), "--out", str(out), "--no-progress"]
    if processes == 1:
        command = [sys.executable, *run]
    else:  # the torchrun-based launcher: `--cpu` alone starts one process in accelerate 1.x without MPI
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(_free_port()), *run]
    with open(log, "w") as sink:
        done = subprocess.run(command, env=ENV, stdout=sink, stderr=subprocess.STDOUT, timeout=400)
    assert done.returncode == 0, log.read_text()[-4000:]
    return json.loads((out / "results.json").read_text())


def _numbers(results) -> dict:
    out = {}
    for system in results["systems"]:
        for task, entry in system["tasks"].items():
            record = json.loads((results_dir(results) / entry["file"]).read_text())
            out[f"{system['name']}/{task}"] = {k: record[k] for k in ("metrics", "units", "details")}
    return out


def results_dir(results):
    from pathlib import Path

    return Path(results["out_dir"])


@pytest.mark.slow
def test_two_processes_give_the_numbers_of_one(tmp_path, tiny_files):
    config = tmp_path / "suite.yaml"
    config.write_text(yaml.safe_dump({
        "systems": [{"name": "base", "model": tiny_files["model"]}], "tasks": ["toxicity"], "num_resamples": 50,
        "batch_size": 2, "device": "cpu",
        "toxicity": {"prompts": write_prompts(tmp_path / "prompts.jsonl"), "num_samples": 2, "max_new_tokens": 4,
                     "scorer": "profanity", "ppl_model": tiny_files["model"], "ppl_batch_size": 4,
                     "group_by": ["kind"]},
    }))
    one = _run(config, tmp_path / "one", 1, tmp_path / "one.log")
    two = _run(config, tmp_path / "two", 2, tmp_path / "two.log")
    assert _numbers(two) == _numbers(one)
    # each process generated its own batches (0 and 2 on process 0, 1 on process 1), into its own cache
    cache = sorted(p.name for p in (tmp_path / "two").rglob("generations*.jsonl"))
    assert cache == ["generations.rank0of2.jsonl", "generations.rank1of2.jsonl"], cache
    # resuming per shard: with the finished result gone, a rerun rebuilds it from the shards' caches alone
    files = {p: p.read_bytes() for p in (tmp_path / "two").rglob("cache/*/*.jsonl")}
    (tmp_path / "two" / "systems" / "base" / "toxicity.json").unlink()
    again = _run(config, tmp_path / "two", 2, tmp_path / "again.log")
    assert {p: p.read_bytes() for p in files} == files
    assert _numbers(again) == _numbers(one)
