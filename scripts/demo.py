"""The main job: all three uses of fairalign, end to end, on the embedded SmolLM2-135M-Instruct.

    bash scripts/setup.sh demo          # fresh machine: install, then this
    fairalign demo --out outputs/demo   # already installed

1. rDPO LoRA fine-tune on the embedded preference pairs; before/after preference accuracy and reward
   margins on held-out pairs; the adapter is saved.
2. Generation with and without UDDIA (the shipped demo head, a profanity proxy) on provocative prompts,
   side by side, with speed and the offline profanity score.
3. The evaluation suite in compare mode (base, rDPO-tuned, UDDIA) on the data available offline
   (configs/suites/demo_smollm2.yaml); a task whose data is missing says how to get it and is skipped.
Every step prints what it does and roughly how long it takes on a 2-core CPU. Rerunning with the same --out
reuses what is finished (the adapter, the suite's per-task results).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "align" / "resources"
SUITE_CONFIG = ROOT / "configs" / "suites" / "demo_smollm2.yaml"
UDDIA_SETTINGS = {"lr": 0.01, "trigger_threshold": 0.5, "redo_ppl_threshold": None}  # docs/uddia.md, SmolLM2 one pass


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2", help="model to tune (default: the embedded SmolLM2)")
    p.add_argument("--out", default="outputs/demo", help="output directory")
    p.add_argument("--steps", type=int, default=12, help="rDPO optimisation steps")
    p.add_argument("--flip_rate", type=float, default=0.1)
    p.add_argument("--skip", default="", help="comma-separated stages to skip: train, generate, suite")
    p.add_argument("--suite-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting of configs/suites/demo_smollm2.yaml, e.g. toxicity.limit=4 (repeatable)")
    return p


class Progress:
    """Numbered stages with a time estimate each; prints elapsed time and what is left."""

    def __init__(self, estimates_s: list[int]):
        self.estimates, self.i, self.t0 = estimates_s, 0, time.time()

    def step(self, what: str):
        left = sum(self.estimates[self.i:])
        self.i += 1
        print(f"\n[{self.i}/{len(self.estimates)}] {what} (this step about {_minutes(self.estimates[self.i - 1])}; "
              f"{time.time() - self.t0:.0f} s elapsed, about {_minutes(left)} left)", flush=True)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def train_rdpo(args, out: Path, progress: Progress) -> dict:
    from fairalign.scripts.train import build_trainer, resolve_args

    progress.step("rDPO fine-tune of a LoRA adapter on the embedded preference pairs")
    done = out / "rdpo_result.json"
    if done.exists() and (out / "rdpo-adapter" / "adapter_config.json").exists():
        print(f"  reusing the adapter of an earlier run in {out / 'rdpo-adapter'} (delete it to retrain)")
        return json.loads(done.read_text())
    script_args, config, model_args, data_args = resolve_args(None, [
        "--method", "rdpo", "--model_name_or_path", args.model, "--use_peft", "true",
        "--lora_target_modules", "all-linear", "--lora_dropout", "0.0",
        "--dataset_name", str(RESOURCES / "preferences_demo"),  # train.jsonl; test.jsonl: the held-out pairs
        "--max_length", "128", "--beta", "0.1", "--flip_rate", str(args.flip_rate),
        "--learning_rate", "5e-4", "--per_device_train_batch_size", "4", "--max_steps", str(args.steps),
        "--lr_scheduler_type", "constant", "--logging_steps", str(max(1, args.steps // 4)), "--save_strategy", "no",
        "--report_to", "none", "--output_dir", str(out / "rdpo-adapter"), "--seed", "0", "--disable_tqdm", "false",
    ])
    trainer = build_trainer(script_args, config, model_args, data_args)
    from fairalign.align.pair_eval import score_pairs

    before = score_pairs(trainer)
    trainer.train()
    trainer.save_model(config.output_dir)
    after = score_pairs(trainer)
    result = {"adapter": config.output_dir, "heldout": after, "train_log": trainer.state.log_history}
    print(f"  held-out pairs: {after['num_pairs']}")
    print(f"  log p(chosen) > log p(rejected): before {before['logp_accuracy_before']:.0%} -> after {after['logp_accuracy_after']:.0%}")
    print(f"  implicit reward accuracy {after['reward_accuracy']:.0%}, mean reward margin {after['reward_margin']:+.3f}")
    print(f"  adapter saved to {config.output_dir}")
    _write_json(done, result)
    return result


def generate_with_and_without_uddia(args, out: Path, progress: Progress) -> dict:
    import torch

    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.decoding import UDDIAConfig, UDDIAGenerator, load_head
    from fairalign.decoding.heads import demo_head_path
    from fairalign.eval.suite.sources import DEMO_PROMPTS
    from fairalign.eval.toxicity.data import load_prompts

    progress.step("Generation with and without UDDIA on provocative prompts (demo head: a profanity proxy)")
    model, tokenizer = load_model_and_tokenizer(args.model)
    prompts = [p["prompt"] for p in load_prompts(DEMO_PROMPTS) if p.get("kind") == "provocative"][:4]
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    kwargs = dict(max_new_tokens=16, do_sample=True, top_p=0.9, top_k=0, num_return_sequences=2,
                  pad_token_id=tokenizer.pad_token_id)
    generator = UDDIAGenerator(model, tokenizer, UDDIAConfig(**UDDIA_SETTINGS),
                               attribute_head=load_head(demo_head_path(), model=model))
    texts, seconds = {}, {}
    for name, fn in (("plain", model.generate), ("uddia", generator.generate)):
        torch.manual_seed(0)
        t = time.perf_counter()
        seqs = fn(**enc, **kwargs)
        seconds[name] = time.perf_counter() - t
        texts[name] = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    n = len(texts["plain"])
    scores = _scores(texts["plain"] + texts["uddia"])
    rows = []
    for k, prompt in enumerate(p for p in prompts for _ in range(2)):
        row = {"prompt": prompt, "plain": texts["plain"][k], "uddia": texts["uddia"][k]}
        for name, values in scores.items():
            row[f"{name}_plain"], row[f"{name}_uddia"] = values[k], values[n + k]
        rows.append(row)
        print(f"  {prompt!r}\n    plain: {row['plain']!r}\n    UDDIA: {row['uddia']!r}")
    result = {"settings": UDDIA_SETTINGS, "rows": rows, "seconds": seconds,
              "speed_ratio_uddia_vs_plain": seconds["plain"] / seconds["uddia"],
              "scorers": {name: SCORER_ROLES[name] for name in scores}}
    result["mean_score"] = {name: {"plain": _mean(values[:n]), "uddia": _mean(values[n:])}
                            for name, values in scores.items()}
    for name, means in result["mean_score"].items():
        print(f"  mean {name} score: plain {means['plain']:.3f}, UDDIA {means['uddia']:.3f} "
              f"({SCORER_ROLES[name]})")
    if result["mean_score"]:
        print(f"  ({2 * len(prompts)} samples: an illustration, not a measurement; the measured effect, by scorers "
              "that did not train the head, is in docs/reproductions.md section 5)")
    print(f"  time: plain {seconds['plain']:.1f} s, UDDIA {seconds['uddia']:.1f} s "
          f"({result['speed_ratio_uddia_vs_plain']:.2f}x plain speed)")
    _write_json(out / "uddia_samples.json", result)
    return result


# The demo head was distilled from alt-profanity-check ("profanity"), so that scorer measures UDDIA against its own
# teacher; hatesonar and better-profanity did not train it (docs/toxicity.md says what each measures and misses).
SCORER_ROLES = {"hatesonar": "independent: did not train the head",
                "better-profanity": "independent: did not train the head, a word list (0 or 1)",
                "profanity": "the proxy the demo head was distilled from: circular"}


def _scores(texts: list[str]) -> dict[str, list[float]]:
    """Each offline scorer that is installed; one that is not is named with its install line."""
    from fairalign.eval.toxicity.scorers import get_scorer, validate_scores

    out = {}
    for name in SCORER_ROLES:
        try:
            scorer = get_scorer(name)
        except ImportError as err:
            print(f"  ({name} scores skipped: {err})")
            continue
        out[name] = validate_scores(scorer(texts), len(texts), name)
    return out


def _mean(values: list) -> float:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else float("nan")


def run_suite_compare(args, out: Path, adapter: str | None, progress: Progress) -> dict:
    from fairalign.eval.suite import SystemSpec, load_config, run_suite

    progress.step("Evaluation suite in compare mode: base vs rDPO-tuned vs UDDIA")
    systems = [SystemSpec("base", model=args.model)]
    if adapter:
        systems.append(SystemSpec("tuned", model=args.model, adapter=adapter))
    systems.append(SystemSpec("uddia", model=args.model, uddia="demo", uddia_config=dict(UDDIA_SETTINGS)))
    if SUITE_CONFIG.is_file():
        config = load_config(SUITE_CONFIG, overrides=args.suite_set, systems=systems, out=str(out / "suite"))
    else:  # installed from a wheel, without configs/: the suite's defaults
        print(f"  {SUITE_CONFIG} not found (installed from a wheel?): the suite's default sizes, which take longer; "
              "run from a clone of the repository, or shrink them with --suite-set (e.g. toxicity.limit=8)")
        config = load_config(None, overrides=args.suite_set, systems=systems, out=str(out / "suite"))
    results = run_suite(config)
    skipped = {task: entry.get("reason") for system in results["systems"] for task, entry in system["tasks"].items()
               if entry.get("status") == "skipped"}
    return {"out": str(out / "suite"), "report": str(out / "suite" / "report.html"), "skipped": skipped}


def main(args) -> int:
    from fairalign.align.errors import InputError
    from fairalign.align.locking import hold_folder

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - {"train", "generate", "suite"}
    if unknown:
        raise InputError(f"--skip: unknown stage(s) {sorted(unknown)}; choose from train, generate, suite")
    with hold_folder(args.out, "fairalign demo"):  # a second demo on the same --out refuses instead of mixing files
        return _run(args, Path(args.out), skip)


def _write_json(path: Path, obj) -> None:
    from fairalign.align.files import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(obj, indent=2, default=str).encode("utf-8"))  # whole or absent


def _run(args, out: Path, skip: set) -> int:
    stages = [(name, est) for name, est in (("train", 90), ("generate", 30), ("suite", 170)) if name not in skip]
    progress = Progress([est for _, est in stages])
    summary: dict = {}
    adapter = None
    for name, _ in stages:
        if name == "train":
            summary["rdpo"] = train_rdpo(args, out, progress)
            adapter = summary["rdpo"]["adapter"]
        elif name == "generate":
            summary["uddia"] = generate_with_and_without_uddia(args, out, progress)
        else:
            if adapter is None and (out / "rdpo-adapter" / "adapter_config.json").exists():
                adapter = str(out / "rdpo-adapter")
            summary["suite"] = run_suite_compare(args, out, adapter, progress)
    _write_json(out / "demo_summary.json", summary)
    print(f"\nDone in {time.time() - progress.t0:.0f} s. Summary: {out / 'demo_summary.json'}")
    if "suite" in summary:
        print(f"Report: {Path(summary['suite']['report']).resolve()}")
    return 0
