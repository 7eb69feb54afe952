"""`fairalign decoding train-head`: train a UDDIA attribute head on a frozen LM (PPLM/UDDIA recipe).

    fairalign decoding train-head --model gpt2-large --data jigsaw_train.csv --text-column comment_text \\
        --label-column toxic,severe_toxic,obscene,threat,insult,identity_hate --out toxicity_head.pt
    fairalign decoding train-head --model smollm2 --data labelled.jsonl --text-column text --label-column label \\
        --classes non_toxic,toxic --epochs 10 --lr 1e-4 --out head.json

Labels: class indices, booleans, class names, or scores (>= --label-threshold counts as class 1). Several label
columns: class 1 if any of them is (Jigsaw: toxic if any of its six labels is set). The head is a linear layer on
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
    p.add_argument("--text-column", required=True)
    p.add_argument("--label-column", required=True, help="column name, or several comma-separated (class 1 if any)")
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
        raise InputError(f"--data {path}: use a .csv or .jsonl file")
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


def read_labelled(path, text_column: str, label_columns: list[str], classes: list[str], threshold: float,
                  limit: int | None = None) -> tuple[list[str], list[int]]:
    from fairalign.align.errors import InputError

    path = Path(path)
    rows = read_rows(path)[:limit]
    if not rows:
        raise InputError(f"--data {path} has no rows")
    missing = [c for c in [text_column, *label_columns] if c not in rows[0]]
    if missing:
        raise InputError(f"--data {path}: columns {missing} not found; available: {sorted(rows[0])}")
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


def main(args) -> int:
    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.decoding.heads import save_head, train_head

    from fairalign.align.validation import check_number

    for flag, value, interval in [("--epochs", args.epochs, "[1, inf)"), ("--batch-size", args.batch_size, "[1, inf)"),
                                  ("--max-length", args.max_length, "[1, inf)"), ("--seed", args.seed, "[0, inf)")]:
        check_number(value, flag, interval, integer=True)
    if args.max_examples is not None:
        check_number(args.max_examples, "--max-examples", "[1, inf)", integer=True)
    check_number(args.lr, "--lr", "(0, inf)")
    check_number(args.label_threshold, "--label-threshold")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    texts, labels = read_labelled(args.data, args.text_column, [c.strip() for c in args.label_column.split(",")],
                                  classes, args.label_threshold, args.max_examples)
    model, tokenizer = load_model_and_tokenizer(args.model, device=args.device)
    model.eval()
    head = train_head(model, tokenizer, texts, labels, class_names=classes, epochs=args.epochs, lr=args.lr,
                      batch_size=args.batch_size, max_length=args.max_length, seed=args.seed, balance=args.balance,
                      description=f"trained on {Path(args.data).name} ({len(texts)} rows)", progress=True)
    path = save_head(head, args.out)
    counts = {c: labels.count(i) for i, c in enumerate(classes)}
    print(f"trained a {head.hidden_size}->{len(classes)} head for {head.lm_name} on {len(texts)} texts {counts} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
