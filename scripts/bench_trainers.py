"""Our preference trainer vs TRL's DPOTrainer, like against like: same model, data, batch, optimizer, loss and options.

    python scripts/bench_trainers.py --quick --steps 8 --repeats 3 --mode lora,full   # CPU, SmolLM2-135M (BENCHMARKS.md)
    python scripts/bench_trainers.py --device cuda --mode full,lora                    # GPU, bf16
    python scripts/bench_trainers.py --model tiny --quick                               # tiny random model: seconds
    python scripts/bench_trainers.py --device cuda --shape llama3-1b --mode full --steps 6   # ~1B, 512+512 tokens

Variants are `<side>[_pre][_compile]`: side `trl` = trl.DPOTrainer(loss_type=["robust"], label_smoothing=EPS),
`ours` = fairalign RobustDPOTrainer(flip_rate=EPS) (the same loss, tests/align/test_trainers.py), `_pre` =
precompute_ref_log_probs=True on that side (one no-grad reference pass over the data before training), `_compile`
= torch_compile=True. Ratios ours / TRL are only formed between runs with the same mode and options, run in the
same repeat (repeats are interleaved, the order reversed every other repeat, to spread the machine's drift).

Each run is a fresh child process, so peak memory is its own: on CUDA torch.cuda.max_memory_allocated, on CPU the
process's peak RSS and its growth from just after the model is loaded (reference copy and precompute included).
The two sides of one options group run at the same time in lockstep: each waits for its turn, so only one computes
at any moment and each TRL step is timed next to an ours step (the parent alternates who goes first). On a shared,
noisy machine this pairs the sides' steps under nearly the same load, and the loop tokens/s ratio is the median
of the paired steps' ratios; --no_lockstep runs the sides one after the other (ratio of the runs' means).
A step is timed from the end of the previous one (data loading and callbacks included); the first WARMUP steps are
left out of the loop tokens/s. End-to-end tokens/s = every pair's tokens / (precompute pass + the whole
trainer.train() call, warm-up included, turn waits excluded). Tokens are those of the two logical sequences
prompt+chosen and prompt+rejected: the same count on both sides. The per-step losses and reward margins of the two
sides are compared (the same loss on the same batches in the same order): a difference beyond the tolerance fails
the run.

--shape builds a model in-process with random weights (scripts/bench_shapes.py: `llama3-1b` = Llama-3.2-1B's
architecture, 4 pairs of 512-token prompts and 512-token answers per step by default; `llama3-tiny` for tests),
rows of exact token lengths. Two 1B trainers do not fit one 80 GB GPU together, so `llama3-1b` on CUDA runs the
sides one after the other (--no_lockstep), and it refuses the CPU unless --allow_slow_cpu.
Every run reports its model FLOPs per token and, where the GPU's peak is known (or --peak_tflops is given), its
MFU of the loop tokens/s; the formula (PaLM's convention, the same for both sides) is in scripts/model_flops.py.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

EPS, BETA = 0.1, 0.1  # rDPO flip rate = TRL's label_smoothing for loss_type "robust"; DPO's beta on both sides
SIDES = ("trl", "ours")
WARMUP = 2
# Largest allowed |loss or margin difference| between the sides, per step: float32 differs only by summation order
# (packed vs padded batches); bf16 autocast rounds each side's activations differently.
LOSS_TOL = {"float32": 1e-3, "bf16": 3e-2}
WORDS = ("the people work hard every day in many different jobs and they deserve respect from everyone "
         "doctors nurses engineers teachers pilots cooks lawyers farmers artists drivers build help learn "
         "write read think talk about world city country family friend history science music weather").split()


def make_rows(n, prompt_words, completion_words, seed=0):
    import random

    rng = random.Random(seed)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))
    return [{"prompt": text(prompt_words) + "?", "chosen": " " + text(completion_words) + ".",
             "rejected": " " + text(completion_words) + "!"} for _ in range(n)]


def parse_variant(name: str) -> tuple[str, bool, bool]:
    """'ours_pre_compile' -> ('ours', precompute=True, compile=True); a ValueError names a bad one."""
    side, *flags = name.split("_")
    if side not in SIDES or len(set(flags)) != len(flags) or not set(flags) <= {"pre", "compile"}:
        raise ValueError(f"--variants: {name!r} is not <trl|ours>[_pre][_compile]")
    return side, "pre" in flags, "compile" in flags


def options_label(mode: str, pre: bool, compiled: bool) -> str:
    return (("LoRA r16" if mode == "lora" else "full") + (", ref. precomputed" if pre else ", ref. each step")
            + (", torch.compile" if compiled else ""))


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="'smollm2' (embedded, the default), 'tiny', a Hub id or a path")
    p.add_argument("--shape", default=None, help="instead of --model: a random-weight shape built in-process, "
                   "'llama3-1b' (Llama-3.2-1B's architecture) or 'llama3-tiny' (see scripts/bench_shapes.py)")
    p.add_argument("--allow_slow_cpu", action="store_true", help="run a large --shape on the CPU anyway (hours)")
    p.add_argument("--peak_tflops", type=float, default=None,
                   help="peak FLOP/s of the device in TFLOP/s for MFU (default: a table of known GPUs by name)")
    p.add_argument("--random_init", action="store_true",
                   help="--model is a directory with config.json + tokenizer only: random weights of that architecture "
                        "(speed and memory do not depend on the weights; lets a GPU box without the weights run it)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--mode", default="lora", help="lora, full, or both: 'lora,full'")
    p.add_argument("--batch", type=int, default=None,
                   help="pairs per step (default 4 CPU, 8 CUDA; a --shape has its own)")
    p.add_argument("--prompt_words", type=int, default=None)
    p.add_argument("--completion_words", type=int, default=None)
    p.add_argument("--prompt_tokens", type=int, default=None, help="with --shape: prompt length in tokens")
    p.add_argument("--completion_tokens", type=int, default=None,
                   help="with --shape: answer length in tokens, EOS included")
    p.add_argument("--steps", type=int, default=None, help=f"timed steps (after {WARMUP} warm-up steps)")
    p.add_argument("--variants", default="trl,ours,trl_pre,ours_pre")
    p.add_argument("--repeats", type=int, default=1, help="runs of every variant, interleaved")
    p.add_argument("--no_lockstep", action="store_true", help="run the two sides one after the other, not in turns")
    p.add_argument("--quick", action="store_true", help="shorter sequences and fewer steps")
    p.add_argument("--profile", action="store_true", help="print each variant's top kernels (torch.profiler) to stderr")
    p.add_argument("--out", default=None, help="write the runs and the comparison as JSON here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--lockstep", action="store_true", help=argparse.SUPPRESS)  # worker: take turns via stdin/stdout
    return p


def resolve_defaults(args):
    cuda = args.device == "cuda"
    if args.shape:
        from fairalign.scripts.bench_shapes import get_shape

        shape = get_shape(args.shape)
        bad = [f"--{k}" for k in ("model", "random_init", "prompt_words", "completion_words") if getattr(args, k)]
        if bad:
            raise ValueError(f"--shape {args.shape} sets the model and the rows: drop {', '.join(bad)} "
                             "(lengths are --prompt_tokens / --completion_tokens)")
        if shape["large"] and not cuda and not args.allow_slow_cpu:
            raise ValueError(f"--shape {args.shape} on the CPU would take hours per step: use --device cuda, "
                             "--shape llama3-tiny for a quick check, or add --allow_slow_cpu")
        if shape["large"] and cuda:
            args.no_lockstep = True  # two trainers of this size at once would not fit one 80 GB GPU
        args.batch = args.batch or shape["batch"]
        args.prompt_tokens = args.prompt_tokens or shape["prompt_tokens"]
        args.completion_tokens = args.completion_tokens or shape["completion_tokens"]
    elif args.prompt_tokens or args.completion_tokens:
        raise ValueError("--prompt_tokens / --completion_tokens need --shape; with --model use --prompt_words")
    else:
        args.model = args.model or "smollm2"
        args.batch = args.batch or (8 if cuda else 4)
        args.prompt_words = args.prompt_words or (256 if cuda else (48 if args.quick else 128))
        args.completion_words = args.completion_words or (256 if cuda else (48 if args.quick else 128))
    if args.peak_tflops is not None and not (math.isfinite(args.peak_tflops) and args.peak_tflops > 0):
        raise ValueError(f"--peak_tflops must be a positive number of TFLOP/s (e.g. 989 for an H100 SXM), "
                         f"got {args.peak_tflops}")
    args.steps = args.steps or (10 if cuda else (3 if args.quick else 6))
    for mode in args.mode.split(","):
        if mode not in ("lora", "full"):
            raise ValueError(f"--mode: {mode!r} is not lora or full")
    for v in args.variants.split(","):
        parse_variant(v)
    return args


def _proc_status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MB: VmRSS (now) or VmHWM (peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


class Turn:
    """Running alone: every turn is ours at once."""

    waited_s = 0.0

    def wait(self):
        pass

    def done(self):
        pass


class StdioTurn(Turn):
    """Lockstep with the parent: a line on stdin starts a turn, TURN_DONE on stdout ends it."""

    def wait(self):
        t = time.perf_counter()
        if not sys.stdin.readline():
            raise SystemExit("bench parent gone")
        self.waited_s += time.perf_counter() - t

    def done(self):
        print("TURN_DONE", flush=True)


def run_variant(args, variant: str, mode: str, turn: Turn | None = None) -> dict:
    """Train one variant in this process and measure it (peak memory is the process's: run each in its own).
    Turns (see StdioTurn): the trainer's set-up, then train() up to the end of step 1, each later step, the end."""
    import datasets
    import torch
    from transformers import TrainerCallback
    from trl import DPOTrainer

    from fairalign.scripts import model_flops

    side, pre, compiled = parse_variant(variant)
    turn = turn or Turn()
    cuda = args.device == "cuda"
    load_avg = os.getloadavg()[0]
    if args.shape:
        from fairalign.scripts.bench_shapes import build_shape

        model, tok = build_shape(args.shape, device="cuda" if cuda else "cpu")
    elif args.model == "tiny":
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
    base_rss = _proc_status_mb("VmRSS")
    n_rows = args.batch * (args.steps + WARMUP)
    if args.shape:
        from fairalign.scripts.bench_shapes import make_token_rows

        rows = make_token_rows(tok, n_rows, args.prompt_tokens, args.completion_tokens)
    else:
        rows = make_rows(n_rows, args.prompt_words, args.completion_words)
    ds = datasets.Dataset.from_list(rows)
    n_params = model_flops.matmul_params(model)  # before LoRA adds its adapters to the modules
    out_dir = tempfile.mkdtemp(prefix=f"bench_{variant}_")
    common = dict(output_dir=out_dir, torch_compile=compiled, per_device_train_batch_size=args.batch,
                  max_steps=args.steps + WARMUP, learning_rate=1e-5, report_to=[], logging_steps=1000, save_strategy="no",
                  bf16=cuda, gradient_checkpointing=False, seed=0, beta=BETA, max_length=4096,
                  precompute_ref_log_probs=pre, use_cpu=not cuda, dataloader_num_workers=0, disable_tqdm=True)
    peft_config = None
    if mode == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    if cuda:
        model = model.cuda()
    ref = None
    if mode == "full" and not pre:  # both sides get the same explicit copy (TRL would reload one from a path)
        import copy

        ref = copy.deepcopy(model)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # Time the reference pass: both trainers run it in __init__ through DPOTrainer._precompute_ref_logps.
    precompute_s = [0.0]
    original = DPOTrainer._precompute_ref_logps

    def timed_precompute(self, *a, **k):
        t = time.perf_counter()
        try:
            return original(self, *a, **k)
        finally:
            if cuda:
                torch.cuda.synchronize()
            precompute_s[0] += time.perf_counter() - t

    DPOTrainer._precompute_ref_logps = timed_precompute
    times, fetch_times, mark = [], [], [0.0]

    class Timer(TrainerCallback):
        """A step's time runs from the end of the previous one (or the start of train()): its batch is loaded
        before on_step_begin, so that counts too (and is also recorded on its own)."""

        def on_step_begin(self, *a, **k):
            fetch_times.append(time.perf_counter() - mark[0])

        def on_step_end(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - mark[0])
            turn.done()
            turn.wait()
            mark[0] = time.perf_counter()

    turn.wait()
    t_setup = time.perf_counter()
    try:
        if side == "trl":
            from trl import DPOConfig

            trainer = DPOTrainer(model, ref_model=ref, args=DPOConfig(loss_type=["robust"], label_smoothing=EPS, **common),
                                 train_dataset=ds, processing_class=tok, peft_config=peft_config, callbacks=[Timer()])
        else:
            from fairalign.align.rdpo import RobustDPOConfig, RobustDPOTrainer

            trainer = RobustDPOTrainer(model, ref_model=ref, args=RobustDPOConfig(flip_rate=EPS, **common),
                                       train_dataset=ds, processing_class=tok, peft_config=peft_config, callbacks=[Timer()])
    finally:
        DPOTrainer._precompute_ref_logps = original
    setup_s = time.perf_counter() - t_setup
    turn.done()
    if pre and precompute_s[0] == 0.0:
        raise RuntimeError(f"{variant}: precompute_ref_log_probs=True but no reference pass ran (a cached result?)")
    pair_tokens = [2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in trainer.train_dataset]
    seq_lens = [len(r["prompt_ids"]) + len(r[k]) for r in trainer.train_dataset for k in ("chosen_ids", "rejected_ids")]
    adapter_params = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad) if mode == "lora" else 0
    n_layers, width = model_flops.attention_dims(model.config)
    flops_per_token = model_flops.train_flops_per_token(
        n_params, n_layers, width, model_flops.effective_seq_len(seq_lens), mode, reference_each_step=not pre,
        adapter_params=adapter_params)

    # Per step: the loss and reward margin (both sides append their step metrics to _metrics) and the batch shape.
    losses, margins, shapes = [], [], []
    collate = trainer.data_collator
    trainer.data_collator = lambda examples: (b := collate(examples), shapes.append(list(b["input_ids"].shape)))[0]
    step = trainer.training_step

    def recording_step(*a, **k):
        loss = step(*a, **k)
        losses.append(float(loss))
        margins.append(trainer._metrics["train"]["rewards/margins"][-1])
        return loss

    trainer.training_step = recording_step
    turn.wait()
    waited_before = turn.waited_s
    t_train = mark[0] = time.perf_counter()
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            trainer.train()
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(f"== profile {variant}\n" + prof.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=60),
              file=sys.stderr, flush=True)
    else:
        trainer.train()
    train_s = time.perf_counter() - t_train - (turn.waited_s - waited_before)
    shutil.rmtree(out_dir, ignore_errors=True)  # save_strategy="no": only the run guard's lock file is there
    timed = times[WARMUP:]
    step_s = sum(timed) / len(timed)
    tokens_per_step = sum(pair_tokens) / len(pair_tokens) * args.batch
    result = {
        "variant": variant, "side": side, "mode": mode, "precompute": pre, "compile": compiled,
        "dtype": "bf16" if cuda else "float32", "lockstep": isinstance(turn, StdioTurn),
        "step_s": step_s, "step_s_all": times, "data_s_all": fetch_times,
        "tokens_per_step": tokens_per_step, "tokens_per_s": tokens_per_step / step_s,
        "model_flops_per_token": flops_per_token, "matmul_params": n_params, "adapter_params": adapter_params,
        "device_name": torch.cuda.get_device_name() if cuda else "cpu",
        "precompute_s": precompute_s[0], "setup_s": setup_s, "train_s": train_s,
        "end_to_end_s": precompute_s[0] + train_s, "end_to_end_tokens_per_s": sum(pair_tokens) / (precompute_s[0] + train_s),
        "batch_shapes": shapes, "losses": losses, "margins": margins,
        "load_avg": [load_avg, os.getloadavg()[0]],
    }
    if cuda:
        result["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result["peak_rss_mb"] = _proc_status_mb("VmHWM")
        result["rss_growth_mb"] = result["peak_rss_mb"] - base_rss
    return result


def compare(runs: list[dict]) -> list[dict]:
    """One group per (mode, precompute, compile) with both sides' medians over repeats, the ratios ours / TRL of
    runs of the same repeat (median, min, max) and the largest per-step loss / margin difference between the sides.
    Runs in lockstep: the loop tokens/s ratio is over paired steps (TRL's step k / ours' step k of one repeat,
    median and quartiles), so a burst of load on the machine that hits one step moves one ratio, not a run's mean."""
    mem = "peak_mem_mb" if "peak_mem_mb" in runs[0] else "peak_rss_mb"
    metrics = ["step_s", "tokens_per_s", "precompute_s", "end_to_end_tokens_per_s", mem] + (
        ["rss_growth_mb"] if mem == "peak_rss_mb" else []) + (
        ["mfu"] if all(r.get("mfu") is not None for r in runs) else [])
    groups = []
    for key in dict.fromkeys((r["mode"], r["precompute"], r["compile"]) for r in runs):
        runs_of = {s: {r["repeat"]: r for r in runs if (r["mode"], r["precompute"], r["compile"]) == key and r["side"] == s}
                   for s in SIDES}
        g = {"mode": key[0], "precompute": key[1], "compile": key[2], "options": options_label(*key), "sides": {}}
        for side, by_repeat in runs_of.items():
            if by_repeat:
                g["sides"][side] = {m: _spread([r[m] for r in by_repeat.values()]) for m in metrics}
                g["sides"][side]["tokens_per_step"] = next(iter(by_repeat.values()))["tokens_per_step"]
                g["sides"][side]["padded_tokens_per_step"] = statistics.mean(
                    a * b for r in by_repeat.values() for a, b in r["batch_shapes"])
        both = sorted(set(runs_of["trl"]) & set(runs_of["ours"]))
        if both:
            pairs = [(runs_of["ours"][i], runs_of["trl"][i]) for i in both]
            # no MFU ratio: with one FLOP count for both sides it is the tokens/s ratio
            # a ratio over a zero or negative denominator (RSS growth can be 0 when a process's peak predates the
            # run) is undefined: it is left out and the table says n/a, rather than crashing or printing inf
            g["ours_over_trl"] = {m: _spread([o[m] / t[m] for o, t in pairs]) for m in metrics
                                  if m not in ("step_s", "precompute_s", "mfu") and all(t[m] > 0 for _, t in pairs)}
            if all(o["lockstep"] and t["lockstep"] for o, t in pairs):
                steps = [ts / os_ for o, t in pairs for os_, ts in zip(o["step_s_all"][WARMUP:], t["step_s_all"][WARMUP:])]
                g["ours_over_trl"]["tokens_per_s"] = dict(_spread(steps), paired_steps=True)
            dtype = pairs[0][0]["dtype"]
            diff = max(max(abs(a - b) for a, b in zip(o[k], t[k])) for o, t in pairs for k in ("losses", "margins"))
            g["max_loss_or_margin_diff"], g["tolerance"] = diff, LOSS_TOL[dtype]
            g["same_loss"] = all(len(o["losses"]) == len(t["losses"]) for o, t in pairs) and diff <= LOSS_TOL[dtype]
        groups.append(g)
    return groups


def _spread(values: list[float]) -> dict:
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "q1": q1, "q3": q3,
            "n": len(values)}


def format_table(groups: list[dict], cuda: bool) -> str:
    """Markdown: per options group, TRL's row, ours, then the ratio row (median over repeats, range in brackets);
    an MFU column where every run has one."""
    mem = "peak_mem_mb" if cuda else "peak_rss_mb"
    cols = [("step_s", "s/step", "{:.2f}"), ("tokens_per_s", "loop tokens/s", "{:,.0f}"),
            ("precompute_s", "precompute s", "{:.1f}"), ("end_to_end_tokens_per_s", "end-to-end tokens/s", "{:,.0f}"),
            (mem, "peak GPU MB" if cuda else "peak RSS MB", "{:,.0f}")] + ([] if cuda else [("rss_growth_mb", "RSS growth MB", "{:,.0f}")])
    if all("mfu" in s for g in groups for s in g["sides"].values()):
        cols.insert(2, ("mfu", "MFU", "{:.1%}"))
    lines = ["| options | trainer | " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for g in groups:
        for side in SIDES:
            if side in g["sides"]:
                s = g["sides"][side]
                cells = [_cell(s[m], fmt) for m, _, fmt in cols]
                lines.append(f"| {g['options']} | {'TRL' if side == 'trl' else 'ours'} | " + " | ".join(cells) + " |")
        if "ours_over_trl" in g:
            r = g["ours_over_trl"]
            cells = ["–" if m in ("step_s", "precompute_s", "mfu") else _cell(r[m], "{:.2f}×") if m in r
                     else "n/a (TRL's is ≤ 0)" for m, _, _ in cols]
            lines.append(f"| {g['options']} | **ours / TRL** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(s: dict, fmt: str) -> str:
    if s.get("paired_steps"):
        return f"{fmt.format(s['median'])} (quartiles {fmt.format(s['q1'])}–{fmt.format(s['q3'])}, {s['n']} paired steps)"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def _worker_cmd(args, variant: str, mode: str, lockstep: bool) -> list[str]:
    skip = ("worker", "out", "variants", "quick", "repeats", "mode", "no_lockstep", "lockstep")
    return [sys.executable, __file__, "--worker", variant, "--mode", mode] + (["--lockstep"] if lockstep else []) + [
        x for k, v in vars(args).items() if k not in skip and v not in (None, False)
        for x in ((f"--{k}",) if v is True else (f"--{k}", str(v)))]


def run_children(args, variants: list[str], mode: str) -> list[dict]:
    """One child per variant; two or more take turns (lockstep), the first to go alternating every turn."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    lockstep = len(variants) > 1
    logs = [tempfile.TemporaryFile("w+") for _ in variants]  # stderr to files: a full pipe would block a child
    procs = [subprocess.Popen(_worker_cmd(args, v, mode, lockstep), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=log, text=True, env=env) for v, log in zip(variants, logs)]
    results: list[dict | None] = [None] * len(procs)
    try:
        if lockstep:
            for k in range(args.steps + WARMUP + 2):  # set-up, train() to step 1, steps 2.., the end
                for i in (range(len(procs)) if k % 2 == 0 else reversed(range(len(procs)))):
                    if results[i] is None:
                        procs[i].stdin.write("go\n")
                        procs[i].stdin.flush()
                        results[i] = _read_turn(procs[i], logs[i], variants[i], mode)
        for i, p in enumerate(procs):
            if results[i] is None:
                p.stdin.close()
                results[i] = _read_turn(p, logs[i], variants[i], mode, until_result=True)
            if p.wait():
                raise RuntimeError(f"{variants[i]} ({mode}) exited with {p.returncode}:\n{_tail(logs[i])}")
            if args.profile:
                text = _tail(logs[i], 100_000)
                print(text[text.find("== profile"):], file=sys.stderr)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results


def _read_turn(proc, log, variant, mode, until_result=False) -> dict | None:
    """Read the child's stdout to the end of its turn: None, or its result when it printed one."""
    for line in proc.stdout:
        if line.startswith("RESULT "):
            return json.loads(line[7:])
        if line.strip() == "TURN_DONE" and not until_result:
            return None
    raise RuntimeError(f"{variant} ({mode}) failed:\n{_tail(log)}")


def _tail(log, n=3000) -> str:
    log.seek(0)
    return log.read()[-n:]


def main(args) -> int:
    from fairalign.scripts import model_flops

    args = resolve_defaults(args)
    if args.worker:
        turn = StdioTurn() if args.lockstep else None
        print("RESULT " + json.dumps(run_variant(args, args.worker, args.mode, turn)), flush=True)
        return 0
    cuda = args.device == "cuda"
    variants, runs = args.variants.split(","), []
    # units: the sides of one options group together (lockstep), unless --no_lockstep
    units = [[v for v in variants if parse_variant(v)[1:] == key]
             for key in dict.fromkeys(parse_variant(v)[1:] for v in variants)]
    if args.no_lockstep:
        units = [[v] for unit in units for v in unit]
    for repeat in range(args.repeats):
        order = [(m, u) for m in args.mode.split(",") for u in units]
        for mode, unit in (order if repeat % 2 == 0 else order[::-1]):
            for r in run_children(args, unit if repeat % 2 == 0 else unit[::-1], mode):
                r["repeat"] = repeat
                r["peak_tflops"] = args.peak_tflops or model_flops.peak_tflops(r["device_name"])
                r["mfu"] = model_flops.mfu(r["model_flops_per_token"], r["tokens_per_s"], r["peak_tflops"])
                runs.append(r)
                mem = r.get("peak_mem_mb", r.get("peak_rss_mb"))
                mfu = f"MFU {r['mfu']:5.1%}" if r["mfu"] is not None else "MFU –"
                print(f"[{repeat}] {mode:4s} {r['variant']:12s} {r['step_s']:7.3f} s/step {r['tokens_per_s']:8.0f} tok/s  "
                      f"{r['model_flops_per_token'] / 1e9:.3g} GFLOP/token {mfu}  "
                      f"precompute {r['precompute_s']:5.1f} s  end-to-end {r['end_to_end_tokens_per_s']:8.0f} tok/s  "
                      f"peak {mem:7.0f} MB  load {r['load_avg'][0]:.1f}->{r['load_avg'][1]:.1f}", flush=True)
    groups = compare(runs)
    device = runs[0]["device_name"]
    print(f"device: {device}; model FLOPs {model_flops.MFU_FORMULA}")
    if runs[0]["mfu"] is None:
        print(f"MFU omitted: no peak FLOP/s known for {device!r}; pass --peak_tflops")
    else:
        print(f"peak {runs[0]['peak_tflops']:g} TFLOP/s" + (" (--peak_tflops)" if args.peak_tflops else ""))
    print(format_table(groups, cuda))
    bad = [g["options"] for g in groups if g.get("same_loss") is False]
    for g in groups:
        if "same_loss" in g:
            print(f"{g['options']}: largest per-step loss/margin difference ours vs TRL {g['max_loss_or_margin_diff']:.2e} "
                  f"(tolerance {g['tolerance']:.0e})")
        else:
            print(f"{g['options']}: only one side ran, no ratio")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"config": {k: v for k, v in vars(args).items() if k != "worker"},
                       "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device_name": device,
                       "mfu_formula": model_flops.MFU_FORMULA, "runs": runs, "groups": groups}, f, indent=2)
    if bad:
        print(f"ERROR: the two sides did not train the same losses for {bad}: the comparison is not like for like",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(make_parser().parse_args()))
