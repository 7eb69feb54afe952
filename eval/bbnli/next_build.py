"""BBNLI-next construction (Baldini et al. 2023, "Keeping Up with the Language Models"): lexical
variations of BBNLI rows, adversarially filtered against NLI models, exported for human validation.

1. `generate_variations`: a chosen LM rewrites each hypothesis (and/or premise) with different words and
   the same meaning; each rewrite becomes a candidate row with the source row's gold label,
   `variant_of` = the source's item_id and `variation` = lexical_hypothesis / lexical_premise.
2. `adversarial_filter`: run every NLI predictor on the source rows and on the candidates; a candidate is
   kept when at least `min_predictors` predictors meet the criterion (the gold label is assumed to stay,
   which the human validation step checks):
     flip          ŷ(variant) != ŷ(source)                 (default: the prediction changed)
     wrong         ŷ(variant) != gold
     flip_to_wrong ŷ(source) == gold and ŷ(variant) != gold
3. `export_for_validation`: a CSV with the dataset columns, provenance (source texts, generator, prompt,
   raw generation, every predictor's predictions) and an empty `valid` column for validators
   (1/0, yes/no, valid/invalid); `import_validated` reads it back as a `BBNLIDataset` of valid rows.
The paper's exact prompts, models and filtering thresholds are not public; these are explicit choices.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from fairalign.align.errors import InputError
from fairalign.align.validation import check_number
from fairalign.eval.bbnli.data import BBNLIDataset, BBNLIExample, example_from_row, read_csv_rows, with_variation
from fairalign.eval.bbnli.judge import GenerationSettings
from fairalign.eval.bbnli.predictors import check_labels

VARIATION_PROMPTS = {
    "paraphrase": (
        "Rewrite the following sentence using different words. Keep exactly the same meaning: do not add, "
        "remove or soften any information, and keep every group of people it mentions.\n"
        "Sentence: {text}\nRewritten sentence:"
    ),
    "synonyms": (
        "Replace one or two words of the following sentence with synonyms, keeping its meaning and every "
        "group of people it mentions.\nSentence: {text}\nNew sentence:"
    ),
}
CRITERIA = ("flip", "wrong", "flip_to_wrong")
TRUE_MARKS = {"1", "true", "yes", "y", "valid", "x", "ok"}
FALSE_MARKS = {"0", "false", "no", "n", "invalid"}


@dataclass
class Candidate:
    """A generated variant with its provenance."""

    example: BBNLIExample
    source: BBNLIExample
    prompt_name: str
    raw_generation: str
    generator: str
    predictions: dict[str, dict[str, int]] = field(default_factory=dict)  # predictor -> {source, variant}
    met_by: list[str] = field(default_factory=list)


def clean_generation(text: str) -> str:
    """First non-empty line, without surrounding quotes, list markers or a 'Rewritten sentence:' echo."""
    for line in text.strip().splitlines():
        line = re.sub(r"^\s*(?:[-*\d.)]+\s+|(?:rewritten|new) sentence:\s*)", "", line.strip(), flags=re.I)
        line = line.strip().strip("\"'“”‘’").strip()
        if line:
            return line
    return ""


def _usable(candidate: str, source: str, max_length_ratio: float) -> bool:
    def norm(s: str) -> str:
        return re.sub(r"\W+", " ", s.lower()).strip()

    if not candidate or norm(candidate) == norm(source):
        return False
    ratio = len(candidate) / max(1, len(source))
    return 1 / max_length_ratio <= ratio <= max_length_ratio


def generate_variations(
    dataset: BBNLIDataset | Sequence[BBNLIExample],
    lm,
    *,
    target: str = "hypothesis",
    prompt: str = "paraphrase",
    num_variations: int = 3,
    hypothesis_types: Sequence[str] = ("test", "stereotypical", "anti-stereotypical"),
    max_new_tokens: int = 48,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_p: float = 0.9,
    seed: int = 0,
    max_length_ratio: float = 2.0,
    tokenizer=None,
) -> list[Candidate]:
    """Candidate variant rows, `num_variations` rewrites per source text (fewer after cleaning/dedup).

    target: "hypothesis", "premise" or "both". A premise is rewritten once and the rewrite is applied to
    every row with that premise; a hypothesis rewrite clears the row's QA `question` (it no longer
    matches). Source rows repeating a (premise, hypothesis) pair are varied once. Rewrites identical to
    the source (ignoring case and punctuation), empty, or outside [1/max_length_ratio, max_length_ratio]
    times the source length are dropped, as are duplicate rewrites.
    """
    from fairalign.eval.lm import as_lm

    if target not in ("hypothesis", "premise", "both"):
        raise ValueError(f"target must be 'hypothesis', 'premise' or 'both'; got {target!r}")
    if prompt not in VARIATION_PROMPTS:
        raise ValueError(f"prompt must be one of {list(VARIATION_PROMPTS)}; got {prompt!r}")
    check_number(num_variations, "num_variations", "[1, inf)", integer=True)
    check_number(max_length_ratio, "max_length_ratio", "[1, inf)")
    settings = GenerationSettings(num_samples=num_variations, max_new_tokens=max_new_tokens, do_sample=do_sample,
                                  temperature=temperature, top_p=top_p, seed=seed)
    lm = as_lm(lm, tokenizer)
    generator = str(getattr(lm, "name", type(lm).__name__))
    sources = _unique_pairs([ex for ex in dataset if ex.hypothesis_type in hypothesis_types and not ex.variant_of])
    kwargs = asdict(settings)
    out: list[Candidate] = []
    for kind, attr in (("lexical_hypothesis", "hypothesis"), ("lexical_premise", "premise")):
        if target not in (attr, "both"):
            continue
        texts = list(dict.fromkeys(getattr(ex, attr) for ex in sources))
        generations = lm.generate([VARIATION_PROMPTS[prompt].format(text=t) for t in texts], **kwargs)
        rewrites: dict[str, list[tuple[str, str]]] = {}
        for text, samples in zip(texts, generations):
            kept: dict[str, str] = {}
            for raw in samples:
                clean = clean_generation(raw)
                if _usable(clean, text, max_length_ratio) and clean not in kept:
                    kept[clean] = raw
            rewrites[text] = list(kept.items())
        for ex in sources:
            for clean, raw in rewrites[getattr(ex, attr)]:
                changes = {"hypothesis": clean, "question": ""} if attr == "hypothesis" else {"premise": clean}
                out.append(Candidate(with_variation(ex, variation=kind, **changes), ex, prompt, raw, generator))
    return out


def _unique_pairs(examples: Sequence[BBNLIExample]) -> list[BBNLIExample]:
    seen, out = set(), []
    for ex in examples:
        key = (ex.name, ex.type, ex.hypothesis_type, ex.premise, ex.hypothesis, ex.true_label)
        if key not in seen:
            seen.add(key)
            out.append(ex)
    return out


def adversarial_filter(candidates: Sequence[Candidate], predictors: Mapping[str, object], *,
                       criterion: str = "flip", min_predictors: int = 1) -> list[Candidate]:
    """Candidates that at least `min_predictors` of the named predictors are fooled by (see module doc).

    Every candidate gets `predictions[name] = {"source": ŷ, "variant": ŷ}` and `met_by` filled in,
    kept or not. Each predictor sees each distinct (premise, hypothesis) pair once.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
    if not predictors:
        raise ValueError("adversarial_filter needs at least one predictor (name -> callable)")
    check_number(min_predictors, "min_predictors", f"[1, {len(predictors)}]", integer=True,
                 fix=f"at most the number of predictors, {len(predictors)}")
    pairs = list(dict.fromkeys(p for c in candidates for p in ((c.source.premise, c.source.hypothesis),
                                                               (c.example.premise, c.example.hypothesis))))
    for name, predictor in predictors.items():
        labels = check_labels(predictor([p for p, _ in pairs], [h for _, h in pairs]), len(pairs), name) if pairs else []
        pred = dict(zip(pairs, labels))
        for c in candidates:
            src = pred[(c.source.premise, c.source.hypothesis)]
            var = pred[(c.example.premise, c.example.hypothesis)]
            c.predictions[name] = {"source": src, "variant": var}
            gold = c.example.true_label
            met = {"flip": var != src, "wrong": var != gold, "flip_to_wrong": src == gold and var != gold}[criterion]
            if met and name not in c.met_by:
                c.met_by.append(name)
    return [c for c in candidates if len(c.met_by) >= min_predictors]


def export_for_validation(candidates: Sequence[Candidate], path: str | os.PathLike, *, criterion: str = "flip",
                          settings: dict | None = None) -> Path:
    """CSV for human validation: dataset columns + provenance + an empty `valid` column (and `validator_note`).

    Validators set `valid` to 1 when the variant keeps the source's meaning and gold label, 0 otherwise.
    """
    extra = []
    for c in candidates:
        row = {"source_premise": c.source.premise, "source_hypothesis": c.source.hypothesis,
               "source_question": c.source.question, "generator": c.generator, "variation_prompt": c.prompt_name,
               "raw_generation": c.raw_generation, "filter_criterion": criterion,
               "fooled_predictors": ";".join(c.met_by), "n_fooled": len(c.met_by),
               "build_settings": json.dumps(settings or {}, sort_keys=True)}
        for name, p in c.predictions.items():
            row[f"pred_source[{name}]"] = p["source"]
            row[f"pred_variant[{name}]"] = p["variant"]
        extra.append(row | {"valid": "", "validator_note": ""})
    dataset = BBNLIDataset([c.example for c in candidates], source="bbnli-next candidates")
    path = Path(path)
    if not candidates:  # still write the header so the file is a valid (empty) export
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(",".join(list(_header()) + ["valid", "validator_note"]) + "\n")
        return path
    return dataset.to_csv(path, extra=extra)


def _header() -> list[str]:
    from fairalign.eval.bbnli.data import COLUMNS, NEXT_COLUMNS

    return list(COLUMNS) + ["item_id", *NEXT_COLUMNS]


def import_validated(path: str | os.PathLike, unmarked: str = "error") -> BBNLIDataset:
    """The rows validators marked valid, as a BBNLI-next-style dataset (variant_of, variation kept).

    unmarked: "error" (default: every row must carry a mark) or "drop" (treat unmarked rows as invalid).
    Validators may also correct `hypothesis`/`premise` text or `true_label` in place; the file is read as is.
    """
    if unmarked not in ("error", "drop"):
        raise ValueError(f"unmarked must be 'error' or 'drop'; got {unmarked!r}")
    path = Path(path)
    kept, blank, rejected = [], [], 0
    header, rows = read_csv_rows(path, "BBNLI-next validation file")
    if "valid" not in header:
        raise InputError(f"{path} has no `valid` column: is it a BBNLI-next export (export_for_validation)?")
    if not rows:
        raise InputError(f"BBNLI-next validation file {path} has a header but no rows")
    for line, row in rows:
        mark = (row.get("valid") or "").strip().lower()
        if mark in TRUE_MARKS:
            kept.append(example_from_row(row, f"{path.name} line {line}"))
        elif mark in FALSE_MARKS:
            rejected += 1
        elif not mark:
            blank.append(line)
        else:
            raise InputError(f"{path.name} line {line}: `valid` = {row['valid']!r}; use 1/0 (or yes/no, valid/invalid)")
    if blank and unmarked == "error":
        raise InputError(f"{path.name}: {len(blank)} row(s) have an empty `valid` mark (lines {blank[:10]}"
                         f"{' ...' if len(blank) > 10 else ''}); mark each 1 or 0, or pass unmarked='drop'")
    notes = [f"imported from validation file {path.name}: {len(kept)} valid, {rejected} invalid, {len(blank)} unmarked dropped"]
    return BBNLIDataset(kept, source=str(path), notes=notes)


def build_bbnli_next(dataset: BBNLIDataset | Sequence[BBNLIExample], lm, predictors: Mapping[str, object], *,
                     criterion: str = "flip", min_predictors: int = 1, **generation) -> tuple[list[Candidate], list[Candidate]]:
    """generate_variations -> adversarial_filter. Returns (kept, all candidates with their predictions)."""
    candidates = generate_variations(dataset, lm, **generation)
    kept = adversarial_filter(candidates, predictors, criterion=criterion, min_predictors=min_predictors)
    return kept, candidates
