"""The main job: all three uses of fairalign, end to end, on the embedded SmolLM2-135M-Instruct.

    bash scripts/setup.sh demo          # fresh machine: install, then this
    fairalign demo --out outputs/demo   # already installed

1. rDPO LoRA fine-tune on the embedded preference pairs; before/after preference accuracy and reward
   margins on held-out pairs; the adapter is saved.
Every step prints what it does and roughly how long it takes on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "align" / "resources"


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2", help="model to tune (default: the embedded SmolLM2)")
    p.add_argument("--out", default="outputs/demo", help="output directory")
    p.add_argument("--steps", type=int, default=12, help="rDPO optimisation steps")
    p.add_argument("--flip_rate", type=float, default=0.1)
    return p


class Progress:
    def __init__(self, total: int):
        self.total, self.i, self.t0 = total, 0, time.time()

    def step(self, what: str, estimate: str):
        self.i += 1
        print(f"\n[{self.i}/{self.total}] {what} (about {estimate}; {time.time() - self.t0:.0f} s elapsed)", flush=True)


def train_rdpo(args, out: Path, progress: Progress) -> dict:
    from fairalign.scripts.train import build_trainer, resolve_args

    progress.step("rDPO fine-tune of a LoRA adapter on the embedded preference pairs", "1-3 min")
    script_args, config = resolve_args(None, [
        "--method", "rdpo", "--model_name_or_path", args.model, "--use_peft", "true",
        "--dataset_path", str(RESOURCES / "preferences_demo_train.jsonl"),
        "--eval_dataset_path", str(RESOURCES / "preferences_demo_heldout.jsonl"),
        "--max_length", "128", "--beta", "0.1", "--flip_rate", str(args.flip_rate),
        "--learning_rate", "5e-4", "--per_device_train_batch_size", "4", "--max_steps", str(args.steps),
        "--lr_scheduler_type", "constant", "--logging_steps", str(max(1, args.steps // 4)), "--save_strategy", "no",
        "--report_to", "none", "--output_dir", str(out / "rdpo-adapter"), "--seed", "0", "--disable_tqdm", "false",
    ])
    trainer = build_trainer(script_args, config)
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
    return result


def main(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(total=1)
    summary = {"rdpo": train_rdpo(args, out, progress)}
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nDone in {time.time() - progress.t0:.0f} s. Summary: {out / 'demo_summary.json'}")
    return 0
