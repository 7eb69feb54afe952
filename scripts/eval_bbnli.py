"""`fairalign eval bbnli`: NLI bias on BBNLI (or a BBNLI-next-style dataset), JSON + Markdown report.

    # a sequence-classification NLI model (Hub id or local folder)
    fairalign eval bbnli --predictor roberta-large-mnli --kind nli --data ../shared/data/bbnli/bbnli_expanded.csv
    # a causal LM as judge: answer-word probabilities over 3 prompt templates (embedded SmolLM2 by default)
    fairalign eval bbnli --predictor smollm2 --kind judge --data ../shared/data/bbnli/templates --chat-template
    # the QA form, answers sampled and parsed like BBNLI (5 samples), every sample counted as a row
    fairalign eval bbnli --predictor smollm2 --kind judge --form qa --scoring generate --num-samples 5 --expand-samples
    # BBNLI + validated BBNLI-next variants (brittleness is reported when variants are present)
    fairalign eval bbnli --predictor roberta-large-mnli --kind nli --data bbnli_expanded.csv --data validated.csv

Writes <out-dir>/bbnli.json, bbnli.md, bbnli_predictions.jsonl (and bbnli.png with --plot).
"""
from __future__ import annotations

import argparse


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="NLI bias evaluation on BBNLI / BBNLI-next (bias score, "
                                "disaggregated stereotype-aligned rates, brittleness, bootstrap CIs).")
    p.add_argument("--predictor", required=True, help="model: Hub id, local folder, or 'smollm2' (judge)")
    p.add_argument("--kind", choices=["nli", "judge"], default="nli",
                   help="nli: sequence-classification NLI model; judge: causal LM prompted as a judge")
    p.add_argument("--data", action="append", default=None,
                   help="template folder, expanded CSV, validated BBNLI-next CSV, Hub id, or 'demo' (fairalign's demo "
                        "probes, offline; not a benchmark) (repeatable; default: the Hub dataset feyzaakyurek/BBNLI)")
    p.add_argument("--out-dir", "--out", dest="out_dir", default="bbnli_results",
                   help="where the JSON/Markdown/predictions go (held by this run while it writes)")
    p.add_argument("--form", choices=["nli", "qa"], default="nli", help="judge: NLI prompts or the QA form (question column)")
    p.add_argument("--scoring", choices=["loglikelihood", "generate"], default="loglikelihood",
                   help="judge: answer-word probabilities (no sampling) or parsed generations")
    p.add_argument("--templates", nargs="+", default=None, help="judge: template names (default: all of the form)")
    p.add_argument("--num-samples", type=int, default=1, help="judge/generate: samples per prompt (BBNLI: 5)")
    p.add_argument("--do-sample", action="store_true", help="judge/generate: sample instead of greedy decoding")
    p.add_argument("--parsing", choices=["words", "original"], default="words",
                   help="judge/generate: answer-to-label mapping (original = BBNLI's exact string tests)")
    p.add_argument("--chat-template", action="store_true", help="judge: wrap prompts in the model's chat template")
    p.add_argument("--expand-samples", action="store_true",
                   help="count every template/sample answer as a row (BBNLI's protocol for generative models)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--max-premises-per-subtopic", type=int, default=None,
                   help="evaluate only the first N premises of each subtopic (quick runs)")
    p.add_argument("--drop-duplicate-pairs", action="store_true",
                   help="one row per (premise, hypothesis) pair (the original scores count the 450 repeats)")
    p.add_argument("--group-by", nargs="+", default=None, help="row fields for subgroup results (default: domain)")
    p.add_argument("--num-resamples", type=int, default=None, help="bootstrap resamples (default: eval/tasks/bbnli.yaml, 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", action="store_true", help="also write bbnli.png")
    return p


def build_predictor(args):
    """The predictor an argparse namespace describes."""
    from fairalign.eval.bbnli import GenerativeJudgePredictor, NLIClassifierPredictor

    if args.kind == "nli":
        return NLIClassifierPredictor(args.predictor, batch_size=args.batch_size, device=args.device)
    import torch

    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.eval.lm import HFLM

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_model_and_tokenizer(args.predictor, device=device)
    model.eval()
    lm = HFLM(model, tokenizer, batch_size=args.batch_size, use_chat_template=args.chat_template, name=args.predictor)
    return GenerativeJudgePredictor(lm, form=args.form, templates=args.templates, scoring=args.scoring,
                                    num_samples=args.num_samples, do_sample=args.do_sample, seed=args.seed,
                                    parsing=args.parsing)


def _flagged(err) -> str:
    """An InputError about Settings.some_field, told as the flag --some-field the user typed."""
    import re

    m = re.match(r"\w+Settings\.(\w+)", str(err))
    return f"--{m.group(1).replace('_', '-')}: {err}" if m else str(err)


def check_inputs(args):
    """Everything checkable without a model, so a mistake fails in seconds, not after the model loads: the
    numbers, the judge's templates, the data (a --data path that does not exist, an empty or header-only CSV,
    a missing column, a bad row) and that rows are left to evaluate. Returns the dataset."""
    from fairalign.align.errors import InputError
    from fairalign.align.validation import check_number
    from fairalign.eval.bbnli.data import HUB_ID, concat, load_bbnli
    from fairalign.eval.bbnli.evaluate import bootstrap_settings, load_task, rows_to_evaluate
    from fairalign.eval.bbnli.judge import GenerationSettings, judge_templates

    check_number(args.batch_size, "--batch-size", "[1, inf)", integer=True)
    if args.max_premises_per_subtopic is not None:
        check_number(args.max_premises_per_subtopic, "--max-premises-per-subtopic", "[1, inf)", integer=True)
    try:
        bootstrap_settings(load_task(), args.num_resamples, args.seed)
        if args.kind == "judge":
            judge_templates(args.form, args.templates)
            GenerationSettings(num_samples=args.num_samples, do_sample=args.do_sample, seed=args.seed)
    except InputError as err:
        raise InputError(_flagged(err)) from None
    if args.expand_samples and args.kind != "judge":
        raise InputError("--expand-samples counts every sample of a judge's answers; it needs --kind judge")
    try:
        dataset = concat(load_bbnli(path, drop_duplicate_pairs=args.drop_duplicate_pairs) for path in (args.data or [HUB_ID]))
    except RuntimeError as err:  # the Hub is unreachable or offline; the message says to pass a local path
        raise InputError(str(err)) from None
    if args.max_premises_per_subtopic is not None:
        dataset = dataset.subsample(args.max_premises_per_subtopic)
    rows_to_evaluate(dataset, "question" if args.kind == "judge" and args.form == "qa" else "hypothesis")
    return dataset


def main(args: argparse.Namespace) -> int:
    from fairalign.align.locking import hold_folder
    from fairalign.eval.bbnli.evaluate import evaluate_nli_bias

    dataset = check_inputs(args)
    with hold_folder(args.out_dir, "fairalign eval bbnli"):  # a second run on --out-dir refuses instead of mixing files
        predictor = build_predictor(args)
        result = evaluate_nli_bias(predictor, dataset, group_by=args.group_by, num_resamples=args.num_resamples,
                                   seed=args.seed, expand_samples=args.expand_samples)
        result.config["cli"] = {k: v for k, v in vars(args).items()}
        paths = result.save(args.out_dir)
        if args.plot:
            paths["plot"] = result.plot(paths["json"].with_suffix(".png"))
    print(result.to_markdown())
    print("\n".join(f"wrote {path}" for path in paths.values()))
    return 0
