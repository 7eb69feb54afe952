"""CLI smoke: `fairalign eval bbnli` (nli and judge kinds) and `fairalign eval bbnli-next build` via main([...])."""
import csv
import json

import pytest
from bbnli_helpers import ROBERTA_MNLI, hand_rows, save_tiny_nli

from fairalign.eval.bbnli.data import BBNLIDataset
from fairalign.scripts.cli import main as cli


@pytest.fixture
def data_csv(tmp_path):
    rows, _ = hand_rows()
    return BBNLIDataset(rows).to_csv(tmp_path / "bbnli.csv")


@pytest.mark.parametrize("command", [["eval", "bbnli"], ["eval", "bbnli-next", "build"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(command + ["--help"])
    assert exit_.value.code == 0 and "--predictor" in capsys.readouterr().out


def test_eval_bbnli_nli_kind(tmp_path, data_csv, capsys):
    model = save_tiny_nli(tmp_path / "nli", ROBERTA_MNLI)
    out = tmp_path / "out"
    assert cli(["eval", "bbnli", "--predictor", str(model), "--kind", "nli", "--data", str(data_csv),
                "--out-dir", str(out), "--num-resamples", "50", "--device", "cpu", "--plot"]) == 0
    result = json.loads((out / "bbnli.json").read_text())
    assert result["n_rows"] == 13 and set(result["measures"]["all"]) >= {"bbnli_bias_score_original", "bbnli_bias_score"}
    assert (out / "bbnli.md").read_text().startswith("# BBNLI bias evaluation")
    assert (out / "bbnli.png").exists() and len((out / "bbnli_predictions.jsonl").read_text().splitlines()) == 13
    assert "bbnli_bias_score" in capsys.readouterr().out


def test_eval_bbnli_judge_kind_qa_generate(tmp_path, data_csv, tiny_llama_dir):
    out = tmp_path / "judge"
    assert cli(["eval", "bbnli", "--predictor", str(tiny_llama_dir), "--kind", "judge", "--form", "qa",
                "--scoring", "generate", "--templates", "Read And Extract", "--data", str(data_csv),
                "--out-dir", str(out), "--num-resamples", "20", "--device", "cpu", "--expand-samples"]) == 0
    result = json.loads((out / "bbnli.json").read_text())
    assert result["config"]["hypothesis_field"] == "question" and result["n_unparsed"] is not None
    assert result["n_scored_rows"] == 13  # one template x one sample per row


def test_eval_bbnli_on_shared_templates(tmp_path, shared_data):
    model = save_tiny_nli(tmp_path / "nli", ROBERTA_MNLI)
    out = tmp_path / "out"
    assert cli(["eval", "bbnli", "--predictor", str(model), "--data", str(shared_data / "bbnli" / "templates"),
                "--max-premises-per-subtopic", "1", "--out-dir", str(out), "--num-resamples", "20",
                "--device", "cpu", "--batch-size", "64"]) == 0
    result = json.loads((out / "bbnli.json").read_text())
    assert result["n_premises"] == 16 and set(result["measures"]) == {"all", "domain=gender", "domain=race", "domain=religion"}


def test_bbnli_next_build_cli(tmp_path, data_csv, tiny_llama_dir, capsys):
    model = save_tiny_nli(tmp_path / "nli", ROBERTA_MNLI)
    out = tmp_path / "cands.csv"
    assert cli(["eval", "bbnli-next", "build", "--data", str(data_csv), "--generator", str(tiny_llama_dir),
                "--predictors", str(model), f"judge:{tiny_llama_dir}", "--out", str(out),
                "--all-candidates", str(tmp_path / "all.csv"), "--num-variations", "2", "--max-new-tokens", "8", "--hypothesis-types", "stereotypical",
                "--device", "cpu", "--criterion", "wrong"]) == 0
    with open(tmp_path / "all.csv", newline="") as f:
        header = next(csv.reader(f))
    assert "valid" in header and "variant_of" in header
    with open(out, newline="") as f:
        kept = list(csv.DictReader(f))
    for row in kept:  # "wrong": at least one predictor misjudged the variant against the kept gold label
        golds = int(row["true_label"])
        assert any(int(v) != golds for k, v in row.items() if k.startswith("pred_variant["))
    assert "candidate variation(s)" in capsys.readouterr().out


def test_missing_data_is_a_clean_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert cli(["eval", "bbnli", "--predictor", "unused", "--out-dir", str(tmp_path)]) == 2  # Hub default, offline
    assert "offline" in capsys.readouterr().err
    assert cli(["eval", "bbnli-next", "build", "--data", str(tmp_path / "nope.csv"), "--predictors", "x",
                "--out", str(tmp_path / "o.csv")]) == 2
    assert "not found" in capsys.readouterr().err
