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


def run(processes: int, args, out: Path, threads: int | None = None) -> float:
    threads = threads or max(1, (os.cpu_count() or 1) // processes)
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
    p.add_argument("--repeats", type=int, default=1, help="alternate the runs this many times (noisy machines)")
    args = p.parse_args()
    args.set = args.set or ["toxicity.prompts=demo", "toxicity.limit=16", "toxicity.num_samples=4",
                            "toxicity.max_new_tokens=16", "toxicity.scorer=profanity", "toxicity.ppl_model=none"]
    cores = os.cpu_count() or 1
    sides = {f"1 process x {cores} threads": (1, cores), "1 process x 1 thread": (1, 1),
             f"{args.processes} processes x {max(1, cores // args.processes)} thread(s)": (args.processes, None)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # interleaved, so a slow spell of a shared machine hits every side
            for i, (name, (processes, threads)) in enumerate(sides.items()):
                out = Path(tmp) / f"{r}-{i}"
                times[name].append(run(processes, args, out, threads))
                found[name] = numbers(out)
    same = len({json.dumps(v, sort_keys=True) for v in found.values()}) == 1
    print(f"model {args.model}, tasks {args.tasks}, settings {args.set}, {cores} cores, {args.repeats} repeat(s)")
    base = min(times[next(iter(sides))])
    for name, ts in times.items():
        print(f"{name:<28} best {min(ts):7.1f} s  (all: {', '.join(f'{t:.1f}' for t in ts)})  "
              f"speed-up vs the first line {base / min(ts):.2f}x")
    print(f"identical numbers on every side: {same}")


if __name__ == "__main__":
    main()
