"""`fairalign eval toxicity`: RealToxicityPrompts-style toxicity of one model, an alias of
`fairalign eval run --tasks toxicity` (one pipeline: the same code, settings and numbers as the suite).

Generates k continuations per prompt (resumable: rerun the same command after an interruption), scores
them, measures fluency and diversity, and writes to --out (the suite's layout):
    results.json, report.html, report.md        metrics with 95% CIs and n, settings, provenance
    systems/<name>/toxicity.json                the per-task record (per-prompt values, checksummed)
    systems/<name>/toxicity/records.jsonl       one scored record per continuation
    systems/<name>/toxicity/per_prompt.jsonl    one row per prompt (max / mean toxicity, counts)
    systems/<name>/toxicity/cache/              generation and score caches (what makes a rerun resume)

Rerunning with the same --out resumes, batch by batch, to the numbers an uninterrupted run gives. --out is
held for the run: a second run on it is refused, naming the holder.

Examples:
    fairalign eval toxicity --model smollm2 --prompts allenai/real-toxicity-prompts --challenging --limit 200 --out runs/tox
    fairalign eval toxicity --model ./my-checkpoint --prompts prompts.jsonl --scorer profanity --out runs/tox
    fairalign eval toxicity --model smollm2 --prompts prompts.jsonl --scorer perspective --out runs/tox  # $PERSPECTIVE_API_KEY
Defaults not given on the command line come from eval/tasks/toxicity.yaml (or --task).
"""
from __future__ import annotations

import argparse


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model to evaluate: Hub id, local directory, or 'smollm2' (embedded)")
    p.add_argument("--prompts", default=None, help="local .jsonl/.txt of prompts or a Hub dataset id (default: the task's dataset)")
    p.add_argument("--out", required=True, help="output directory (rerunning with the same --out resumes)")
    p.add_argument("--task", default=None, help="task variant ('challenging') or a task YAML path (default eval/tasks/toxicity.yaml)")
    p.add_argument("--challenging", action="store_true", help="RealToxicityPrompts' challenging subset only")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N prompts (random N with --shuffle-seed)")
    p.add_argument("--shuffle-seed", type=int, default=None, help="seed for a random --limit subset")
    g = p.add_argument_group("generation (defaults: the task's generation_kwargs)")
    g.add_argument("--num-samples", type=int, default=None, help="k continuations per prompt (protocol: 25)")
    g.add_argument("--max-new-tokens", type=int, default=None, help="new tokens per continuation (protocol: 20)")
    g.add_argument("--top-p", type=float, default=None, help="nucleus p (protocol: 0.9)")
    g.add_argument("--temperature", type=float, default=None, help="temperature (protocol: 1.0)")
    g.add_argument("--batch-size", type=int, default=8, help="prompts per generate call (x k sequences)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed")
    g.add_argument("--use-chat-template", action="store_true", help="wrap prompts as a user turn (instruction models)")
    g.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    g.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: float32 on CPU, bf16 on CUDA)")
    s = p.add_argument_group("scoring (defaults: the task's scorer)")
    s.add_argument("--scorer", default=None, help="auto | hf-classifier | perspective | profanity | hatesonar | better-profanity | a classifier's Hub id or path")
    s.add_argument("--scorer-model", default=None, help="classifier for auto / hf-classifier (default unitary/toxic-bert)")
    s.add_argument("--scorer-label", default=None, help="label of the classifier's config.id2label (default 'toxic')")
    s.add_argument("--scorer-batch-size", type=int, default=None, help="texts per classifier batch")
    s.add_argument("--perspective-qps", type=float, default=None, help="Perspective queries per second")
    s.add_argument("--threshold", type=float, default=None, help="toxic when score >= threshold (default 0.5)")
    f = p.add_argument_group("fluency")
    f.add_argument("--ppl-model", default=None, help="evaluator LM for perplexity ('none' to skip; default: the task's, smollm2)")
    f.add_argument("--ppl-batch-size", type=int, default=None, help="sequences per perplexity batch")
    p.add_argument("--num-resamples", type=int, default=None, help="bootstrap resamples (default: the task's, 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


# flag -> the task setting it sets (flags left at None keep the task's default)
SETTING_FLAGS = ("prompts", "limit", "shuffle_seed", "num_samples", "max_new_tokens", "top_p", "temperature",
                 "use_chat_template", "scorer", "scorer_model", "scorer_label", "scorer_batch_size", "perspective_qps",
                 "threshold", "ppl_model", "ppl_batch_size")


def build_config(args):
    """The suite config this command stands for: one system, the toxicity task (or the variant --task names)."""
    import os
    from pathlib import Path

    from fairalign.eval.suite.config import SuiteConfig

    task = "toxicity"
    if args.task and args.task.endswith((".yaml", ".yml")):  # a task file of your own: its folder joins the registry
        os.environ["FAIRALIGN_TASKS"] = os.pathsep.join(filter(None, [str(Path(args.task).resolve().parent),
                                                                      os.environ.get("FAIRALIGN_TASKS")]))
        task = Path(args.task).stem
    elif args.task:
        task = f"toxicity_{args.task}"
    settings = {k: getattr(args, k) for k in SETTING_FLAGS if getattr(args, k) is not None}
    if not args.use_chat_template:  # a store_true flag left off keeps the task's default
        settings.pop("use_chat_template")
    if args.challenging:
        settings["challenging_only"] = True
    suite = {"seed": args.seed, "batch_size": args.batch_size, "device": args.device, "dtype": args.dtype}
    if args.num_resamples is not None:
        suite["num_resamples"] = args.num_resamples
    return SuiteConfig.from_dict({"systems": [{"name": "model", "model": args.model}], "tasks": [task],
                                  "out": args.out, **suite, task: settings})


def main(args: argparse.Namespace) -> int:
    from fairalign.scripts.eval_run import run_and_summarize

    return run_and_summarize(build_config(args), progress=not args.no_progress)
