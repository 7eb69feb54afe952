"""Benchmark: NLI prediction on BBNLI pairs, one pair at a time vs batched vs batched + length-sorted.

`NLIClassifierPredictor` batches pairs and, by default, sorts them by token count so a batch pads to
similar lengths (and on CUDA rounds lengths up to a multiple of 8). This measures what each buys, on the same random-weight RoBERTa sequence classifier (sizes
of roberta-base by default; weights do not change speed), in one process:

    python scripts/bench_bbnli.py --quick                        # CPU, small model, 64 pairs
    python scripts/bench_bbnli.py --device cuda --out bench.json  # roberta-base size, bf16, 2048 pairs

Data: the BBNLI pairs from --data (default ../shared/data/bbnli/bbnli_expanded.csv beside the checkout),
else synthetic pairs with BBNLI-like lengths. Tokenizer: --tokenizer (default the embedded SmolLM2's
49k BPE, a RoBERTa-like byte-level BPE), else the tiny test tokenizer.
Prints seconds (first timed pass and best of --repeats), pairs/s, speed-up over one-at-a-time, agreement of predictions and peak memory (CUDA:
max_memory_allocated per variant; CPU: the process's peak RSS so far, which only grows).
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbnli" / "bbnli_expanded.csv"


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="small model and 64 pairs (CPU-friendly)")
    p.add_argument("--num-pairs", type=int, default=None, help="pairs to predict (default 64 quick / 2048)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--tokenizer", default="smollm2")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per batched variant (best is reported)")
    p.add_argument("--seed", type=int, default=0)
    return p


def load_pairs(path: str, n: int, seed: int) -> tuple[list[str], list[str], str]:
    rng = random.Random(seed)
    if Path(path).exists():
        from fairalign.eval.bbnli.data import load_bbnli

        rows = load_bbnli(path, drop_duplicate_pairs=True).examples
        rows = [rows[i] for i in sorted(rng.sample(range(len(rows)), min(n, len(rows))))]
        return [r.premise for r in rows], [r.hypothesis for r in rows], f"BBNLI ({path})"
    words = "women men people work home study percent often rarely family income care data report".split()
    premises = [" ".join(rng.choice(words) for _ in range(rng.randint(20, 90))) + "." for _ in range(n)]
    hypotheses = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 15))) + "." for _ in range(n)]
    return premises, hypotheses, "synthetic (BBNLI-like lengths)"


def load_tok(name: str):
    try:
        from fairalign.align.modeling import load_tokenizer

        return load_tokenizer(name, padding_side="right"), name
    except Exception as err:  # the embedded model is not converted on a bare machine
        from fairalign.align.testing import tiny_tokenizer

        print(f"[bench] tokenizer {name!r} unavailable ({type(err).__name__}); using the tiny test tokenizer")
        return tiny_tokenizer(), "tiny"


def build_model(tokenizer, quick: bool, device: str):
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    size = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024) if quick else \
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    config = RobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=514 + tokenizer.pad_token_id,
                           type_vocab_size=1, pad_token_id=tokenizer.pad_token_id, num_labels=3,
                           id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}, **size)
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(config).eval()
    if device.startswith("cuda"):
        model = model.to(torch.bfloat16)
    return model.to(device), size


def padding_stats(tokenizer, premises, hypotheses, batch_size, sort, multiple=1, max_length=512) -> dict:
    """Tokens the model actually processes (batch x longest) vs real tokens, in the predictor's batch order."""
    lengths = [min(max_length, len(ids)) for ids in tokenizer(premises, hypotheses)["input_ids"]]
    order = list(range(len(premises)))
    if sort:  # the predictor's own rule: token count, longest first
        order.sort(key=lambda i: lengths[i], reverse=True)
    processed = sum(len(chunk) * -(-max(lengths[i] for i in chunk) // multiple) * multiple
                    for chunk in (order[k : k + batch_size] for k in range(0, len(order), batch_size)))
    return {"real_tokens": sum(lengths), "processed_tokens": processed, "padding_share": 1 - sum(lengths) / processed}


def run_variant(model, tokenizer, device, premises, hypotheses, batch_size, sort, multiple, repeats):
    """Labels, seconds of the first timed pass, best seconds over `repeats` passes, peak memory.

    The first pass pays one-off costs per new tensor shape (kernel selection); later passes do not."""
    import torch

    from fairalign.eval.bbnli.predictors import NLIClassifierPredictor

    predictor = NLIClassifierPredictor(model, tokenizer, batch_size=batch_size, device=device, sort_by_length=sort,
                                       progress=False, pad_to_multiple_of=multiple)
    predictor(premises[:batch_size], hypotheses[:batch_size])  # warm-up
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        labels = predictor(premises, hypotheses)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = (times[0], min(times))
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return labels, seconds, peak


def main(args: argparse.Namespace) -> int:
    import torch

    n = args.num_pairs or (64 if args.quick else 2048)
    premises, hypotheses, source = load_pairs(args.data, n, args.seed)
    tokenizer, tok_name = load_tok(args.tokenizer)
    model, size = build_model(tokenizer, args.quick, args.device)
    # (batch size, sort by length, pad_to_multiple_of)
    variants = {"one_at_a_time": (1, False, 1), "batched": (args.batch_size, False, 1),
                "batched_sorted": (args.batch_size, True, 1), "batched_sorted_pad8": (args.batch_size, True, 8)}
    results, reference = {}, None
    for name, (bs, sort, multiple) in variants.items():
        labels, (first, seconds), peak = run_variant(model, tokenizer, args.device, premises, hypotheses, bs, sort,
                                                     multiple, 1 if bs == 1 else args.repeats)
        reference = reference or labels
        results[name] = padding_stats(tokenizer, premises, hypotheses, bs, sort, multiple) | {
            "batch_size": bs, "sort_by_length": sort, "pad_to_multiple_of": multiple, "first_pass_seconds": first,
            "seconds": seconds, "pairs_per_s": len(premises) / seconds,
                         "peak_mib": peak, "agreement_with_one_at_a_time": sum(a == b for a, b in zip(labels, reference)) / len(labels)}
    base = results["one_at_a_time"]["seconds"]
    for r in results.values():
        r["speedup_vs_one_at_a_time"] = base / r["seconds"]
    report = {"device": args.device, "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
              "dtype": "bfloat16" if args.device.startswith("cuda") else "float32", "pairs": len(premises),
              "data": source, "tokenizer": tok_name, "model": size, "torch": torch.__version__, "results": results}
    print(f"{len(premises)} pairs from {source}; model {size}; tokenizer {tok_name}; device {args.device}")
    print(f"{'variant':<20} {'first s':>8} {'best s':>8} {'pairs/s':>9} {'speed-up':>9} {'agree':>6} {'peak MiB':>9} {'padding':>8}")
    for name, r in results.items():
        print(f"{name:<20} {r['first_pass_seconds']:>8.3f} {r['seconds']:>8.3f} {r['pairs_per_s']:>9.1f} {r['speedup_vs_one_at_a_time']:>8.2f}x "
              f"{r['agreement_with_one_at_a_time']:>6.3f} {r['peak_mib']:>9.0f} {r['padding_share']:>8.1%}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
