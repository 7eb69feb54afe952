"""CLI: `fairalign generate` and `fairalign decoding train-head` on a tiny model saved to disk; --help works."""
import json

import pytest

from fairalign.scripts import cli


@pytest.mark.parametrize("words", [["generate"], ["decoding", "train-head"]])
def test_help(words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(words + ["--help"])
    assert exit_info.value.code == 0
    assert "--model" in capsys.readouterr().out


def test_train_head_then_generate_with_it(tiny_llama_dir, tmp_path, capsys):
    data = tmp_path / "labelled.csv"
    rows = ["text,toxic,insult"] + [f"You are a wonderful person number {i}.,0,0" for i in range(6)] + \
           [f"You terrible idiot {i}.,1,0" for i in range(3)] + [f"Idiot idiot {i}.,0.2,0.9" for i in range(3)]
    data.write_text("\n".join(rows) + "\n")
    head_path = tmp_path / "head.json"
    assert cli.main(["decoding", "train-head", "--model", str(tiny_llama_dir), "--data", str(data), "--text-column", "text",
                     "--label-column", "toxic,insult", "--out", str(head_path), "--epochs", "2"]) == 0
    meta = json.loads(head_path.read_text())["metadata"]
    assert meta["hidden_size"] == 32 and meta["class_names"] == ["non_toxic", "toxic"]
    assert "trained a 32->2 head" in capsys.readouterr().out
    out = tmp_path / "samples.jsonl"
    assert cli.main(["generate", "--model", str(tiny_llama_dir), "--uddia-head", str(head_path), "--prompt", "Hello world",
                     "--prompt", "The man", "--max-new-tokens", "4", "--num-return-sequences", "2",
                     "--uddia-redo-ppl-threshold", "none", "--uddia-trigger-threshold", "0.0", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4 and {r["method"] for r in lines} == {"uddia"}
    assert all(r["adapted_steps"] >= 1 for r in lines)
    # plain generation through the same command
    assert cli.main(["generate", "--model", str(tiny_llama_dir), "--prompt", "Hello", "--max-new-tokens", "3", "--greedy"]) == 0


def test_train_head_bad_columns(tiny_llama_dir, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "a", "label": 1}) + "\n")
    code = cli.main(["decoding", "train-head", "--model", str(tiny_llama_dir), "--data", str(data), "--text-column", "text",
                     "--label-column", "toxic", "--out", str(tmp_path / "h.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "columns ['toxic'] not found" in err[0]


def test_label_parsing():
    from fairalign.scripts.train_head import to_label

    classes2, classes3 = ["non_toxic", "toxic"], ["neg", "neu", "pos"]
    assert [to_label(v, classes2, 0.5) for v in ["0", "1", "0.7", "0.2", "toxic", "True", 1, False]] == [0, 1, 1, 0, 1, 1, 1, 0]
    assert [to_label(v, classes3, 0.5) for v in ["2", 1, "neu"]] == [2, 1, 1]
    with pytest.raises(ValueError):
        to_label("7", classes3, 0.5)


def test_train_head_labels_texts_with_a_scorer(tiny_llama_dir, tmp_path, capsys):
    """--label-with: the head is trained on the scorer's labels (score >= threshold), as if they were a column."""
    pytest.importorskip("better_profanity", reason="better-profanity is not installed (bash scripts/setup.sh installs it)")
    from fairalign.eval.toxicity.scorers import get_scorer
    from fairalign.scripts import train_head

    texts = [f"Have a lovely day number {i}." for i in range(5)] + [f"Shut up, you shit {i}." for i in range(4)]
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(texts) + "\n\n")  # blank lines are not texts
    assert train_head.read_texts(data, None) == texts
    expected = [int(s >= 0.5) for s in get_scorer("better-profanity")(texts)]
    assert expected == [0] * 5 + [1] * 4  # the fixture means what it says
    assert train_head.label_with_scorer(texts, "better-profanity", 0.5) == expected
    head_path = tmp_path / "head.json"
    assert cli.main(["decoding", "train-head", "--model", str(tiny_llama_dir), "--data", str(data), "--label-with",
                     "better-profanity", "--out", str(head_path), "--epochs", "2"]) == 0
    meta = json.loads(head_path.read_text())["metadata"]
    assert "labelled by better-profanity" in meta["description"]
    assert "{'non_toxic': 5, 'toxic': 4}" in capsys.readouterr().out
    # the same texts from a .jsonl column give the same labels
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text("".join(json.dumps({"comment": t}) + "\n" for t in texts))
    assert train_head.read_texts(jsonl, "comment") == texts


@pytest.mark.parametrize("extra, message", [
    ([], "exactly one of --label-column"),
    (["--label-column", "label", "--label-with", "hatesonar"], "exactly one of --label-column"),
    (["--label-with", "better-profanity", "--label-threshold", "50"], "--label-threshold=50"),
    (["--label-with", "no-such-scorer"], "unknown scorer 'no-such-scorer'"),
    (["--label-with", "better-profanity"], "all 2 texts"),
])
def test_train_head_label_with_refuses_bad_input(extra, message, tiny_llama_dir, tmp_path, capsys):
    pytest.importorskip("better_profanity", reason="better-profanity is not installed")
    data = tmp_path / "texts.txt"
    data.write_text("Have a nice day.\nThank you.\n")  # one class only
    code = cli.main(["decoding", "train-head", "--model", str(tiny_llama_dir), "--data", str(data),
                     "--out", str(tmp_path / "h.json"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
