"""Our preference trainers vs TRL's DPOTrainer: same model, data, batch and optimizer.

    python scripts/bench_trainers.py --quick                      # CPU, SmolLM2, LoRA, ~5 min
    python scripts/bench_trainers.py --device cuda --mode full    # GPU, full fine-tune, bf16
    python scripts/bench_trainers.py --model tiny --quick         # seconds, smoke test

Each variant runs in a fresh child process (so peak memory is its own: on CUDA
torch.cuda.max_memory_allocated, on CPU the process's peak RSS and its growth after set-up), times steps after
warm-up, and reports seconds per step, tokens/s (tokens of the prompt+chosen and prompt+rejected sequences,
the same count for every variant) and the ratios ours / TRL. Variants:
  trl        trl.DPOTrainer(loss_type=["robust"], label_smoothing=eps)
  ours       fairalign RobustDPOTrainer(flip_rate=eps) (prompt encoded once, completion-only LM head)
  ours_pre   the same with precompute_ref_log_probs=True (reference pass before training, reported separately)
  <any>_compile  the variant with torch_compile=True (TrainingArguments' flag; compile time is in setup, not timed)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORDS = ("the people work hard every day in many different jobs and they deserve respect from everyone "
         "doctors nurses engineers teachers pilots cooks lawyers farmers artists drivers build help learn "
         "write read think talk about world city country family friend history science music weather").split()


def make_rows(n, prompt_words, completion_words, seed=0):
    import random

    rng = random.Random(seed)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))
    return [{"prompt": text(prompt_words) + "?", "chosen": " " + text(completion_words) + ".",
             "rejected": " " + text(completion_words) + "!"} for _ in range(n)]


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2", help="'smollm2' (embedded), 'tiny', a Hub id or a path")
    p.add_argument("--random_init", action="store_true",
                   help="--model is a directory with config.json + tokenizer only: random weights of that architecture "
                        "(speed and memory do not depend on the weights; lets a GPU box without the weights run it)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--mode", default="lora", choices=["lora", "full"])
    p.add_argument("--batch", type=int, default=None, help="pairs per step (default 4 CPU, 8 CUDA)")
    p.add_argument("--prompt_words", type=int, default=None)
    p.add_argument("--completion_words", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="timed steps (after 2 warm-up steps)")
    p.add_argument("--variants", default="trl,ours,ours_pre")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--profile", action="store_true", help="print each variant's top kernels (torch.profiler) to stderr")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _proc_status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MB: VmRSS (now) or VmHWM (peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(args) -> dict:
    import datasets
    import torch
    from transformers import TrainerCallback

    cuda = args.device == "cuda"
    if args.model == "tiny":
        from fairalign.align.testing import tiny_llama, tiny_tokenizer

        model, tok = tiny_llama(hidden_size=64), tiny_tokenizer()
    elif args.random_init:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.model), dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(args.model)
    else:
        from fairalign.align.modeling import load_model_and_tokenizer

        model, tok = load_model_and_tokenizer(args.model, dtype="float32", device="cpu")
    rows = make_rows(args.batch * (args.steps + 2), args.prompt_words, args.completion_words)
    ds = datasets.Dataset.from_list(rows)
    variant = args.worker.removesuffix("_compile")
    common = dict(output_dir=f"/tmp/bench_{args.worker}", torch_compile=args.worker.endswith("_compile"), per_device_train_batch_size=args.batch,
                  max_steps=args.steps + 2, learning_rate=1e-5, report_to=[], logging_steps=1000, save_strategy="no",
                  bf16=cuda, gradient_checkpointing=False, seed=0, beta=0.1, max_length=4096,
                  use_cpu=not cuda, dataloader_num_workers=0, disable_tqdm=True)
    peft_config = None
    if args.mode == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    ref = None
    if args.mode == "full" and variant != "ours_pre":
        import copy

        ref = copy.deepcopy(model)
    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    if cuda:
        model, ref = model.cuda(), (ref.cuda() if ref is not None else None)
        torch.cuda.reset_peak_memory_stats()
    base_rss = _proc_status_mb("VmRSS")
    t_setup = time.perf_counter()
    if variant == "trl":
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model, ref_model=ref, args=DPOConfig(loss_type=["robust"], label_smoothing=0.1, **common),
                             train_dataset=ds, processing_class=tok, peft_config=peft_config, callbacks=[Timer()])
    else:
        from fairalign.align.rdpo import RobustDPOConfig, RobustDPOTrainer

        pre = variant == "ours_pre"
        trainer = RobustDPOTrainer(model, ref_model=ref, args=RobustDPOConfig(flip_rate=0.1, precompute_ref_log_probs=pre, **common),
                                   train_dataset=ds, processing_class=tok, peft_config=peft_config, callbacks=[Timer()])
    setup_s = time.perf_counter() - t_setup
    tokens = sum(2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in trainer.train_dataset)
    tokens_per_step = tokens / len(trainer.train_dataset) * args.batch
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            trainer.train()
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(f"== profile {args.worker}\n" + prof.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=60),
              file=sys.stderr, flush=True)
    else:
        trainer.train()
    timed = times[2:]
    step_s = sum(timed) / len(timed)
    result = {
        "variant": args.worker, "step_s": step_s, "tokens_per_step": tokens_per_step, "tokens_per_s": tokens_per_step / step_s,
        "setup_s": setup_s, "final_loss": trainer.state.log_history[-1].get("train_loss"),
    }
    if cuda:
        result["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result["peak_rss_mb"] = _proc_status_mb("VmHWM")
        result["rss_growth_mb"] = result["peak_rss_mb"] - base_rss
    return result


def main(args) -> int:
    cuda = args.device == "cuda"
    args.batch = args.batch or (8 if cuda else 4)
    args.prompt_words = args.prompt_words or (256 if cuda else (48 if args.quick else 128))
    args.completion_words = args.completion_words or (256 if cuda else (48 if args.quick else 128))
    args.steps = args.steps or (10 if cuda else (3 if args.quick else 6))
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0
    results = {}
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "--worker", variant] + [
            x for k, v in vars(args).items() if k not in ("worker", "out", "variants", "quick") and v not in (None, False)
            for x in ((f"--{k}",) if v is True else (f"--{k}", str(v)))]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{variant} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        if args.profile:
            print(proc.stderr[proc.stderr.find("== profile"):], file=sys.stderr)
        results[variant] = json.loads(line[0][7:])
        r = results[variant]
        mem = r.get("peak_mem_mb", r.get("peak_rss_mb"))
        print(f"{variant:9s} {r['step_s']:.3f} s/step  {r['tokens_per_s']:9.0f} tok/s  peak {mem:8.0f} MB"
              + (f"  (growth {r['rss_growth_mb']:.0f} MB)" if "rss_growth_mb" in r else ""), flush=True)
    if "trl" in results:
        key = "peak_mem_mb" if cuda else "peak_rss_mb"
        for v in results:
            if v == "trl":
                continue
            r, t = results[v], results["trl"]
            r["speedup_vs_trl"] = r["tokens_per_s"] / t["tokens_per_s"]
            r["memory_ratio_vs_trl"] = r[key] / t[key]
            if not cuda:
                r["memory_growth_ratio_vs_trl"] = r["rss_growth_mb"] / max(t["rss_growth_mb"], 1e-9)
            print(f"{v}: {r['speedup_vs_trl']:.2f}x TRL tokens/s, peak memory {r['memory_ratio_vs_trl']:.2f}x TRL"
                  + (f" (growth {r['memory_growth_ratio_vs_trl']:.2f}x)" if not cuda else ""))
    summary = {"config": {k: v for k, v in vars(args).items() if k != "worker"}, "results": results}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(make_parser().parse_args()))
