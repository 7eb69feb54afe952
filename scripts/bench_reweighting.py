"""Benchmark: loss-based sample reweighting (Sow et al., ICLR 2025) vs ordinary training, from scratch.

The corpus is built here, so the answer is known: a share of the training documents is redundant (a few
boilerplate sentences repeated with one random digit changed: near-duplicates that are learnt in a few
steps), the rest is diverse (walks on a random sparse Markov chain: learnable, capacity-hungry). Both runs
train the same tiny Llama from the same seed on the same batches for the same steps:

    uniform   transformers.Trainer, ordinary mean loss (the peer)
    linupper  ReweightingTrainer, w = softmax(min(x + 1, 1) / r) over the batch

and report held-out loss curves on fresh diverse and redundant documents (with the true-chain entropy as the
floor no model can beat), the mean weight each kind receives, and the throughput cost of reweighting
(tokens/s ratio to uniform, with and without gradient accumulation).

    python scripts/bench_reweighting.py --quick                      # CPU, ~3 minutes
    python scripts/bench_reweighting.py --out bench_reweighting.json # fuller run
    python scripts/bench_reweighting.py --device cuda --out results.json
Writes the JSON to --out and the plot next to it (same name, .png).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

PAD, EOS = 0, 1


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: bf16 autocast")
    parser.add_argument("--out", default="bench_reweighting.json", help="JSON results; the plot goes next to it")
    parser.add_argument("--quick", action="store_true", help="small model and few steps (CPU, ~1-3 minutes)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default 150 quick / 600)")
    parser.add_argument("--batch-size", type=int, default=None, help="samples per step (default 16 quick / 32)")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per document (default 48 quick / 96)")
    parser.add_argument("--hidden-size", type=int, default=None, help="default 64 quick / 128")
    parser.add_argument("--num-layers", type=int, default=None, help="default 2 quick / 4")
    parser.add_argument("--redundant-fraction", type=float, default=0.6, help="share of redundant training documents")
    parser.add_argument("--strategy", default="linupper", help="reweighting strategy compared with uniform")
    parser.add_argument("--temperature", type=float, default=0.5, help="softmax temperature r")
    parser.add_argument("--extra-strategies", default="", help="comma-separated further strategies to run, e.g. quadratic,extremes")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-every", type=int, default=None, help="steps between held-out evaluations")
    parser.add_argument("--throughput-steps", type=int, default=None, help="steps of each throughput-only run")
    parser.add_argument("--throughput-rounds", type=int, default=2, help="alternating rounds of the throughput runs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 suits a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def resolve(args) -> dict:
    quick = args.quick
    cfg = {
        "steps": args.steps or (120 if quick else 600),
        "batch_size": args.batch_size or (16 if quick else 32),
        "seq_len": args.seq_len or (48 if quick else 96),
        "hidden_size": args.hidden_size or (64 if quick else 128),
        "num_layers": args.num_layers or (2 if quick else 4),
        "redundant_fraction": args.redundant_fraction, "strategy": args.strategy, "temperature": args.temperature,
        "extra_strategies": [s for s in args.extra_strategies.split(",") if s], "lr": args.lr, "seed": args.seed,
        "device": args.device, "quick": quick,
    }
    cfg["eval_every"] = args.eval_every or max(1, cfg["steps"] // 15)
    cfg["throughput_steps"] = args.throughput_steps or (20 if quick else 60)
    cfg["throughput_rounds"] = args.throughput_rounds
    cfg["threads"] = args.threads
    cfg["n_train"] = cfg["steps"] * cfg["batch_size"]  # one epoch: every sample is seen once
    return cfg


# ---- corpus ----------------------------------------------------------------------------------------------
class Corpus:
    """Token-id documents of exactly seq_len tokens. ids: 0 pad, 1 eos, then diverse words, boilerplate
    words, digits. Diverse: a Markov chain where each word has `branching` successors (Dirichlet(1) probs).
    Redundant: boilerplate sentences with one digit slot."""

    def __init__(self, seed: int, seq_len: int, n_diverse_words: int = 256, branching: int = 4,
                 n_templates: int = 4, template_len: int = 12, n_boiler_words: int = 32):
        import numpy as np

        self.rng = np.random.default_rng(seed)
        self.seq_len = seq_len
        self.div0 = 2
        self.boil0 = self.div0 + n_diverse_words
        self.digit0 = self.boil0 + n_boiler_words
        self.vocab_size = self.digit0 + 10 + 1  # +1: tiny_llama reserves the last id as its pad id
        self.successors = self.rng.integers(0, n_diverse_words, size=(n_diverse_words, branching))
        self.probs = self.rng.dirichlet(np.ones(branching), size=n_diverse_words)
        self.templates = [list(self.boil0 + self.rng.integers(0, n_boiler_words, size=template_len)) for _ in range(n_templates)]
        self.slots = [int(self.rng.integers(1, template_len)) for _ in range(n_templates)]
        self.n_diverse_words = n_diverse_words

    def diverse(self) -> tuple[list[int], float]:
        """A chain walk and its true NLL per predicted token (the floor for this document)."""
        import math as _m

        word = int(self.rng.integers(0, self.n_diverse_words))
        ids, nll = [self.div0 + word], 0.0
        for _ in range(self.seq_len - 1):
            k = int(self.rng.choice(len(self.probs[word]), p=self.probs[word]))
            nll -= _m.log(self.probs[word, k])
            word = int(self.successors[word, k])
            ids.append(self.div0 + word)
        return ids, nll / (self.seq_len - 1)

    def redundant(self) -> list[int]:
        ids = []
        while len(ids) < self.seq_len:
            t = int(self.rng.integers(0, len(self.templates)))
            sentence = list(self.templates[t])
            sentence[self.slots[t]] = self.digit0 + int(self.rng.integers(0, 10))
            ids += sentence
        return ids[: self.seq_len]

    def is_redundant(self, first_token: int) -> bool:
        return first_token >= self.boil0

    def build(self, n_train: int, redundant_fraction: float, n_heldout_diverse: int = 256, n_heldout_redundant: int = 64):
        n_red = int(round(n_train * redundant_fraction))
        train = [self.redundant() for _ in range(n_red)] + [self.diverse()[0] for _ in range(n_train - n_red)]
        order = self.rng.permutation(len(train))
        train = [train[i] for i in order]
        heldout = [self.diverse() for _ in range(n_heldout_diverse)]
        return {
            "train": train,
            "heldout_diverse": [ids for ids, _ in heldout],
            "heldout_redundant": [self.redundant() for _ in range(n_heldout_redundant)],
            "diverse_floor": sum(nll for _, nll in heldout) / len(heldout),
        }


class ListDataset:
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


# ---- measurement -------------------------------------------------------------------------------------------
def heldout_loss(model, rows, device, batch_size=64) -> float:
    """Mean next-token NLL over the held-out documents (all the same length: token mean = document mean)."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            ids = torch.tensor(rows[i : i + batch_size], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(input_ids=ids).logits
            nll = F.cross_entropy(logits[:, :-1].float().flatten(0, 1), ids[:, 1:].flatten(), reduction="sum")
            total += float(nll)
            count += ids[:, 1:].numel()
    model.train(was_training)
    return total / count


def make_callback(data, eval_every, device, evaluate: bool):
    import torch
    from transformers import TrainerCallback

    class TimeAndEvaluate(TrainerCallback):
        """Per-step wall time (held-out evaluation excluded) and held-out losses every eval_every steps."""

        def __init__(self):
            self.step_times, self.step_cpu_times, self.curve, self.mark, self.cpu_mark = [], [], [], None, None

        def _sync(self):
            if device.type == "cuda":
                torch.cuda.synchronize()

        def _evaluate(self, model, step):
            self.curve.append({
                "step": step,
                "diverse": heldout_loss(model, data["heldout_diverse"], device),
                "redundant": heldout_loss(model, data["heldout_redundant"], device),
            })

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if evaluate:
                self._evaluate(model, 0)
            self._sync()
            self.mark, self.cpu_mark = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, model=None, **kwargs):
            self._sync()
            self.step_times.append(time.perf_counter() - self.mark)
            self.step_cpu_times.append(time.process_time() - self.cpu_mark)
            if evaluate and (state.global_step % eval_every == 0 or state.global_step == state.max_steps):
                self._evaluate(model, state.global_step)
            self._sync()
            self.mark, self.cpu_mark = time.perf_counter(), time.process_time()

    return TimeAndEvaluate()


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; process-wide peak


def train_run(name, cfg, data, corpus, *, strategy=None, accumulation=1, scope="accumulation", steps=None, evaluate=True):
    """One from-scratch run; strategy None = plain transformers.Trainer (the ordinary loss)."""
    import torch
    from transformers import Trainer, TrainingArguments

    from fairalign.align.reweighting import LMCollator, ReweightingConfig, ReweightingTrainer
    from fairalign.align.testing import tiny_llama

    device = torch.device(cfg["device"])
    steps = steps or cfg["steps"]
    common = dict(
        output_dir=str(Path(tempfile.gettempdir()) / "bench_reweighting" / name),  # nothing is saved there
        per_device_train_batch_size=cfg["batch_size"] // accumulation,
        gradient_accumulation_steps=accumulation, max_steps=steps, learning_rate=cfg["lr"], lr_scheduler_type="linear",
        warmup_steps=max(1, steps // 20), weight_decay=0.0, max_grad_norm=1.0, logging_steps=cfg["eval_every"],
        report_to=[], save_strategy="no", disable_tqdm=True, seed=cfg["seed"], dataloader_num_workers=0,
        use_cpu=device.type == "cpu", bf16=device.type == "cuda",
    )
    model = tiny_llama(vocab_size=corpus.vocab_size, seed=cfg["seed"], hidden_size=cfg["hidden_size"], num_layers=cfg["num_layers"])
    model.train()
    callback = make_callback(data, cfg["eval_every"], device, evaluate)
    kinds = {"redundant": [0.0, 0], "diverse": [0.0, 0]}

    class KindTracking(ReweightingTrainer):
        """Adds up N*w per document kind (1 = the uniform weight): where does the weight go?"""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if model.training and evaluate and self.last_global_weights is not None:
                _, weights, valid = self.last_global_weights
                rel = (weights * valid.sum()).tolist()
                for first, w in zip(inputs["input_ids"][:, 0].tolist(), rel):
                    kind = kinds["redundant" if corpus.is_redundant(first) else "diverse"]
                    kind[0] += w
                    kind[1] += 1
            return out

    dataset = ListDataset(data["train"])
    collator = LMCollator(pad_token_id=PAD)
    if strategy is None:
        trainer = Trainer(model=model, args=TrainingArguments(**common), train_dataset=dataset, data_collator=collator,
                          callbacks=[callback])
    else:
        args = ReweightingConfig(**common, reweight_strategy=strategy, reweight_temperature=cfg["temperature"], reweight_scope=scope)
        trainer = KindTracking(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[callback])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    # On a shared CPU, process CPU time per step is far steadier than wall time (other jobs steal the cores);
    # on CUDA, wall time between synchronised step ends.
    times = callback.step_cpu_times if device.type == "cpu" else callback.step_times
    times = sorted(times[3:] or times)
    median = times[len(times) // 2]
    wall = sorted(callback.step_times[3:] or callback.step_times)
    result = {
        "strategy": strategy or "uniform (transformers.Trainer)", "accumulation": accumulation, "steps": steps,
        "s_per_step_median": median, "timer": "process CPU time" if device.type == "cpu" else "wall (synchronised)",
        "wall_s_per_step_median": wall[len(wall) // 2],
        "tokens_per_s": cfg["batch_size"] * cfg["seq_len"] / median, "peak_memory_mb": peak_memory_mb(device),
    }
    if strategy is not None:
        result["scope"] = scope
    if evaluate:
        result["curve"] = callback.curve
        result["final"] = callback.curve[-1]
        if kinds["redundant"][1]:
            result["mean_relative_weight"] = {k: s / n for k, (s, n) in kinds.items() if n}
    return result


def plot(results, data, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in results.items():
        steps = [p["step"] for p in run["curve"]]
        axes[0].plot(steps, [p["diverse"] for p in run["curve"]], label=name)
        axes[1].plot(steps, [p["redundant"] for p in run["curve"]], label=name)
    axes[0].axhline(data["diverse_floor"], color="grey", ls="--", lw=0.8, label="floor (true chain entropy)")
    axes[0].set_title("held-out loss, diverse documents")
    axes[1].set_title("held-out loss, redundant documents")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("mean next-token NLL (nats)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(args) -> int:
    import torch

    cfg = resolve(args)
    if cfg["device"] == "cuda" and not torch.cuda.is_available():
        print("--device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    torch.manual_seed(cfg["seed"])
    threads = torch.get_num_threads()
    if cfg["device"] == "cpu":
        torch.set_num_threads(cfg["threads"])
    try:
        return _run(args, cfg)
    finally:
        torch.set_num_threads(threads)


def _run(args, cfg) -> int:
    import torch
    import transformers

    corpus = Corpus(cfg["seed"], cfg["seq_len"])
    data = corpus.build(cfg["n_train"], cfg["redundant_fraction"])
    started = time.perf_counter()

    runs = {"uniform": train_run("uniform", cfg, data, corpus)}
    for strategy in [cfg["strategy"], *cfg["extra_strategies"]]:
        runs[strategy] = train_run(strategy, cfg, data, corpus, strategy=strategy)
        print(f"  {strategy} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    # Throughput only (no evaluation, no instrumentation): the cost of reweighting per step. The variants run
    # in alternation for --throughput-rounds rounds and each keeps its fastest round, so a burst of load on
    # a shared machine does not land on one variant only.
    n, s = cfg["throughput_steps"], cfg["strategy"]
    variants = {
        "uniform, accumulation 1": {},
        f"{s}, accumulation 1": {"strategy": s},
        "uniform, accumulation 2": {"accumulation": 2},
        f"{s}, accumulation 2, scope accumulation": {"strategy": s, "accumulation": 2},
        f"{s}, accumulation 2, scope micro_batch": {"strategy": s, "accumulation": 2, "scope": "micro_batch"},
    }
    throughput = {}
    for round_ in range(cfg["throughput_rounds"]):
        for i, (name, kwargs) in enumerate(variants.items()):
            run = train_run(f"t{i}", cfg, data, corpus, steps=n, evaluate=False, **kwargs)
            if name not in throughput or run["s_per_step_median"] < throughput[name]["s_per_step_median"]:
                throughput[name] = run
    print(f"  throughput done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    base1, base2 = throughput["uniform, accumulation 1"]["tokens_per_s"], throughput["uniform, accumulation 2"]["tokens_per_s"]
    for name, run in throughput.items():
        run["throughput_ratio_to_uniform"] = run["tokens_per_s"] / (base1 if "accumulation 1" in name else base2)

    uniform, main_run = runs["uniform"], runs[cfg["strategy"]]
    ratios = {
        "heldout_diverse_loss": main_run["final"]["diverse"] / uniform["final"]["diverse"],
        "heldout_redundant_loss": main_run["final"]["redundant"] / uniform["final"]["redundant"],
        "throughput_accumulation_1": throughput[f"{cfg['strategy']}, accumulation 1"]["throughput_ratio_to_uniform"],
        "throughput_accumulation_2_scope_accumulation":
            throughput[f"{cfg['strategy']}, accumulation 2, scope accumulation"]["throughput_ratio_to_uniform"],
        "throughput_accumulation_2_scope_micro_batch":
            throughput[f"{cfg['strategy']}, accumulation 2, scope micro_batch"]["throughput_ratio_to_uniform"],
    }
    # Convergence speed, not just the end point: the mean of the held-out diverse curve, and the first evaluated
    # step at which a run reaches uniform's final held-out diverse loss.
    target = uniform["final"]["diverse"]
    for name, run in runs.items():
        run["mean_heldout_diverse_loss_over_training"] = sum(p["diverse"] for p in run["curve"][1:]) / max(1, len(run["curve"]) - 1)
        run["steps_to_uniform_final_diverse_loss"] = next((p["step"] for p in run["curve"] if p["diverse"] <= target), None)
    reached = main_run["steps_to_uniform_final_diverse_loss"]
    ratios["steps_to_uniform_final_diverse_loss"] = reached / cfg["steps"] if reached else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_path = out.with_suffix(".png")
    plot(runs, data, plot_path)
    report = {
        "command": " ".join(sys.argv), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "device": torch.cuda.get_device_name() if cfg["device"] == "cuda" else "cpu",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "config": cfg, "corpus": {"vocab_size": corpus.vocab_size, "diverse_floor_nats": data["diverse_floor"],
                                  "n_train": len(data["train"]), "redundant_fraction": cfg["redundant_fraction"]},
        "runs": runs, "throughput": throughput, "ratios": ratios, "plot": str(plot_path),
        "wall_s": time.perf_counter() - started,
    }
    out.write_text(json.dumps(report, indent=2))

    print(f"\nheld-out loss after {cfg['steps']} steps (floor on diverse: {data['diverse_floor']:.3f} nats)")
    print(f"{'run':<12}{'diverse':>10}{'redundant':>12}{'mean div.':>11}{'w redundant':>13}{'w diverse':>11}")
    for name, run in runs.items():
        w = run.get("mean_relative_weight", {})
        print(f"{name:<12}{run['final']['diverse']:>10.4f}{run['final']['redundant']:>12.5f}"
              f"{run['mean_heldout_diverse_loss_over_training']:>11.4f}{w.get('redundant', 1.0):>13.3f}{w.get('diverse', 1.0):>11.3f}")
    timer = next(iter(throughput.values()))["timer"]
    print(f"\nthroughput (median step by {timer}, tokens/s, ratio to uniform at the same accumulation, peak memory MB)")
    for name, run in throughput.items():
        print(f"  {name:<44}{run['s_per_step_median'] * 1000:>8.1f} ms {run['tokens_per_s']:>10.0f} "
              f"{run['throughput_ratio_to_uniform']:>7.3f} {run['peak_memory_mb']:>9.0f}")
    print("\nratios (reweighted / uniform):", json.dumps({k: None if v is None else round(v, 4) for k, v in ratios.items()}))
    print(f"wrote {out} and {plot_path} ({report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(make_parser().parse_args()))
