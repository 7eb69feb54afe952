"""`fairalign eval bbnli-next build`: BBNLI-next-style candidates for human validation.

Generate lexical variations of BBNLI hypotheses (and/or premises) with a chosen LM, keep those that
change the prediction of at least one NLI predictor (gold label assumed unchanged), and write a CSV with
provenance and an empty `valid` column:

    fairalign eval bbnli-next build --data ../shared/data/bbnli/bbnli_expanded.csv --generator smollm2 \
        --predictors roberta-large-mnli microsoft/deberta-large-mnli --out bbnli_next_candidates.csv
    # a causal LM as one of the filtering predictors: prefix it with judge:
    fairalign eval bbnli-next build --data ... --predictors roberta-large-mnli judge:smollm2 --out cands.csv

Validators fill `valid` (1 = same meaning and gold label, 0 = not); then evaluate on BBNLI + the valid rows:

    fairalign eval bbnli --predictor roberta-large-mnli --data bbnli_expanded.csv --data cands.csv
"""
from __future__ import annotations

import argparse


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Build BBNLI-next-style lexical variations, adversarially filtered "
                                "against NLI predictors, exported for human validation.")
    p.add_argument("--data", required=True, help="BBNLI source: template folder, expanded CSV or Hub id")
    p.add_argument("--generator", default="smollm2", help="causal LM that writes the variations (Hub id/folder/smollm2)")
    p.add_argument("--predictors", nargs="+", required=True,
                   help="NLI models to filter against (Hub id/folder); 'judge:MODEL' for a causal LM judge")
    p.add_argument("--out", required=True, help="CSV for validators")
    p.add_argument("--all-candidates", default=None, help="also write every candidate (kept or not) to this CSV")
    p.add_argument("--target", choices=["hypothesis", "premise", "both"], default="hypothesis")
    p.add_argument("--prompt", choices=["paraphrase", "synonyms"], default="paraphrase", help="variation prompt")
    p.add_argument("--num-variations", type=int, default=3, help="rewrites sampled per source text")
    p.add_argument("--hypothesis-types", nargs="+", default=["test", "stereotypical", "anti-stereotypical"])
    p.add_argument("--criterion", choices=["flip", "wrong", "flip_to_wrong"], default="flip",
                   help="flip: prediction changed; wrong: variant mispredicted; flip_to_wrong: source right, variant wrong")
    p.add_argument("--min-predictors", type=int, default=1, help="keep a candidate when this many predictors meet it")
    p.add_argument("--max-premises-per-subtopic", type=int, default=None, help="vary only the first N premises per subtopic")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--chat-template", action="store_true", help="wrap the generator's prompts in its chat template")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    return p


def _load_lm(name: str, args, chat_template: bool):
    import torch

    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.eval.lm import HFLM

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_model_and_tokenizer(name, device=device)
    model.eval()
    return HFLM(model, tokenizer, batch_size=args.batch_size, use_chat_template=chat_template, name=name)


def check_settings(args) -> None:
    """The numbers, checked before any model loads (InputError naming the flag)."""
    from fairalign.align.validation import check_number
    from fairalign.eval.bbnli.judge import GenerationSettings

    check_number(args.num_variations, "--num-variations", "[1, inf)", integer=True)
    check_number(args.min_predictors, "--min-predictors", f"[1, {len(args.predictors)}]", integer=True,
                 fix=f"at most the number of --predictors, {len(args.predictors)}")
    check_number(args.batch_size, "--batch-size", "[1, inf)", integer=True)
    if args.max_premises_per_subtopic is not None:
        check_number(args.max_premises_per_subtopic, "--max-premises-per-subtopic", "[1, inf)", integer=True)
    # --max-new-tokens, --temperature, --top-p, --seed (the error names the field of the same name)
    GenerationSettings(num_samples=args.num_variations, max_new_tokens=args.max_new_tokens, do_sample=True,
                       temperature=args.temperature, top_p=args.top_p, seed=args.seed)


def main(args: argparse.Namespace) -> int:
    from fairalign.align.errors import InputError
    from fairalign.eval.bbnli.data import load_bbnli
    from fairalign.eval.bbnli.judge import GenerativeJudgePredictor
    from fairalign.eval.bbnli.next_build import build_bbnli_next, export_for_validation
    from fairalign.eval.bbnli.predictors import NLIClassifierPredictor

    check_settings(args)
    try:
        dataset = load_bbnli(args.data)
    except RuntimeError as err:  # the Hub is unreachable or offline; the message says to pass a local path
        raise InputError(str(err)) from None
    if args.max_premises_per_subtopic is not None:
        dataset = dataset.subsample(args.max_premises_per_subtopic)
    predictors = {}
    for spec in args.predictors:
        if spec.startswith("judge:"):
            predictors[spec] = GenerativeJudgePredictor(_load_lm(spec[len("judge:"):], args, args.chat_template))
        else:
            predictors[spec] = NLIClassifierPredictor(spec, batch_size=args.batch_size, device=args.device)
    generator = _load_lm(args.generator, args, args.chat_template)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "all_candidates")}
    kept, candidates = build_bbnli_next(
        dataset, generator, predictors, criterion=args.criterion, min_predictors=args.min_predictors,
        target=args.target, prompt=args.prompt, num_variations=args.num_variations,
        hypothesis_types=args.hypothesis_types, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
        top_p=args.top_p, seed=args.seed,
    )
    path = export_for_validation(kept, args.out, criterion=args.criterion, settings=settings)
    print(f"{len(candidates)} candidate variation(s) from {len(dataset)} BBNLI rows; {len(kept)} kept "
          f"({args.criterion}, >= {args.min_predictors} predictor(s)) -> {path}")
    if args.all_candidates:
        export_for_validation(candidates, args.all_candidates, criterion=args.criterion, settings=settings)
        print(f"all candidates -> {args.all_candidates}")
    print("Next: mark the `valid` column 1/0, then `fairalign eval bbnli --data <bbnli> --data " f"{path}`")
    return 0
