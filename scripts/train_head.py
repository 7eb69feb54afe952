"""`fairalign decoding train-head`: train a UDDIA attribute head on a frozen LM (PPLM/UDDIA recipe).

    fairalign decoding train-head --model gpt2-large --data jigsaw_train.csv --text-column comment_text \\
        --label-column toxic,severe_toxic,obscene,threat,insult,identity_hate --out toxicity_head.pt
    fairalign decoding train-head --model smollm2 --data labelled.jsonl --text-column text --label-column label \\
        --classes non_toxic,toxic --epochs 10 --lr 1e-4 --out head.json
    fairalign decoding train-head --model smollm2 --data texts.txt --label-with hatesonar --out hatesonar_head.json

Labels: class indices, booleans, class names, or scores (>= --label-threshold counts as class 1). Several label
columns: class 1 if any of them is (Jigsaw: toxic if any of its six labels is set). Or no labels at all:
--label-with SCORER labels each text with any toxicity scorer (`fairalign.eval.toxicity.get_scorer` names: hatesonar,
better-profanity, profanity, hf-classifier, a classifier's Hub id or folder), class 1 if its score >= --label-threshold;
--data may then also be a .txt file, one text per line. A head distilled from a scorer should be judged by others. The head is a linear layer on
the mean of the LM's final hidden states (< --max-length tokens); it is saved with the LM name, hidden size,
class names and an embedding probe, so loading it for another LM fails loudly.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a UDDIA attribute head (linear, on mean-pooled hidden states of a frozen LM).")
    p.add_argument("--model", default="smollm2", help="Hub id, local path, or 'smollm2'")
    p.add_argument("--data", required=True, help="a .csv or .jsonl file")
    p.add_argument("--text-column", default=None, help="the texts' column (.csv / .jsonl)")
    p.add_argument("--label-column", default=None, help="column name, or several comma-separated (class 1 if any)")
    p.add_argument("--label-with", default=None, metavar="SCORER",
                   help="label the texts with this toxicity scorer instead of a column (hatesonar, better-profanity, "
                        "profanity, hf-classifier, a classifier's Hub id or folder): class 1 if score >= --label-threshold")
    p.add_argument("--classes", default="non_toxic,toxic", help="comma-separated class names, index order")
    p.add_argument("--label-threshold", type=float, default=0.5, help="numeric scores >= this are class 1")
    p.add_argument("--out", required=True, help="output head file (.pt or .json)")
    p.add_argument("--epochs", type=int, default=10, help="paper: 10")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (paper: 1e-4)")
    p.add_argument("--batch-size", type=int, default=64, help="paper: 64")
    p.add_argument("--max-length", type=int, default=100, help="tokens per text (paper: < 100)")
    p.add_argument("--max-examples", type=int, default=None, help="use only the first N rows")
    p.add_argument("--balance", action="store_true", help="weight classes inversely to their frequency")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    return p


def read_rows(path: Path) -> list[dict]:
    from fairalign.align.errors import InputError, require_path
    from fairalign.align.files import read_jsonl, read_text

    require_path(path, "--data", "give a .csv or .jsonl file of labelled texts")
    if path.suffix not in (".csv", ".jsonl"):
        raise InputError(f"--data {path}: use a .csv or .jsonl file (or a .txt file with --label-with)")
    if path.suffix == ".csv":
        return list(csv.DictReader(read_text(path, "--data").splitlines()))
    return [row for _, row in read_jsonl(path, "--data")]


def to_label(value, classes: list[str], threshold: float) -> int:
    """A class index from an int, bool, class name or score (a finite number)."""
    import math

    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text in classes:
            return classes.index(text)
        if text.lower() in ("true", "false"):
            return int(text.lower() == "true")
        value = int(text) if text.lstrip("-").isdigit() else float(text)
    if isinstance(value, int) and len(classes) > 2:  # several classes: integers are class indices
        if not 0 <= value < len(classes):
            raise ValueError(f"class index {value} outside [0, {len(classes)})")
        return value
    if not math.isfinite(float(value)):  # NaN >= threshold is False: it would silently become class 0
        raise ValueError(f"the label {value!r} is not a finite number")
    return int(float(value) >= threshold)


def read_rows_with(path: Path, columns: list[str], limit: int | None = None) -> list[dict]:
    """The first `limit` rows of a .csv / .jsonl file; an error if there are none or a column is missing."""
    from fairalign.align.errors import InputError

    rows = read_rows(path)[:limit]
    if not rows:
        raise InputError(f"--data {path} has no rows")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise InputError(f"--data {path}: columns {missing} not found; available: {sorted(rows[0])}")
    return rows


def read_labelled(path, text_column: str, label_columns: list[str], classes: list[str], threshold: float,
                  limit: int | None = None) -> tuple[list[str], list[int]]:
    from fairalign.align.errors import InputError

    path = Path(path)
    rows = read_rows_with(path, [text_column, *label_columns], limit)
    texts, labels = [], []
    for i, row in enumerate(rows):
        try:
            values = [to_label(row[c], classes, threshold) for c in label_columns]
        except (ValueError, TypeError, KeyError) as err:
            raise InputError(f"--data {path} row {i}: cannot read a label from "
                             f"{[row.get(c) for c in label_columns]} ({err})") from None
        texts.append(str(row[text_column]))
        labels.append(max(values) if len(values) > 1 else values[0])
    return texts, labels


def read_texts(path, text_column: str | None, limit: int | None = None) -> list[str]:
    """Unlabelled texts for --label-with: a .txt file's non-empty lines, or a .csv / .jsonl file's --text-column."""
    from fairalign.align.errors import InputError, require_path
    from fairalign.align.files import read_text

    path = Path(path)
    if path.suffix == ".txt":
        require_path(path, "--data", "give a .txt file (one text per line), or a .csv / .jsonl file")
        texts = [line for line in read_text(path, "--data").splitlines() if line.strip()]
    else:
        if text_column is None:
            raise InputError(f"--data {path}: name the texts' column with --text-column")
        texts = [str(row[text_column]) for row in read_rows_with(path, [text_column], limit)]
    texts = texts[:limit]
    if not texts:
        raise InputError(f"--data {path} has no texts")
    return texts


def label_with_scorer(texts: list[str], scorer_name: str, threshold: float, source: str = "--data") -> list[int]:
    """Class 1 where the scorer's probability >= threshold. A text the scorer could not score (None) is an error
    naming its row: dropping it would bias the head toward what the scorer can read."""
    from fairalign.align.errors import InputError
    from fairalign.eval.toxicity.scorers import get_scorer, validate_scores

    try:
        scorer = get_scorer(scorer_name)
    except (ImportError, ValueError) as err:
        raise InputError(f"--label-with {scorer_name!r}: {err}") from None
    scores = validate_scores(scorer(texts), len(texts), scorer_name)
    failed = [i for i, s in enumerate(scores) if s is None]
    if failed:
        raise InputError(f"{source}: --label-with {scorer_name} could not score row(s) {failed[:10]}; remove or fix them")
    return [int(s >= threshold) for s in scores]


def main(args) -> int:
    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.decoding.heads import save_head, train_head

    from fairalign.align.errors import InputError
    from fairalign.align.validation import check_number

    for flag, value, interval in [("--epochs", args.epochs, "[1, inf)"), ("--batch-size", args.batch_size, "[1, inf)"),
                                  ("--max-length", args.max_length, "[1, inf)"), ("--seed", args.seed, "[0, inf)")]:
        check_number(value, flag, interval, integer=True)
    if args.max_examples is not None:
        check_number(args.max_examples, "--max-examples", "[1, inf)", integer=True)
    check_number(args.lr, "--lr", "(0, inf)")
    check_number(args.label_threshold, "--label-threshold")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    if (args.label_column is None) == (args.label_with is None):
        raise InputError("give exactly one of --label-column (labels in --data) and --label-with SCORER (label the "
                         "texts with a toxicity scorer)")
    if args.label_with is not None:
        if len(classes) != 2:
            raise InputError(f"--label-with gives two classes (score < / >= --label-threshold); --classes has {classes}")
        check_number(args.label_threshold, "--label-threshold", "(0, 1]", fix="scorers give probabilities")
        texts = read_texts(args.data, args.text_column, args.max_examples)
        labels = label_with_scorer(texts, args.label_with, args.label_threshold)
        if len(set(labels)) < 2:
            raise InputError(f"--label-with {args.label_with}: all {len(texts)} texts of {args.data} fall in class "
                             f"{classes[labels[0]]!r} at --label-threshold {args.label_threshold}; a head needs both "
                             "classes (add texts of the other kind, or move the threshold)")
        source = f"{Path(args.data).name} ({len(texts)} rows) labelled by {args.label_with} (>= {args.label_threshold})"
    else:
        if args.text_column is None:
            raise InputError("--label-column needs --text-column (the texts' column)")
        texts, labels = read_labelled(args.data, args.text_column, [c.strip() for c in args.label_column.split(",")],
                                      classes, args.label_threshold, args.max_examples)
        source = f"{Path(args.data).name} ({len(texts)} rows)"
    model, tokenizer = load_model_and_tokenizer(args.model, device=args.device)
    model.eval()
    head = train_head(model, tokenizer, texts, labels, class_names=classes, epochs=args.epochs, lr=args.lr,
                      batch_size=args.batch_size, max_length=args.max_length, seed=args.seed, balance=args.balance,
                      description=f"trained on {source}", progress=True)
    path = save_head(head, args.out)
    counts = {c: labels.count(i) for i, c in enumerate(classes)}
    print(f"trained a {head.hidden_size}->{len(classes)} head for {head.lm_name} on {len(texts)} texts {counts} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
