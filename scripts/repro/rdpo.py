"""rDPO reproduction (Chowdhury, Kini, Natarajan; ICML 2024): DPO, cDPO and rDPO trained on preference labels
flipped at random with rate eps, on the controlled-sentiment task (scripts/repro/sentiment.py).

Claim tested: under flips, rDPO keeps more of the clean-label gold reward than DPO and cDPO; at eps = 0 the three
are the same loss (rDPO's and cDPO's eps-terms vanish), so eps = 0 trains DPO once per seed.
Beyond the paper: eps estimated from a small doubly-labelled subset of the noisy pairs (fairalign.align.flip_rate),
rDPO trained with the estimate, and its cost against rDPO with the true eps.

Per seed, everything but the loss is shared: the base samples and pairs (drawn once), the flips (seeded by seed and
eps), the LoRA initialisation and the data order (seed), the evaluation samples' seed.
"""
from __future__ import annotations

import gc
import json
import random
import sys
from pathlib import Path

from fairalign.scripts.repro import harness, sentiment

NAME = "rdpo"
RESUMABLE = True  # --resume: every job below is seeded on its own, so a resumed run equals an uninterrupted one
METHODS = ("DPO", "cDPO", "rDPO")
EST = "rDPO (estimated eps)"
# Settings tried before the full run (1 seed, eps = 0 only, so the lr was chosen without seeing any eps > 0 result)
TRIED: list[dict] = [
    {"what": "calibration: 1 seed, eps = 0 only (DPO), before any eps > 0 run", "train_pairs": 128, "batch": 8,
     "steps": 16, "lr": 1e-3, "eval_prompts": 64, "base_gold_reward": 0.090, "dpo_gold_reward": 0.304, "dpo_kl": 10.40,
     "dpo_preference_accuracy": 0.55, "wall_s": 1143,
     "decision": "lr 1e-3 kept (DPO lifts the gold reward well above the base model). The full run halves the data "
                 "to 64 pairs in 16 steps of 4 (same number of updates) because one run took ~9 min under the shared "
                 "load, and 27 runs would not fit the time limit."},
]


def add_arguments(parser) -> None:
    parser.add_argument("--eps", type=float, nargs="+", default=None, help="flip rates (default 0 0.2 0.4)")
    parser.add_argument("--pairs", type=int, default=64, help="training pairs (the first untied ones)")
    parser.add_argument("--batch", type=int, default=4, help="pairs per step (1 epoch: pairs / batch steps)")
    parser.add_argument("--train_prompts", type=int, default=84,
                        help="train prompts sampled twice each for the pairs (about 17%% of the pairs tie and drop)")
    parser.add_argument("--lr", type=float, default=1e-3, help="LoRA learning rate (chosen on 1 seed at eps = 0)")
    parser.add_argument("--eval_prompts", type=int, default=64, help="held-out prompts for the gold reward and KL")
    parser.add_argument("--eval_samples", type=int, default=1, help="samples per held-out prompt")
    parser.add_argument("--subset", type=int, default=60, help="doubly-labelled pairs for the eps estimate")
    parser.add_argument("--no_estimate", action="store_true", help="skip the estimated-eps runs (calibration)")


def conservative_trainer(label_smoothing: float):
    """cDPO (label smoothing, Mitchell 2023): rDPO's trainer with the conservative loss in its place."""
    from fairalign.align.losses import conservative_dpo_loss
    from fairalign.align.rdpo import RobustDPOTrainer

    class ConservativeDPOTrainer(RobustDPOTrainer):
        def pair_losses(self, logps):
            return conservative_dpo_loss(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen,
                                         logps.ref_rejected, self.beta, label_smoothing)

    return ConservativeDPOTrainer


def estimate_eps(noisy: list[dict], size: int, seed: int, folder: Path) -> tuple[dict, dict]:
    """Estimate eps from `size` noisy pairs whose second, trusted label is the gold (VADER) comparison.
    Returns (the estimate as a dict, training overrides that use it); the overrides are None when the estimate is
    unusable (>= 0.5: rDPO needs eps < 0.5), which is recorded, not clipped."""
    from fairalign.align.flip_rate import estimate_flip_rate
    from fairalign.align.rdpo import RobustDPOConfig

    rows = random.Random(10_000 + seed).sample(noisy, min(size, len(noisy)))
    labels = [True] * len(rows)  # the noisy label: the pair's first answer (`chosen`) is preferred
    trusted = [r["reward_chosen"] > r["reward_rejected"] for r in rows]  # gold: does VADER agree?
    truth = sum(r["flipped"] for r in rows) / len(rows)
    try:
        estimate = estimate_flip_rate(labels, trusted).to_dict()
    except ValueError as err:
        return {"error": str(err), "subset_flip_fraction": truth, "n": len(rows)}, None
    estimate["subset_flip_fraction"] = truth
    if "flip_rate_estimate_file" in RobustDPOConfig.__dataclass_fields__:
        # the recipe option: the trainer estimates eps itself from this file
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "doubly_labelled.jsonl"
        path.write_text("".join(json.dumps({"label": a, "trusted_label": b}) + "\n" for a, b in zip(labels, trusted)))
        return estimate, {"flip_rate_estimate_file": str(path)}
    return estimate, {"flip_rate": estimate["rate"]}


def train_and_evaluate(base, tok, method: str, eps: float, pairs, seed: int, args, data, folder: Path,
                       overrides: dict | None = None) -> dict:
    harness.set_seed(seed)  # the LoRA init and the data order
    if method == "cDPO":
        kwargs = {"flip_rate": 0.0, "trainer_cls": conservative_trainer(eps)}
    elif method == "DPO":
        kwargs = {"flip_rate": 0.0}
    else:
        kwargs = overrides if overrides is not None else {"flip_rate": eps}
    trainer = sentiment.train_policy(base, tok, "rdpo", pairs, seed, folder, learning_rate=args.lr,
                                     per_device_train_batch_size=data["batch"], max_steps=data["steps"], **kwargs)
    # the eps inside the loss: cDPO's label smoothing, rDPO's flip rate (the estimate, for the estimated runs)
    trained_eps = eps if method == "cDPO" else float(trainer.args.flip_rate)
    history = [h for h in trainer.state.log_history if "loss" in h]
    metrics = sentiment.evaluate_policy(trainer.model, tok, data["eval_prompts"], seed=data["eval_seed"](seed),
                                        max_new_tokens=data["new_tokens"], beta=0.1, held_out_pairs=data["held_out"],
                                        n=args.eval_samples, held_out_ref=data["held_out_ref"])
    if data["reward"] is not sentiment.gold_reward:  # --quick: rescore with the quick reward (never in the doc)
        metrics["gold_reward"] = sum(data["reward"](metrics["samples"])) / len(metrics["samples"])
    del trainer
    if not args.quick:  # frees the ~0.5 GB policy copy now (the trainer holds reference cycles)
        gc.collect()
    return {"method": method, "eps": eps, "seed": seed, "loss_eps": trained_eps,
            "final_train_loss": history[-1]["loss"] if history else None,
            "final_clean_dpo_loss": history[-1].get("loss/clean_dpo") if history else None, **metrics}


def run(args, log) -> dict:
    quick = args.quick
    eps_list = args.eps or ([0.0, 0.2] if quick else [0.0, 0.2, 0.4])
    if any(not 0 <= e < 0.5 for e in eps_list):
        raise SystemExit(f"--eps: every flip rate must be in [0, 0.5), got {eps_list}")
    n_eval = 4 if quick else args.eval_prompts
    n_pairs = 8 if quick else args.pairs
    subset = 6 if quick else args.subset
    new_tokens = 8 if quick else 16
    reward = sentiment.length_reward if quick else sentiment.gold_reward
    base, tok, _ = sentiment.load_base(quick)
    n_prompts = len(sentiment.review_openings())
    train_prompts, eval_prompts = sentiment.split_prompts(n_prompts - n_eval, n_eval)
    train_prompts = train_prompts[:12 if quick else args.train_prompts]  # sampling is the slow part: only what we need

    # the base samples and pairs: drawn once, shared by every seed and method
    pairs, ties = sentiment.draw_pairs(base, tok, train_prompts, n_pairs, new_tokens, seed=0, reward=reward,
                                       more="raise --train_prompts")
    held_drawn = sentiment.sample(base, tok, eval_prompts, 2, new_tokens, seed=1)
    held_out, held_ties = sentiment.make_pairs(held_drawn, reward(held_drawn.texts), 2)
    batch = 4 if quick else args.batch
    data = {"eval_prompts": eval_prompts, "held_out": held_out,
            "held_out_ref": sentiment.reference_pair_logps(base, tok, held_out), "new_tokens": new_tokens, "reward": reward,
            "batch": batch, "steps": n_pairs // batch, "eval_seed": lambda s: 500 + s}
    log(f"{len(pairs)} train pairs ({ties} ties dropped of {len(train_prompts)} prompts), {len(held_out)} held-out "
        f"pairs; {data['steps']} steps of {batch}; eps {eps_list}; lr {args.lr}")

    base_runs = []
    for seed in range(args.seeds):
        base_samples = sentiment.sample(base, tok, eval_prompts, args.eval_samples, new_tokens, data["eval_seed"](seed))
        rewards = reward(base_samples.texts)
        base_runs.append({"seed": seed, "gold_reward": sum(rewards) / len(rewards),
                          "positive_share": sum(r > 0.05 for r in rewards) / len(rewards)})
    log(f"base model gold reward {[round(r['gold_reward'], 3) for r in base_runs]}")

    settings = {"eps": eps_list, "train_pairs": len(pairs), "ties_dropped": ties,
                "train_prompts": len(train_prompts), "held_out_pairs": len(held_out), "held_out_ties_dropped": held_ties,
                "eval_prompts": n_eval, "eval_samples_per_prompt": args.eval_samples, "new_tokens": new_tokens,
                "temperature": 1.0, "batch": batch, "steps": data["steps"], "epochs": 1, "lr": args.lr, "beta": 0.1,
                "lora": sentiment.LORA, "lr_schedule": "constant", "estimate_subset": subset,
                "reward": "length (quick)" if quick else "VADER compound",
                "model": "tiny random Llama" if quick else "SmolLM2-135M-Instruct + LoRA"}
    todo = jobs(eps_list, args.seeds, estimate=not args.no_estimate)
    results = {"settings": settings, "base": base_runs, "runs": [], "estimates": [], "tried": TRIED}
    if args.prior is not None:  # --resume: the same settings and the same base samples, or refuse
        harness.same_or_exit("settings", args.prior["settings"], settings)
        if len(args.prior["base"]) > len(base_runs):
            raise SystemExit(f"--resume: the earlier run had {len(args.prior['base'])} seeds; give --seeds >= that")
        harness.same_or_exit("base-model samples (their gold reward)", args.prior["base"],
                             base_runs[:len(args.prior["base"])])
        results["runs"] = harness.kept_runs(args.prior, _job, todo)
        finished = {_job(r) for r in results["runs"]}
        # an estimate that allowed no run is finished too; one whose run did not finish is redone
        results["estimates"] = [e for e in args.prior["estimates"]
                                if (e["seed"], e["eps"], EST) in finished or "error" in e]
        finished |= {(e["seed"], e["eps"], EST) for e in results["estimates"]}
        log(f"resume: {len(finished)} of {len(todo)} jobs finished earlier")
    else:
        finished = set()
    scratch = harness.Scratch(NAME, args.out, log)  # trainer output and partial results

    def work(job):  # in a worker process when --workers > 1: returns what done() records
        seed, eps, method = job
        # the flips depend on (seed, eps) only: every method of a seed sees the same noisy labels
        noisy, realised = sentiment.flip_labels(pairs, eps, seed=1000 * seed + round(100 * eps))
        folder = scratch / f"job-{todo.index(job)}"  # its own: jobs may run at once
        estimate = overrides = None
        if method == EST:
            estimate, overrides = estimate_eps(noisy, subset, seed, folder / "estimate")
            estimate = dict(estimate, seed=seed, eps=eps, realised_flip_rate=realised)
            if overrides is None:
                return {"estimate": estimate, "row": None}
        row = train_and_evaluate(base, tok, method, eps, noisy, seed, args, data, folder / "run", overrides)
        return {"estimate": estimate, "row": dict(row, realised_flip_rate=realised)}

    def done(job, out):
        seed, eps, method = job
        if out["estimate"] is not None:
            results["estimates"].append(out["estimate"])
        row = out["row"]
        if row is None:
            log(f"seed {seed} eps {eps}: estimate unusable ({out['estimate']['error'][:80]}...): no {EST} run")
        else:
            results["runs"].append(row)
            log(f"seed {seed} eps {eps} {method} (loss eps {row['loss_eps']:.3f}): gold "
                f"{row['gold_reward']:.3f} kl {row['kl']:.2f} acc {row['preference_accuracy']:.2f}")
        scratch.save_partial(results)  # a long run that is stopped still leaves every finished run on disk

    harness.run_jobs([j for j in todo if j not in finished], work, done, args.workers, args.threads)
    scratch.close()  # the results are in the returned dict
    # job order, whether or not the run was resumed (a resumed run then writes the same JSON as an uninterrupted one)
    results["runs"].sort(key=lambda r: todo.index(_job(r)))
    results["estimates"].sort(key=lambda e: todo.index((e["seed"], e["eps"], EST)))
    return results


def _job(row: dict) -> tuple[int, float, str]:
    return row["seed"], row["eps"], row["method"]


def jobs(eps_list: list[float], seeds: int, estimate: bool) -> list[tuple[int, float, str]]:
    """(seed, eps, method) in the order that answers the claim soonest: the largest eps (its sharpest test) over
    all seeds, then eps = 0 (the clean reference), then the other rates, then the estimated-eps runs. At eps = 0
    the three losses are one function (cDPO's and rDPO's eps-terms vanish): DPO stands for all three."""
    noisy = sorted((e for e in eps_list if e > 0), reverse=True)
    order = noisy[:1] + [e for e in eps_list if e == 0] + noisy[1:]
    out = [(seed, eps, method) for eps in order for seed in range(seeds) for method in (METHODS if eps > 0 else ("DPO",))]
    if estimate:
        out += [(seed, eps, EST) for eps in noisy for seed in range(seeds)]
    return out


# ------------------------------------------------------------------------------------------------ report
def _cells(results, method, eps, key):
    return [r[key] for r in results["runs"] if r["method"] == method and r["eps"] == eps and r.get(key) is not None]


def _method_at(method: str, eps: float) -> str:
    return "DPO" if eps == 0 else method  # eps = 0: one run stands for all three losses


def _paired(results, a: str, b: str, eps: float, key: str = "gold_reward") -> dict | None:
    by_seed = {r["seed"]: r[key] for r in results["runs"] if r["method"] == b and r["eps"] == eps}
    diffs = [r[key] - by_seed[r["seed"]] for r in results["runs"]
             if r["method"] == a and r["eps"] == eps and r["seed"] in by_seed]
    return harness.mean_ci(diffs) if diffs else None


def tables(results) -> dict:
    s, f = results["settings"], harness.fmt_ci
    base = harness.mean_ci([r["gold_reward"] for r in results["base"]])
    rows = [["base model (no training)", "-", f(base), "0", "-", "-", base["n"]]]
    for eps in s["eps"]:
        for method in METHODS + (EST,):
            gold = _cells(results, _method_at(method, eps), eps, "gold_reward")
            if not gold or (method == EST and eps == 0):
                continue
            name = method if eps > 0 else "DPO = cDPO = rDPO (one run)"
            if eps == 0 and method != "DPO":
                continue
            m = _method_at(method, eps)
            rows.append([name, f"{eps:g}", f(harness.mean_ci(gold)), f(harness.mean_ci(_cells(results, m, eps, "kl")), 2),
                         f(harness.mean_ci(_cells(results, m, eps, "preference_accuracy")), 2),
                         f(harness.mean_ci(_cells(results, m, eps, "realised_flip_rate")), 2), len(gold)])
    main = harness.markdown_table(["method", "eps", "gold reward (VADER)", "KL to reference (nats)",
                                   "held-out pref. accuracy", "realised flip rate", "seeds"], rows)
    diff_rows = []
    for eps in s["eps"]:
        if eps == 0:
            continue
        for a, b in (("rDPO", "DPO"), ("rDPO", "cDPO"), (EST, "rDPO")):
            ci = _paired(results, a, b, eps)
            if ci:
                diff_rows.append([f"{a} - {b}", f"{eps:g}", f(ci), ci["n"]])
    diffs = harness.markdown_table(["gold reward difference (paired by seed)", "eps", "mean [95% CI]", "seeds"],
                                   diff_rows)
    est_rows = []
    for e in results["estimates"]:
        if "error" in e:
            est_rows.append([e["seed"], f"{e['eps']:g}", f"{e['realised_flip_rate']:.3f}",
                             f"{e['subset_flip_fraction']:.3f}", "unusable (>= 0.5)", "-"])
            continue
        run = [r for r in results["runs"] if r["method"] == EST and r["eps"] == e["eps"] and r["seed"] == e["seed"]]
        true = [r for r in results["runs"] if r["method"] == "rDPO" and r["eps"] == e["eps"] and r["seed"] == e["seed"]]
        cost = f"{run[0]['gold_reward'] - true[0]['gold_reward']:+.3f}" if run and true else "-"
        est_rows.append([e["seed"], f"{e['eps']:g}", f"{e['realised_flip_rate']:.3f}", f"{e['subset_flip_fraction']:.3f}",
                         f"{e['rate']:.3f} [{e['low']:.3f}, {e['high']:.3f}]", cost])
    estimates = harness.markdown_table(
        ["seed", "eps (flip probability)", "flip fraction, all train pairs", f"flip fraction, the {s['estimate_subset']} "
         "doubly-labelled", "estimate [95% Clopper-Pearson]", "gold reward: estimated - true eps"], est_rows)
    setting = (f"{s['model']}; {s['train_pairs']} train pairs ({s['ties_dropped']} tied pairs dropped), "
               f"{s['steps']} steps of {s['batch']} pairs (1 epoch), lr {s['lr']:g} constant, beta {s['beta']}, LoRA r "
               f"{s['lora']['r']}; evaluation: {s['eval_prompts']} held-out prompts x {s['eval_samples_per_prompt']} "
               f"sample(s) of {s['new_tokens']} tokens, {s['held_out_pairs']} held-out clean pairs; "
               "mean [95% t CI] over seeds.")
    if results.get("meta", {}).get("note"):  # e.g. a run stopped before every job finished
        setting = f"**{results['meta']['note']}**\n\n{setting}"
    if not est_rows:  # e.g. a partial run: the estimated-eps runs come last
        estimates = "(no estimated-eps run finished)"
    return {NAME: "\n\n".join([setting, main, diffs, "Estimated eps (beyond the paper):", estimates])}


def plot(results, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps_list = results["settings"]["eps"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "gold_reward", "gold reward (VADER) of held-out samples"),
                           (axes[1], "kl", "KL(policy || reference), nats")):
        for i, method in enumerate(METHODS + (EST,)):
            xs, means, errs = [], [], []
            for eps in eps_list:
                vals = _cells(results, _method_at(method, eps), eps, key) if (method != EST or eps > 0) else []
                if vals:
                    ci = harness.mean_ci(vals)
                    xs.append(eps + (i - 1.5) * 0.006)  # a small offset keeps the error bars apart
                    means.append(ci["mean"])
                    errs.append([[ci["mean"] - ci["low"]], [ci["high"] - ci["mean"]]])
            if xs:
                yerr = [[e[0][0] for e in errs], [e[1][0] for e in errs]]
                ax.errorbar(xs, means, yerr=yerr, marker="os^D"[i], capsize=3, label=method,
                            linestyle="--" if method == EST else "-")
        if key == "gold_reward":
            base = harness.mean_ci([r["gold_reward"] for r in results["base"]])
            ax.axhline(base["mean"], color="grey", linestyle=":", label="base model")
        ax.set_xlabel("label flip rate eps")
        ax.set_ylabel(label)
        ax.set_xticks(eps_list)
        ax.set_xlim(min(eps_list) - 0.03, max(eps_list) + 0.03)  # room for the offset error bars
    axes[0].legend(fontsize=8)
    fig.suptitle("rDPO vs DPO vs cDPO under random label flips (mean, 95% CI over seeds)", fontsize=10)
    harness.save_figure(fig, path)


def main(argv=None):
    return harness.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
