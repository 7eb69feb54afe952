"""Benchmark: the evaluation pipeline in one process vs N processes (gloo on CPU, or one GPU each), same task,
same settings, same numbers. Prints the wall times, the speed-up and whether the results are identical.

    python scripts/bench_eval_parallel.py                                   # SmolLM2, toxicity on the demo prompts
    python scripts/bench_eval_parallel.py --processes 2 --tasks toxicity,counterfactual --set toxicity.num_samples=4

Each side runs `python -m fairalign.eval run` in a subprocess (the N-process side under `accelerate launch`),
from an empty output folder, with the threads split evenly (OMP_NUM_THREADS = cores / N), so the comparison is
like for like: the same cores, the same batches, the same seeds.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(processes: int, args, out: Path) -> float:
    threads = max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(threads), "ACCELERATE_USE_CPU": "true" if args.device == "cpu" else ""}
    cmd = ["-m", "fairalign.eval", "run", "--model", args.model, "--tasks", args.tasks, "--out", str(out),
           "--device", args.device, "--batch-size", str(args.batch_size), "--no-progress",
           *[x for s in args.set for x in ("--set", s)]]
    if processes > 1:
        cmd = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *cmd]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *cmd], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{processes} process(es) failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def numbers(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {f"{s['name']}/{t}": e["metrics"] for s in results["systems"] for t, e in s["tasks"].items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--tasks", default="toxicity")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--set", action="append", default=None, metavar="TASK.SETTING=VALUE")
    args = p.parse_args()
    args.set = args.set or ["toxicity.prompts=demo", "toxicity.limit=16", "toxicity.num_samples=4",
                            "toxicity.max_new_tokens=16", "toxicity.scorer=profanity", "toxicity.ppl_model=none"]
    with tempfile.TemporaryDirectory() as tmp:
        one = run(1, args, Path(tmp) / "one")
        many = run(args.processes, args, Path(tmp) / "many")
        same = numbers(Path(tmp) / "one") == numbers(Path(tmp) / "many")
    print(f"model {args.model}, tasks {args.tasks}, settings {args.set}, {os.cpu_count()} cores")
    print(f"1 process: {one:.1f} s   {args.processes} processes: {many:.1f} s   speed-up {one / many:.2f}x   "
          f"identical numbers: {same}")


if __name__ == "__main__":
    main()
