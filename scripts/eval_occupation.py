"""`fairalign eval occupation`: occupational bias against BLS labour statistics (JSON + Markdown + PNG plots).

    fairalign eval occupation --model smollm2 --bls ../shared/data/bls/cpsaat11_2022_official_format.xlsx --out runs/occ
    fairalign eval occupation --model smollm2 --bls 2022 --debias bls-context --k 8 --out runs/occ_debiased
    fairalign eval occupation --model smollm2 --bls cpsaat11.xlsx --occupations "nurse" "software developer" --scoring loglikelihood

--bls takes an official cpsaat11.xlsx, the normalised CSV, or a year (downloaded from bls.gov into
$FAIRALIGN_CACHE/bls when online; 2022 ships with the package). Writes occupation.json, occupation.md and
plots/*.png under --out.
"""
from __future__ import annotations

import argparse


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Occupational bias measured against BLS CPS Table 11, with BLS-grounded debiasing.")
    p.add_argument("--model", default="smollm2", help="Hub id, local path, or 'smollm2' (embedded default)")
    p.add_argument("--bls", required=True, help="official cpsaat11.xlsx, normalised CSV, or a year (2022 is packaged: offline)")
    p.add_argument("--bls-cache", default=None, help="download cache for --bls YEAR (default $FAIRALIGN_CACHE/bls)")
    p.add_argument("--out", default="occupation_eval", help="output directory")
    p.add_argument("--occupations", nargs="+", default=None, help="BLS names or singular/plural/variant names (default: selection rule)")
    p.add_argument("--templates", nargs="+", default=None, help="template ids from eval/tasks/occupation.yaml (default: all)")
    p.add_argument("--scoring", default="auto", choices=["auto", "generate", "loglikelihood", "both"])
    p.add_argument("--directions", nargs="+", default=["o2d", "d2o"], choices=["o2d", "d2o"])
    p.add_argument("--min-employment", type=float, default=100.0, help="thousands employed, default selection")
    p.add_argument("--max-occupations", type=int, default=None, help="keep the N most employed selected occupations")
    p.add_argument("--num-samples", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--debias", default=None, choices=["bls-context"], help="also run with k BLS facts in the prompt (before/after)")
    p.add_argument("--k", type=int, default=8, help="BLS facts per prompt with --debias")
    p.add_argument("--holdout", default="asked", choices=["asked", "evaluated"])
    p.add_argument("--chat-template", action="store_true", help="wrap prompts in the model's chat template")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--dtype", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--num-resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    return p


# CLI flag of each OccupationEvalConfig field whose flag has another name (errors name what the user typed).
FLAGS = {"min_employment_thousands": "--min-employment"}


def settings_of(args) -> dict:
    """The OccupationEvalConfig fields the flags set."""
    return dict(debias=args.debias, k=args.k, scoring=args.scoring, directions=tuple(args.directions),
                min_employment_thousands=args.min_employment, max_occupations=args.max_occupations,
                num_samples=args.num_samples, max_new_tokens=args.max_new_tokens, do_sample=not args.greedy,
                temperature=args.temperature, top_p=args.top_p, holdout=args.holdout,
                num_resamples=args.num_resamples, seed=args.seed)


def check_inputs(args):
    """Everything checkable without a model, so a typo fails in seconds, not after the model loads: the
    settings, the BLS table (a missing --bls is an error), the occupations, the templates and the debiasing
    pool. Returns (table, settings)."""
    import re

    from fairalign.align.errors import InputError
    from fairalign.align.validation import check_number
    from fairalign.eval.occupation import OccupationEvalConfig, load_bls_table, select_occupations
    from fairalign.eval.occupation.debias import BLSContext
    from fairalign.eval.occupation.templates import load_task, select_templates

    settings = settings_of(args)
    try:
        cfg = OccupationEvalConfig(**settings)
    except InputError as err:
        name = re.match(r"OccupationEvalConfig\.(\w+)", str(err))
        flag = FLAGS.get(name.group(1), "--" + name.group(1).replace("_", "-")) if name else None
        raise InputError(f"{flag}: {err}" if flag else str(err)) from None
    check_number(args.batch_size, "--batch-size", "[1, inf)", integer=True)
    table = load_bls_table(args.bls, cache_dir=args.bls_cache)
    names = select_occupations(table, args.occupations, cfg.min_employment_thousands, cfg.max_occupations)
    select_templates(args.templates)
    if cfg.debias:
        BLSContext(table, cfg.k, cfg.holdout, cfg.seed, tuple(n.bls for n in names), load_task()["debias"]["header"])
    return table, settings


def main(args) -> int:
    import json
    from pathlib import Path

    from fairalign.align.locking import hold_folder
    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.eval.lm import HFLM
    from fairalign.eval.occupation import evaluate_occupational_bias
    from fairalign.align.files import write_bytes_atomic

    table, settings = check_inputs(args)
    out = Path(args.out)
    with hold_folder(out, "fairalign eval occupation"):  # a second run on --out refuses instead of mixing files
        model, tokenizer = load_model_and_tokenizer(args.model, dtype=args.dtype, device=args.device)
        lm = HFLM(model, tokenizer, batch_size=args.batch_size, use_chat_template=args.chat_template, name=str(args.model))
        result = evaluate_occupational_bias(lm, table, occupations=args.occupations, templates=args.templates, **settings)
        data = result.to_dict()
        data["versions"], data["git"] = _provenance()
        write_bytes_atomic(out / "occupation.json", json.dumps(data, indent=1).encode("utf-8"))
        write_bytes_atomic(out / "occupation.md", result.to_markdown().encode("utf-8"))
        plots = result.plots(out / "plots")
    print(result.to_markdown())
    print(f"wrote {out / 'occupation.json'}, {out / 'occupation.md'} and {len(plots)} plots in {out / 'plots'}")
    return 0


def _provenance() -> tuple[dict, str | None]:
    """Library versions and the git hash, for the report."""
    from fairalign.align.provenance import git_state, package_versions

    return package_versions(("fairalign", "torch", "transformers", "numpy", "pandas", "openpyxl")), git_state()[0]
