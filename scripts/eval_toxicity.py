"""`fairalign eval toxicity`: RealToxicityPrompts-style toxicity evaluation of one model.

Generates k continuations per prompt (resumable: rerun the same command after an interruption), scores
them, and writes to --out:
    generations.jsonl  generation cache (append-only; what makes a rerun resume)
    scores.jsonl       score cache (failed scores are retried on a rerun)
    records.jsonl      one scored record per continuation
    per_prompt.jsonl   one row per prompt (max / mean toxicity, counts)
    results.json       metrics with 95% CIs and n, counts, scorer, task version, config, git hash, versions
    report.md          the same for people

Rerunning with the same --out resumes, batch by batch, to the numbers an uninterrupted run gives (a cache
written with another --batch-size, --seed or sampling setting is refused, naming the setting). --out is
held for the run: a second run on it is refused, naming the holder.

Examples:
    fairalign eval toxicity --model smollm2 --prompts allenai/real-toxicity-prompts --challenging --limit 200 --out runs/tox
    fairalign eval toxicity --model ./my-checkpoint --prompts prompts.jsonl --scorer profanity --out runs/tox
    fairalign eval toxicity --model smollm2 --prompts prompts.jsonl --scorer perspective --out runs/tox  # $PERSPECTIVE_API_KEY
Defaults not given on the command line come from eval/toxicity/task.yaml (or --task).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model to evaluate: Hub id, local directory, or 'smollm2' (embedded)")
    p.add_argument("--prompts", default=None, help="local .jsonl/.txt of prompts or a Hub dataset id (default: the task's dataset)")
    p.add_argument("--out", required=True, help="output directory (rerunning with the same --out resumes)")
    p.add_argument("--task", default=None, help="task variant ('challenging') or a task YAML path (default eval/toxicity/task.yaml)")
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
    s.add_argument("--scorer", default=None, help="auto | hf-classifier | perspective | profanity | a classifier's Hub id or path")
    s.add_argument("--scorer-model", default=None, help="classifier for auto / hf-classifier (default unitary/toxic-bert)")
    s.add_argument("--scorer-label", default=None, help="label of the classifier's config.id2label (default 'toxic')")
    s.add_argument("--scorer-batch-size", type=int, default=32, help="texts per classifier batch")
    s.add_argument("--perspective-qps", type=float, default=1.0, help="Perspective queries per second")
    s.add_argument("--threshold", type=float, default=None, help="toxic when score >= threshold (default 0.5)")
    f = p.add_argument_group("fluency")
    f.add_argument("--ppl-model", default=None, help="evaluator LM for perplexity ('none' to skip; default: the task's, smollm2)")
    f.add_argument("--ppl-batch-size", type=int, default=16, help="sequences per perplexity batch")
    p.add_argument("--num-resamples", type=int, default=None, help="bootstrap resamples (default: the task's, 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def build_scorer(name: str, model: str, label: str, batch_size: int, device: str | None, qps: float):
    from fairalign.eval.toxicity.scorers import SCORERS, get_scorer

    key = name.lower()
    if key == "perspective":
        return get_scorer("perspective", qps=qps)
    if key == "profanity":
        return get_scorer("profanity")
    if key in ("auto", "hf-classifier"):
        return get_scorer(key, model_id_or_path=model, label=label, batch_size=batch_size, device=device)
    if key not in SCORERS:
        return get_scorer(name, label=label, batch_size=batch_size, device=device)
    raise ValueError(f"unsupported --scorer {name!r}")


def provenance() -> dict:
    """Git hash and library versions, so a number can be traced to the code that produced it."""
    from fairalign.align.provenance import environment

    return environment(("fairalign", "torch", "transformers", "datasets", "numpy", "alt-profanity-check"))


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _pick(flag, default):
    """A flag's value, else the task's default."""
    return default if flag is None else flag


def check_flags(args, **resolved) -> None:
    """Every number on the command line (or resolved from the task) finite and in range; InputError names the flag."""
    from fairalign.align.validation import check_number

    ranges = {"num_samples": ("[1, inf)", True), "max_new_tokens": ("[1, inf)", True), "top_p": ("(0, 1]", False),
              "temperature": ("(0, inf)", False), "threshold": ("(0, 1]", False), "num_resamples": ("[1, inf)", True),
              "batch_size": ("[1, inf)", True), "seed": ("[0, inf)", True), "limit": ("[1, inf)", True),
              "shuffle_seed": ("[0, inf)", True), "scorer_batch_size": ("[1, inf)", True),
              "perspective_qps": ("(0, inf)", False), "ppl_batch_size": ("[1, inf)", True)}
    values = {**vars(args), **resolved}
    for name, (interval, integer) in ranges.items():
        if values.get(name) is not None:
            check_number(values[name], "--" + name.replace("_", "-"), interval, integer=integer)


def main(args: argparse.Namespace) -> int:
    from fairalign.align.locking import hold_folder
    from fairalign.eval.suite.sources import require_source
    from fairalign.eval.toxicity import load_task

    task = load_task(args.task)
    gen = task.generation_kwargs
    resolved = dict(num_samples=_pick(args.num_samples, gen.num_samples), max_new_tokens=_pick(args.max_new_tokens, gen.max_new_tokens),
                    top_p=_pick(args.top_p, gen.top_p), temperature=_pick(args.temperature, gen.temperature),
                    threshold=_pick(args.threshold, task.threshold),
                    num_resamples=_pick(args.num_resamples, task.bootstrap.num_resamples))
    # Everything cheap and checkable happens before any model loads (and before --out is created).
    check_flags(args, **resolved)
    if args.prompts is not None:
        require_source(args.prompts, "--prompts", "Pass a local .jsonl/.txt of prompts or a Hub dataset id.")
    out = Path(args.out)
    with hold_folder(out, "fairalign eval toxicity"):  # two runs on one --out would mix their caches
        return _run(args, task, out, **resolved)


def _run(args, task, out: Path, *, num_samples, max_new_tokens, top_p, temperature, threshold, num_resamples) -> int:
    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.align.files import write_bytes_atomic
    from fairalign.eval.toxicity import (compute_toxicity_metrics, evaluate_fluency, generate_continuations,
                                         load_prompts, score_records)
    from fairalign.eval.toxicity.scorers import describe_scorer

    gen = task.generation_kwargs
    scorer_name = args.scorer or task.scorer.name
    ppl_model = args.ppl_model if args.ppl_model is not None else task.fluency.evaluator
    ppl_model = None if ppl_model is None or str(ppl_model).lower() == "none" else ppl_model
    progress = not args.no_progress
    source = args.prompts or task.dataset.path
    is_task_dataset = source == task.dataset.path
    prompts = load_prompts(
        source, challenging_only=args.challenging or task.dataset.challenging_only, limit=args.limit,
        shuffle_seed=args.shuffle_seed, split=task.dataset.split if is_task_dataset else "train",
        revision=task.dataset.revision if is_task_dataset else None,
        prompt_field=task.dataset.prompt_field if is_task_dataset else None,
    )
    if not prompts:
        raise ValueError(f"no prompts left in {source} after filtering; check --prompts / --challenging / --limit")
    scorer = build_scorer(scorer_name, args.scorer_model or task.scorer.model, args.scorer_label or task.scorer.label,
                          args.scorer_batch_size, args.device, args.perspective_qps)
    print(f"[toxicity] {len(prompts)} prompts x {num_samples} samples from {source}; scorer {scorer.describe()['name']}", flush=True)

    model, tokenizer = load_model_and_tokenizer(args.model, dtype=args.dtype, device=args.device)
    records = generate_continuations(
        (model, tokenizer), prompts, num_samples=num_samples, max_new_tokens=max_new_tokens, top_p=top_p,
        batch_size=args.batch_size, cache_path=out / "generations.jsonl", temperature=temperature, do_sample=gen.do_sample,
        seed=args.seed, use_chat_template=args.use_chat_template, progress=progress,
    )
    if hasattr(scorer, "progress"):
        scorer.progress = False  # one bar, over all texts, from score_records
    scored = score_records(records, scorer, batch_size=max(args.scorer_batch_size, 64), cache_path=out / "scores.jsonl",
                           progress=progress)
    result = compute_toxicity_metrics(scored, threshold, num_resamples, task.bootstrap.seed, task.group_by,
                                      scorer_info=describe_scorer(scorer))

    evaluator = None
    if ppl_model is not None:
        evaluator = (model, tokenizer) if ppl_model == args.model else load_model_and_tokenizer(ppl_model, dtype=args.dtype, device=args.device)
    fluency = evaluate_fluency(records, evaluator, distinct_ns=task.fluency.distinct_n, batch_size=args.ppl_batch_size,
                               num_resamples=num_resamples, seed=task.bootstrap.seed, progress=progress)

    config = {k: v for k, v in vars(args).items()}
    config.update(num_samples=num_samples, max_new_tokens=max_new_tokens, top_p=top_p, temperature=temperature,
                  threshold=threshold, num_resamples=num_resamples, scorer=scorer_name, ppl_model=ppl_model, prompts=source)
    summary = {
        "task": task.task, "task_version": task.version, "model": args.model,
        "toxicity": result.to_dict(include_rows=False), "fluency": fluency.to_dict(),
        "config": config, "task_config": task.to_dict(), "provenance": provenance(),
        "files": {"records": "records.jsonl", "per_prompt": "per_prompt.jsonl", "report": "report.md"},
    }
    # Atomic writes: a kill leaves each file either as before or complete.
    write_bytes_atomic(out / "records.jsonl", _jsonl(scored))
    write_bytes_atomic(out / "per_prompt.jsonl", _jsonl(result.prompt_rows))
    write_bytes_atomic(out / "results.json", (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    head = (f"# Toxicity evaluation: `{args.model}`\n\nTask `{task.task}` v{task.version}; prompts: `{source}` "
            f"({len(prompts)}); k = {num_samples}, max_new_tokens = {max_new_tokens}, top_p = {top_p}, "
            f"temperature = {temperature}, seed = {args.seed}.\n\n")
    report = head + result.to_markdown(task) + "\n" + fluency.to_markdown(task)
    write_bytes_atomic(out / "report.md", report.encode("utf-8"))
    print(report)
    print(f"[toxicity] wrote {out}/results.json and report.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(make_parser().parse_args()))
