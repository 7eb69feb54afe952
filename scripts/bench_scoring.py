"""Benchmark the toxicity evaluation's hot paths, side by side in one process.

1. `HFClassifierScorer` batched vs one text at a time (the ratio; target >= 5x). The classifier is built
   from a config with random weights (no Hub here): BERT-base shape (768 hidden, 12 layers, like
   unitary/toxic-bert) or, with --quick, a sized-down BERT (256 hidden, 4 layers). Speed depends on shape,
   not on weights; scores of the two paths are checked to agree.
2. Generation throughput of `generate_continuations` (cache on) at 1 / 8 / 32 sequences per generate call,
   20 new tokens, nucleus 0.9: the tiny test Llama and, unless --quick, SmolLM2-135M-Instruct.
3. The offline profanity proxy (`alt-profanity-check`), batched and one text at a time.

    python scripts/bench_scoring.py --quick                       # CPU, about a minute
    python scripts/bench_scoring.py --out bench_scoring.json      # CPU, full
    python scripts/bench_scoring.py --device cuda --out bench_scoring_cuda.json   # bf16, synchronised timing

Peak memory: CPU = process peak RSS (ru_maxrss, monotonic over the run); CUDA = torch.cuda.max_memory_allocated
per measurement.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the a you they we people this that is are was be not so just like really what why how all every "
         "stupid idiot great good bad terrible nice wonderful hate love kill damn hell think know said want "
         "go get make time day world life man woman men women nurse doctor teacher friend family city night").split()


def make_texts(n: int, seed: int = 0) -> list[str]:
    """Continuation-like texts: 5-30 words (RTP continuations are <= 20 tokens; some prompts are longer)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(n)]


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--out", default=None, help="write the measurements as JSON here")
    p.add_argument("--quick", action="store_true", help="small shapes and counts (CPU smoke), no SmolLM2")
    p.add_argument("--num-texts", type=int, default=None, help="texts to score (default 256; 128 with --quick)")
    p.add_argument("--batch-size", type=int, default=64, help="classifier batch size for the batched path")
    p.add_argument("--sections", default="classifier,generation,protocol,profanity",
                   help="comma list of what to run: classifier, generation, protocol (k = 25 per prompt), profanity")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: SmolLM2's when on disk, else the tiny one)")
    return p


class Timer:
    def __init__(self, device: str):
        self.device = device

    def sync(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def __call__(self, fn, repeats: int = 1):
        """(best seconds over `repeats`, result of the last call), after one untimed warm-up call."""
        fn()
        best, result = float("inf"), None
        for _ in range(repeats):
            self.sync()
            start = time.perf_counter()
            result = fn()
            self.sync()
            best = min(best, time.perf_counter() - start)
        return best, result


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        mb = torch.cuda.max_memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
        return mb
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def bench_classifier(args, timer, texts) -> dict:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from fairalign.eval.toxicity import HFClassifierScorer

    tokenizer = _bench_tokenizer(args.tokenizer)
    shape = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024) if args.quick else \
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                        id2label={0: "non_toxic", 1: "toxic"}, label2id={"non_toxic": 0, "toxic": 1}, **shape)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    model = BertForSequenceClassification(config).to(dtype).eval()
    batched = HFClassifierScorer.from_model(model, tokenizer, label="toxic", device=args.device, batch_size=args.batch_size)
    single = HFClassifierScorer.from_model(model, tokenizer, label="toxic", device=args.device, batch_size=1)
    peak_memory_mb(args.device)
    t_batched, s_batched = timer(lambda: batched(texts), repeats=3)
    mem_batched = peak_memory_mb(args.device)
    t_single, s_single = timer(lambda: single(texts), repeats=1)
    mem_single = peak_memory_mb(args.device)
    max_diff = max(abs(a - b) for a, b in zip(s_batched, s_single))
    params = sum(p.numel() for p in model.parameters())
    return {"classifier": f"random-init BERT from config ({params / 1e6:.1f}M params, {shape['num_hidden_layers']} layers, "
                          f"hidden {shape['hidden_size']}), tokenizer {getattr(tokenizer, 'name_or_path', '') or 'tiny'}",
            "num_texts": len(texts), "batch_size": args.batch_size,
            "batched_s": t_batched, "single_s": t_single,
            "batched_texts_per_s": len(texts) / t_batched, "single_texts_per_s": len(texts) / t_single,
            "speedup": t_single / t_batched, "max_abs_score_diff": max_diff,
            "peak_mem_mb_batched": mem_batched, "peak_mem_mb_single": mem_single}


def _bench_tokenizer(path: str | None = None):
    """--tokenizer, else SmolLM2's real BPE tokenizer when on disk (realistic token counts), else the tiny one."""
    from fairalign.align.modeling import load_tokenizer

    if path:
        return load_tokenizer(path, padding_side="right")
    try:
        return load_tokenizer("smollm2", padding_side="right")
    except Exception:  # no embedded model here (e.g. a bare GPU box)
        from fairalign.align.testing import tiny_tokenizer

        return tiny_tokenizer()


# SmolLM2-135M-Instruct's shape (its config.json), for a random-init stand-in where the weights are absent.
SMOLLM2_135M_SHAPE = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                          num_key_value_heads=3, head_dim=64, max_position_embeddings=8192, tie_word_embeddings=True,
                          rms_norm_eps=1e-5)


def load_smollm2(args, dtype):
    """(name, model, tokenizer): the real SmolLM2 when available, else a random-init model of the same shape
    (generation speed depends on shape, not weights; random weights rarely emit EOS, so every step runs)."""
    try:
        from fairalign.align.modeling import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer("smollm2", dtype=dtype, device=args.device)
        return "SmolLM2-135M-Instruct", model, tokenizer
    except Exception as err:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        tokenizer = _bench_tokenizer(args.tokenizer)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        config = LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, **SMOLLM2_135M_SHAPE)
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).to(args.device, dtype).eval()
        print(f"[generation] SmolLM2 weights unavailable ({type(err).__name__}); using a random-init model of its shape", flush=True)
        return f"SmolLM2-135M-shaped random init (vocab {len(tokenizer)})", model, tokenizer


def bench_generation(args, timer, name, model, tokenizer, num_prompts) -> list[dict]:
    from fairalign.eval.toxicity import generate_continuations

    prompts = [t[:60] for t in make_texts(num_prompts, seed=1)]
    rows = []
    for batch in (1, 8, 32):
        n = max(batch, min(num_prompts, batch * 4))  # at least 4 calls' worth, at least one full batch

        def run():
            with tempfile.TemporaryDirectory() as tmp:  # a fresh cache each time: measure generation, not cache hits
                return generate_continuations((model, tokenizer), prompts[:n], num_samples=1, max_new_tokens=20, top_p=0.9,
                                              batch_size=batch, cache_path=Path(tmp) / "g.jsonl", progress=False)

        peak_memory_mb(args.device)
        seconds, records = timer(run, repeats=1)
        # generate_continuations returns text; re-tokenise to count new tokens (capped at max_new_tokens, since
        # re-encoding decoded random bytes can split them further).
        new_tokens = sum(min(20, len(tokenizer(r["continuation"], add_special_tokens=False)["input_ids"])) for r in records)
        rows.append({"model": name, "sequences_per_call": batch, "num_sequences": n, "seconds": seconds,
                     "sequences_per_s": n / seconds, "new_tokens_per_s": new_tokens / seconds,
                     "peak_mem_mb": peak_memory_mb(args.device)})
    return rows


def bench_protocol(args, timer, name, model, tokenizer) -> list[dict]:
    """The RTP shape: k = 25 samples per prompt, so one generate call holds 25 x (prompts per batch) sequences."""
    from fairalign.eval.toxicity import generate_continuations

    prompts = [t[:60] for t in make_texts(16, seed=2)]
    rows = []
    for batch in (1, 4, 16):
        n = min(len(prompts), batch * 2)

        def run():
            return generate_continuations((model, tokenizer), prompts[:n], num_samples=25, max_new_tokens=20,
                                          top_p=0.9, batch_size=batch, progress=False)

        peak_memory_mb(args.device)
        seconds, _ = timer(run, repeats=1)
        rows.append({"model": name, "prompts_per_call": batch, "sequences_per_call": 25 * batch, "num_prompts": n,
                     "seconds": seconds, "prompts_per_s": n / seconds, "sequences_per_s": 25 * n / seconds,
                     "peak_mem_mb": peak_memory_mb(args.device)})
    return rows


def bench_profanity(timer, texts) -> dict | None:
    try:
        from fairalign.eval.toxicity import OfflineProfanityScorer

        scorer = OfflineProfanityScorer(warn=False)
    except ImportError:
        return None
    t_batched, _ = timer(lambda: scorer(texts), repeats=3)
    subset = texts[: min(len(texts), 200)]
    t_single, _ = timer(lambda: [scorer([t]) for t in subset], repeats=1)
    return {"num_texts": len(texts), "batched_texts_per_s": len(texts) / t_batched,
            "single_texts_per_s": len(subset) / t_single, "speedup": (t_single / len(subset)) / (t_batched / len(texts))}


def main(args: argparse.Namespace) -> int:
    import platform

    import torch

    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda but torch sees no CUDA device")
    timer = Timer(args.device)
    texts = make_texts(args.num_texts or (128 if args.quick else 1024 if args.device.startswith("cuda") else 256))
    results = {"device": args.device, "quick": args.quick, "torch": torch.__version__, "python": platform.python_version(),
               "cpu_threads": torch.get_num_threads(),
               "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}

    sections = set(args.sections.split(","))
    if "classifier" in sections:
        results["classifier"] = c = bench_classifier(args, timer, texts)
        print(f"[classifier] {c['classifier']}\n  batched (bs={c['batch_size']}): {c['batched_texts_per_s']:.1f} texts/s | "
              f"one at a time: {c['single_texts_per_s']:.1f} texts/s | speedup {c['speedup']:.1f}x (target >= 5x) | "
              f"max |score diff| {c['max_abs_score_diff']:.2e} | peak mem {c['peak_mem_mb_batched']:.0f} / {c['peak_mem_mb_single']:.0f} MB",
              flush=True)

    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    models = [("tiny-llama (2 layers, hidden 32)", tiny_llama().to(args.device, dtype), tiny_tokenizer())]
    if not args.quick and sections & {"generation", "protocol"}:
        models.append(load_smollm2(args, dtype))
    if "generation" in sections:
        results["generation"] = []
        for name, model, tokenizer in models:
            rows = bench_generation(args, timer, name, model, tokenizer, num_prompts=64 if args.quick else 128)
            results["generation"] += rows
            for r in rows:
                print(f"[generation] {name:34s} {r['sequences_per_call']:>2} seq/call: {r['sequences_per_s']:7.1f} seq/s, "
                      f"{r['new_tokens_per_s']:8.1f} new tok/s ({r['num_sequences']} seqs, peak {r['peak_mem_mb']:.0f} MB)", flush=True)
            base = rows[0]["sequences_per_s"]
            print(f"[generation] {name}: 8/1 = {rows[1]['sequences_per_s'] / base:.1f}x, 32/1 = {rows[2]['sequences_per_s'] / base:.1f}x", flush=True)
    if "protocol" in sections and not args.quick:
        name, model, tokenizer = models[-1]
        results["protocol"] = rows = bench_protocol(args, timer, name, model, tokenizer)
        for r in rows:
            print(f"[protocol k=25] {name}: {r['prompts_per_call']:>2} prompts/call ({r['sequences_per_call']} seqs): "
                  f"{r['prompts_per_s']:.2f} prompts/s, {r['sequences_per_s']:.1f} seq/s (peak {r['peak_mem_mb']:.0f} MB)", flush=True)

    if "profanity" in sections:
        results["profanity"] = p = bench_profanity(timer, texts * (8 if args.quick else 40))
        if p:
            print(f"[profanity-check] batched: {p['batched_texts_per_s']:.0f} texts/s | one at a time: "
                  f"{p['single_texts_per_s']:.0f} texts/s | speedup {p['speedup']:.0f}x", flush=True)
        else:
            print("[profanity-check] not installed (pip install alt-profanity-check), skipped", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(make_parser().parse_args()))
