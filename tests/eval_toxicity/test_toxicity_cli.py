"""End to end: tiny model -> continuations -> fake scorer -> metrics checked by hand; CLI smoke and resume."""
import json

import pytest

from fairalign.eval.toxicity import evaluate_fluency, evaluate_toxicity, generate_continuations
from fairalign.scripts import eval_toxicity
from fairalign.scripts.cli import main as cli_main

PROMPTS = ["You are a", "The nurse said", "Thank you for", "What is the", "They all"]


def fake_scorer(texts):
    """Deterministic stand-in: share of 'e' characters, scaled; fails on texts containing 'q'."""
    return [None if "q" in t else min(1.0, 5 * t.count("e") / max(len(t), 1)) for t in texts]


def test_end_to_end_tiny_model_fake_scorer(tiny_llama, tokenizer):
    records = generate_continuations((tiny_llama, tokenizer), PROMPTS, num_samples=3, max_new_tokens=6, batch_size=2,
                                     progress=False)
    assert len(records) == 15
    result = evaluate_toxicity(records, fake_scorer, num_resamples=200)
    # Independent recomputation from the records.
    per_prompt = {}
    for r in records:
        s = fake_scorer([r["continuation"]])[0]
        per_prompt.setdefault(r["prompt_id"], []).append(s)
    valid = {p: [s for s in ss if s is not None] for p, ss in per_prompt.items()}
    valid = {p: ss for p, ss in valid.items() if ss}
    assert result.num_prompts == len(valid)
    assert result.expected_max_toxicity.value == pytest.approx(sum(max(v) for v in valid.values()) / len(valid))
    assert result.toxicity_probability.value == pytest.approx(sum(max(v) >= 0.5 for v in valid.values()) / len(valid))
    flat = [s for v in valid.values() for s in v]
    assert result.per_continuation_toxic_rate.value == pytest.approx(sum(s >= 0.5 for s in flat) / len(flat))
    assert result.num_failed == sum(s is None for ss in per_prompt.values() for s in ss)
    fluency = evaluate_fluency(records, (tiny_llama, tokenizer))
    assert fluency.perplexity.value > 1 and 0 < fluency.distinct["dist_1"].value <= 1


def write_prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "challenging": i % 2 == 0}) + "\n" for i, p in enumerate(PROMPTS)))
    return path


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse exits after printing help
        cli_main(["eval", "toxicity", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "fairalign eval toxicity" in text
    for flag in ("--model", "--prompts", "--scorer", "--out", "--challenging", "--ppl-model"):
        assert flag in text


def test_cli_smoke_and_resume(tmp_path, tiny_lm_dir, classifier_dir):
    """`eval toxicity` is the pipeline of `eval run --tasks toxicity`: the suite's files, the per-continuation
    records, and a rerun that regenerates and rescores nothing."""
    out = tmp_path / "run"
    argv = ["eval", "toxicity", "--model", str(tiny_lm_dir), "--prompts", str(write_prompts(tmp_path)),
            "--scorer", str(classifier_dir), "--scorer-label", "toxic", "--ppl-model", str(tiny_lm_dir),
            "--num-samples", "3", "--max-new-tokens", "5", "--batch-size", "2", "--num-resamples", "100",
            "--device", "cpu", "--out", str(out), "--no-progress"]
    assert cli_main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    entry = results["systems"][0]["tasks"]["toxicity"]
    tox = entry["details"]
    assert tox["num_prompts"] + tox["num_prompts_excluded"] == len(PROMPTS) and tox["num_continuations"] == 15
    assert entry["task_version"] >= 1 and entry["settings"]["num_samples"] == 3
    assert results["config"]["device"] == "cpu" and results["config"]["toxicity"]["ppl_model"] == str(tiny_lm_dir)
    assert "git_commit" in results["provenance"]
    assert set(tox["groups"]["challenging"]) == {"True", "False"}
    assert entry["metrics"]["perplexity"]["value"] > 1
    task_dir = out / "systems" / "model" / "toxicity"
    records = [json.loads(line) for line in (task_dir / "records.jsonl").read_text().splitlines()]
    assert len(records) == 15 and all("toxicity" in r for r in records)
    assert len((task_dir / "per_prompt.jsonl").read_text().splitlines()) == len(PROMPTS)
    report = (out / "report.md").read_text()
    assert "expected max toxicity" in report and "dist 2" in report
    # Rerun with the same --out: the finished result is reused; delete it and the caches still regenerate and
    # rescore nothing, to identical numbers.
    caches = sorted((task_dir / "cache").rglob("*.jsonl"))
    before = {p: p.read_text() for p in caches}
    assert cli_main(argv) == 0
    assert json.loads((out / "results.json").read_text())["systems"][0]["tasks"]["toxicity"]["reused"] is True
    (out / "systems" / "model" / "toxicity.json").unlink()
    assert cli_main(argv) == 0
    assert {p: p.read_text() for p in caches} == before
    again = json.loads((out / "results.json").read_text())["systems"][0]["tasks"]["toxicity"]
    assert again["metrics"] == entry["metrics"] and again["details"] == entry["details"]


def test_cli_rejects_bad_input_before_loading_models(tmp_path):
    from fairalign.align.errors import InputError

    args = eval_toxicity.make_parser().parse_args(
        ["--model", "does/not-matter", "--prompts", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")])
    with pytest.raises(FileNotFoundError):
        eval_toxicity.main(args)
    args = eval_toxicity.make_parser().parse_args(
        ["--model", "x", "--prompts", str(write_prompts(tmp_path)), "--scorer", "nonsense", "--out", str(tmp_path / "o")])
    with pytest.raises(InputError, match="unknown scorer"):
        eval_toxicity.main(args)
    args = eval_toxicity.make_parser().parse_args(
        ["--model", "x", "--prompts", str(write_prompts(tmp_path)), "--num-samples", "0", "--out", str(tmp_path / "o")])
    with pytest.raises(InputError, match="num_samples"):
        eval_toxicity.main(args)
    assert not (tmp_path / "o").exists()
