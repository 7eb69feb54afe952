"""`fairalign eval suite` through the real dispatcher: two systems compared on toxicity, offline scorer."""
import json

from suite_helpers import one_thread, write_prompts

from fairalign.eval.suite import validate_results
from fairalign.scripts.cli import main as cli


def test_cli_compares_two_systems(tiny_files, tmp_path, capsys):
    out = tmp_path / "run"
    model, adapter = tiny_files["model"], tiny_files["adapter"]
    argv = ["eval", "suite", "--out", str(out), "--tasks", "toxicity", "--prompts", write_prompts(tmp_path / "p.jsonl"),
            "--scorer", "profanity", "--system", f"name=base,model={model}", "--system", f"name=tuned,model={model},adapter={adapter}",
            "--set", "toxicity.num_samples=2", "--set", "toxicity.max_new_tokens=3", "--set", "toxicity.ppl_model=none",
            "--num-resamples", "50", "--no-progress"]
    with one_thread():
        assert cli(argv) == 0
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert [s["name"] for s in results["systems"]] == ["base", "tuned"]
    assert results["systems"][0]["tasks"]["toxicity"]["settings"]["scorer"] == "profanity"
    assert any("offline proxy" in n for n in results["systems"][0]["tasks"]["toxicity"]["notes"])
    diffs = results["comparisons"]["differences"]
    assert diffs and all(d["paired"] and d["system"] == "tuned" for d in diffs)
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert "base: toxicity ok" in capsys.readouterr().out
    assert cli(argv) == 0  # rerun: everything reused
    assert "toxicity ok (reused)" in capsys.readouterr().out


def test_cli_config_errors_exit_2(capsys):
    assert cli(["eval", "suite", "--model", "m", "--system", "name=a,model=m"]) == 2
    assert "either --system" in capsys.readouterr().err
    assert cli(["eval", "suite", "--system", "name=a,model=m", "--set", "toxicity.limt=3"]) == 2
    assert "unknown setting(s) ['limt']" in capsys.readouterr().err


def test_cli_missing_adapter_fails_before_any_work(tmp_path, capsys):
    argv = ["eval", "suite", "--out", str(tmp_path / "run"), "--model", "smollm2", "--adapter", str(tmp_path / "nope")]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "not a PEFT adapter folder" in err and "fairalign demo" in err
    assert not (tmp_path / "run").exists()
