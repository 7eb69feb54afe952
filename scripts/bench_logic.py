"""Benchmark: compiled logic losses vs the hand-written DPO loss, alone and inside a training step.

    python scripts/bench_logic.py --quick                       # CPU, seconds: tiny model, fewer repeats
    python scripts/bench_logic.py --device cuda --out logic.json  # GPU: bf16 log-probs, SmolLM2-135M-sized model

Part 1, the loss alone: forward + backward of the per-example loss for batch sizes 1..1024, on random
sequence log-probs, for the hand-written `fairalign.align.losses.dpo_loss` (the peer) and compiled structures
(`dpo`, `orpo`, `novel_ref`, and `uncpo` with the flip-rate correction, which has to evaluate the swapped
structure too). Median of many calls; ratio = compiled / hand-written.

Part 2, inside a step: the same trainer base (PreferenceTrainer) with its loss from `dpo_loss` (peer) or from
the compiled `dpo` structure (LogicDPATrainer). Both run in this process, alternated, on a randomly
initialised Llama (--quick: 2 layers, hidden 64, the worst case for the loss share; otherwise SmolLM2-135M
sizes; weights do not change speed). Reports seconds per step, the ratio, and the share of the step spent in
`pair_losses` (forward only; its backward is in part 1).

Memory: CUDA torch.cuda.max_memory_allocated per variant; CPU the process's peak RSS (only grows).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

BATCH_SIZES = (1, 4, 16, 64, 256, 1024)
VARIANTS = ("dpo_loss (hand-written)", "dpo", "orpo", "novel_ref", "uncpo+flip")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="tiny model, fewer repeats (CPU, ~1 minute)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per loss variant and batch size")
    p.add_argument("--steps", type=int, default=None, help="timed training steps per trainer (after warm-up)")
    p.add_argument("--skip-trainer", action="store_true", help="only part 1")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default 1 on CPU: on a shared machine more threads mostly add waiting)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def loss_fns(device: str):
    """name -> f(lw, ll, rw, rl, lengths) returning (B,) losses."""
    from fairalign.align.logic import STRUCTURES
    from fairalign.align.losses import dpo_loss

    beta = 0.1
    S = STRUCTURES
    return {
        "dpo_loss (hand-written)": lambda lw, ll, rw, rl, n: dpo_loss(lw, ll, rw, rl, beta),
        "dpo": lambda lw, ll, rw, rl, n: S["dpo"].loss(lw, ll, rw, rl, beta=beta),
        "orpo": lambda lw, ll, rw, rl, n: S["orpo"].loss(lw / n, ll / n, beta=beta),
        "novel_ref": lambda lw, ll, rw, rl, n: S["novel_ref"].loss(lw / n, ll / n, rw / n, rl / n, beta=beta),
        "uncpo+flip": lambda lw, ll, rw, rl, n: S["uncpo"].loss(lw / n, ll / n, beta=beta, flip_rate=0.1),
    }


def bench_losses(device: str, repeats: int) -> dict:
    """Median seconds per forward+backward call, per variant and batch size."""
    import torch

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    fns = loss_fns(device)
    out = {}
    for b in BATCH_SIZES:
        g = torch.Generator().manual_seed(b)
        base = [-(torch.rand(b, generator=g) * 200 + 5) for _ in range(4)]
        lengths = torch.randint(20, 200, (b,), generator=g).float().to(device)
        row = {}
        for name, fn in fns.items():
            times = []
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            for i in range(repeats + 5):
                lw, ll, rw, rl = (t.to(device=device, dtype=dtype).requires_grad_(k < 2) for k, t in enumerate(base))
                _sync(device)
                t0 = time.perf_counter()
                fn(lw, ll, rw, rl, lengths).mean().backward()
                _sync(device)
                if i >= 5:  # warm-up
                    times.append(time.perf_counter() - t0)
            row[name] = {"median_s": statistics.median(times), "peak_mem_mb": _peak_memory_mb(device)}
        ref = row["dpo_loss (hand-written)"]["median_s"]
        for r in row.values():
            r["ratio_vs_dpo_loss"] = r["median_s"] / ref
        out[b] = row
        print(f"B={b:<5} " + "  ".join(f"{n.split(' ')[0]} {r['median_s'] * 1e6:7.1f}us ({r['ratio_vs_dpo_loss']:.2f}x)"
                                       for n, r in row.items()), flush=True)
    return out


def _trainers(device: str, quick: bool, steps: int, batch: int):
    """(name, build) pairs: the peer trainer (dpo_loss) and LogicDPATrainer(structure='dpo') on one base."""
    import copy

    import datasets
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback

    from fairalign.align.logic import LogicDPAConfig, LogicDPATrainer
    from fairalign.align.losses import dpo_loss
    from fairalign.align.preference import PreferenceConfig, PreferenceTrainer
    from fairalign.align.testing import tiny_tokenizer

    cuda = device.startswith("cuda")
    tok = tiny_tokenizer()
    size = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=len(tok)) if quick else \
        dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
             num_key_value_heads=3, vocab_size=49152)  # SmolLM2-135M
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**size, max_position_embeddings=2048, pad_token_id=size["vocab_size"] - 1))
    words = "the people work hard every day in many jobs and deserve respect doctors nurses engineers".split()
    import random

    rng = random.Random(0)
    text = lambda k: " ".join(rng.choice(words) for _ in range(k))  # noqa: E731
    n_words = 24 if quick else 128
    rows = [{"prompt": text(n_words) + "?", "chosen": " " + text(n_words) + ".", "rejected": " " + text(n_words) + "!"}
            for _ in range(batch * (steps + 2))]
    ds = datasets.Dataset.from_list(rows)
    common = dict(per_device_train_batch_size=batch, max_steps=steps + 2, learning_rate=1e-5, report_to=[],
                  logging_steps=10_000, save_strategy="no", bf16=cuda, seed=0, beta=0.1, max_length=4096,
                  use_cpu=not cuda, dataloader_num_workers=0, disable_tqdm=True)

    class PeerDPOTrainer(PreferenceTrainer):
        def pair_losses(self, logps):
            return dpo_loss(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected, self.beta)

    def timed(cls):
        class Timed(cls):
            loss_times: list

            def pair_losses(self, logps):
                _sync(device)
                t0 = time.perf_counter()
                out = super().pair_losses(logps)
                _sync(device)
                self.loss_times.append(time.perf_counter() - t0)
                return out

        return Timed

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_begin(self, *a, **k):
            _sync(device)
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            _sync(device)
            self.times.append(time.perf_counter() - self.t0)

    def build(name):
        timer = StepTimer()
        policy, ref = copy.deepcopy(model).to(device), copy.deepcopy(model).to(device)
        if name == "peer":
            trainer = timed(PeerDPOTrainer)(policy, ref_model=ref, processing_class=tok, train_dataset=ds,
                                            args=PreferenceConfig(output_dir="/tmp/bench_logic_peer", **common),
                                            callbacks=[timer])
        else:
            trainer = timed(LogicDPATrainer)(policy, ref_model=ref, processing_class=tok, train_dataset=ds,
                                             args=LogicDPAConfig(structure="dpo", output_dir="/tmp/bench_logic_ours",
                                                                 **common), callbacks=[timer])
        trainer.loss_times = []
        return trainer, timer

    return build, size


def bench_trainer(device: str, quick: bool, steps: int, rounds: int = 2) -> dict:
    """Alternate peer / ours `rounds` times; median step time over all timed steps of each."""
    import torch

    batch = 4 if quick or not device.startswith("cuda") else 8
    build, size = _trainers(device, quick, steps, batch)
    times = {"peer": [], "ours": []}
    loss_times = {"peer": [], "ours": []}
    peak = {}
    for _ in range(rounds):
        for name in ("peer", "ours"):
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            trainer, timer = build(name)
            trainer.train()
            times[name] += timer.times[2:]
            loss_times[name] += trainer.loss_times[2:]
            peak[name] = _peak_memory_mb(device)
            del trainer
    out = {"model": size, "batch": batch, "steps_per_round": steps, "rounds": rounds}
    for name in times:
        step, loss = statistics.median(times[name]), statistics.median(loss_times[name])
        out[name] = {"step_s": step, "pair_losses_s": loss, "loss_share": loss / step, "peak_mem_mb": peak[name]}
    out["step_ratio_ours_vs_peer"] = out["ours"]["step_s"] / out["peer"]["step_s"]
    for name in ("peer", "ours"):
        r = out[name]
        print(f"{name:5s} {r['step_s'] * 1e3:8.1f} ms/step  pair_losses {r['pair_losses_s'] * 1e6:7.1f} us "
              f"({100 * r['loss_share']:.3f}% of the step)  peak {r['peak_mem_mb']:.0f} MB", flush=True)
    print(f"step time ours / peer = {out['step_ratio_ours_vs_peer']:.3f}", flush=True)
    return out


def main(args) -> int:
    import os

    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_logic: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    if not args.device.startswith("cuda"):
        torch.set_num_threads(args.threads or 1)
    repeats = args.repeats or (50 if args.quick else 300)
    steps = args.steps or (6 if args.quick else 10)
    print(f"part 1: loss alone, forward+backward, median of {repeats} calls (device {args.device})")
    result = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "losses": bench_losses(args.device, repeats)}
    if not args.skip_trainer:
        print("part 2: inside a training step (same PreferenceTrainer base; loss from dpo_loss vs compiled 'dpo')")
        result["trainer"] = bench_trainer(args.device, args.quick, steps)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(make_parser().parse_args()))
