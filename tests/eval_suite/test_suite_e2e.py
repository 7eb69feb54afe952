"""The suite end to end on a tiny random model: results, per-task files, comparisons, skipped tasks."""
import json
import math
from pathlib import Path

import pytest

from suite_helpers import CountingPredictorFactory, CountingScorer, suite_dict

from fairalign.eval.suite import SuiteConfig, SystemSpec, run_suite, validate_results
from fairalign.eval.suite.sources import sha256_file
from fairalign.eval.registry import load_task


def test_compare_run_writes_every_artefact(compare_run):
    results, config, scorer = compare_run
    out = Path(config["out"])
    validate_results(json.loads((out / "results.json").read_text()))
    assert [s["name"] for s in results["systems"]] == ["base", "tuned", "uddia"]
    for system in results["systems"]:
        for task in ("toxicity", "occupation", "bbnli"):
            entry = system["tasks"][task]
            assert entry["status"] == "ok" and entry["reused"] is False
            assert sha256_file(out / entry["file"]) == entry["file_sha256"]
            for metric in entry["metrics"].values():
                assert metric["level"] == 0.95 and metric["n"] >= 0
    base = results["systems"][0]["tasks"]
    assert base["toxicity"]["data"]["sha256"] == sha256_file(config["toxicity"]["prompts"])
    assert base["toxicity"]["data"]["rows_used"] == 6
    assert base["occupation"]["data"]["rows_used"] == 3  # the toy table's three occupations
    assert base["bbnli"]["data"]["rows_used"] == 16
    assert base["toxicity"]["settings"]["scorer"] == "counting-scorer"  # the injected scorer, not task.yaml's
    assert scorer.texts == 3 * 6 * 2  # 3 systems x 6 prompts x 2 samples, each scored once
    assert {"report.html", "report.md", "results.json"} <= {p.name for p in out.iterdir()}
    md = (out / "report.md").read_text()
    for name in ("toxicity_metrics", "toxicity_differences", "occupation_metrics", "bbnli_differences"):
        assert f"plots/{name}.png" in md and (out / "plots" / f"{name}.png").stat().st_size > 1000
    uddia = results["systems"][2]
    assert any("log-likelihood" in n for n in uddia["notes"])
    assert any("merged" in n for n in results["systems"][1]["notes"])


def test_uddia_and_adapter_change_generations(compare_run):
    """Each system generated its own continuations (its own cache), not the base model's."""
    results, config, _ = compare_run
    out = Path(config["out"])

    def texts(name):
        lines = [json.loads(line) for line in next((out / "systems" / name / "toxicity").rglob("generations.jsonl")).open()]
        return [c for batch in lines[1:] for r in batch["rows"] for c in r["continuations"]]  # after the header

    assert texts("base") != texts("tuned")
    assert texts("base") != texts("uddia")


def test_metrics_and_differences_recompute_from_units(compare_run):
    """Each system's value equals its statistic on the stored units, and each difference is the difference of
    the two values on the shared units, paired."""
    results, config, _ = compare_run
    out = Path(config["out"])
    files = {(s["name"], t): json.loads((out / e["file"]).read_text()) for s in results["systems"] for t, e in s["tasks"].items()}
    checked = 0
    for (name, task), record in files.items():
        for key, metric in record["metrics"].items():
            value = load_task(task).statistic(key)(record["units"][metric["units"]]["values"])
            if metric["value"] is None:
                assert value is None or not math.isfinite(value)
            else:
                assert value == pytest.approx(metric["value"], rel=1e-9, abs=1e-12), (name, task, key)
                checked += 1
    assert checked > 20
    diffs = results["comparisons"]["differences"]
    assert {d["task"] for d in diffs} == {"toxicity", "occupation", "bbnli"}
    assert {d["system"] for d in diffs} == {"tuned", "uddia"}
    for d in diffs:
        assert d["paired"] is True and d["baseline"] == "base"
        a = files[("base", d["task"])]["metrics"][d["metric"]]["value"]
        b = files[(d["system"], d["task"])]["metrics"][d["metric"]]["value"]
        if d["value"] is not None:
            assert d["value"] == pytest.approx(b - a, abs=1e-9)
            if d["low"] is not None:
                assert d["low"] <= d["high"]


def test_uddia_loglikelihood_numbers_equal_base(compare_run):
    """UDDIA changes decoding only: its log-likelihood-scored occupation numbers are the base model's."""
    results, _, _ = compare_run
    diffs = [d for d in results["comparisons"]["differences"]
             if d["system"] == "uddia" and d["task"] == "occupation" and d["metric"].startswith("loglikelihood.")]
    assert diffs and all(d["value"] == pytest.approx(0.0, abs=1e-9) for d in diffs)


def test_missing_data_is_skipped_with_instructions_and_others_run(tmp_path, capfd, monkeypatch):
    """Data left out and absent from the documented places (no shared data, the Hub offline): BBNLI is skipped
    with instructions; occupation runs on the BLS table that ships with fairalign."""
    monkeypatch.setenv("FAIRALIGN_SHARED_DATA", str(tmp_path / "no-shared-data"))
    monkeypatch.setenv("FAIRALIGN_CACHE", str(tmp_path / "no-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = suite_dict(tmp_path, "unused", [], toxicity={"ppl_model": "none"},
                        occupation={"bls": None, "scoring": "generate"}, bbnli={"data": None})
    config["systems"] = [SystemSpec("echo", lm=lambda prompts: [" a nice day" for _ in prompts])]
    results = run_suite(SuiteConfig.from_dict(config), scorer=CountingScorer(), progress=False, reports=False)
    tasks = results["systems"][0]["tasks"]
    assert tasks["toxicity"]["status"] == "ok" and tasks["occupation"]["status"] == "ok"
    assert tasks["occupation"]["data"]["path"].endswith("cpsaat11_2022.csv")  # the packaged table
    assert tasks["bbnli"]["status"] == "skipped"
    assert "--bbnli-data" in tasks["bbnli"]["how_to"] and "demo" in tasks["bbnli"]["how_to"] and tasks["bbnli"]["reason"]
    err = capfd.readouterr().err
    assert "skipping bbnli" in err and "how to get it" in err
    validate_results(results)


def test_callable_system_cannot_be_judged_by_loglikelihood(tmp_path):
    config = suite_dict(tmp_path, "unused", [], tasks=["bbnli"])
    config["systems"] = [SystemSpec("echo", lm=lambda prompts: [" yes" for _ in prompts])]
    results = run_suite(SuiteConfig.from_dict(config), progress=False, reports=False)
    entry = results["systems"][0]["tasks"]["bbnli"]
    assert entry["status"] == "skipped" and "bbnli.scoring: generate" in entry["reason"]
    config["bbnli"]["scoring"] = "generate"
    results = run_suite(SuiteConfig.from_dict(config), progress=False, reports=False)
    assert results["systems"][0]["tasks"]["bbnli"]["status"] == "ok"


def test_unpaired_when_systems_have_different_prompts(tmp_path):
    """Two systems on different prompt sets (two runs' files compared) -> the difference says unpaired."""
    from fairalign.eval.suite import compare

    units_a = {"unit": "prompt", "ids": ["a1", "a2", "a3"], "values": [1.0, 2.0, 3.0]}
    units_b = {"unit": "prompt", "ids": ["b1", "b2", "b3"], "values": [2.0, 3.0, 4.0]}
    d = compare.difference(lambda v: sum(v) / len(v), units_a, units_b, num_resamples=200)
    assert d["paired"] is False and "unpaired" in d["method"] and d["value"] == pytest.approx(1.0)


def test_shared_data_is_found_in_the_documented_place(shared_data, monkeypatch):
    """With $FAIRALIGN_SHARED_DATA (or ../shared/data), BLS and BBNLI need no flag."""
    from fairalign.eval.registry import load_task
    from fairalign.eval.registry import Settings
    from fairalign.eval.suite.sources import bbnli_dataset, bls_table

    monkeypatch.setenv("FAIRALIGN_SHARED_DATA", str(shared_data))
    bls = bls_table(None)
    assert bls.provenance["path"].endswith("cpsaat11_2022_official_format.xlsx") and len(bls.provenance["sha256"]) == 64
    bbnli = bbnli_dataset(Settings(load_task("bbnli").resolve_settings({"max_premises_per_subtopic": 1})))
    assert bbnli.provenance["path"].endswith("bbnli_expanded.csv") and bbnli.provenance["rows_used"] == len(bbnli.data)
    assert bbnli.provenance["sha256"] == "62ba7399d275a663fe1b5c730e2206f631882e3692d09a79463e8f149149c858"  # task.yaml pin


def test_predictor_factory_is_used_for_every_system(tmp_path):
    factory = CountingPredictorFactory()
    config = suite_dict(tmp_path, "unused", [], tasks=["bbnli"])
    config["systems"] = [SystemSpec("a", lm=lambda p: ["x"] * len(p)), SystemSpec("b", lm=lambda p: ["y"] * len(p))]
    results = run_suite(SuiteConfig.from_dict(config), bbnli_predictor=factory, progress=False, reports=False)
    assert factory.built == 2 and factory.pairs == 2 * 16
    d = [x for x in results["comparisons"]["differences"] if x["metric"] == "accuracy"]
    assert len(d) == 1 and d[0]["paired"] and d[0]["unit"] == "premise" and d[0]["n"] == 4


def test_prompts_asked_for_by_name_but_unavailable_are_errors(monkeypatch):
    """A Hub id or a path given explicitly is an error when it cannot be had (never a skip)."""
    from fairalign.align.errors import MissingPathError
    from fairalign.eval.registry import load_task
    from fairalign.eval.registry import Settings
    from fairalign.eval.suite.sources import toxicity_prompts

    spec = load_task("toxicity")
    data = {k: v for k, v in spec.data.items() if k != "source"}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingPathError) as info:
        toxicity_prompts(Settings(spec.resolve_settings({"prompts": "nobody/no-such-prompts"})), **data)
    assert "--prompts" in str(info.value) and "nobody/no-such-prompts" in str(info.value)
    with pytest.raises(MissingPathError, match="does not exist"):
        toxicity_prompts(Settings(spec.resolve_settings({"prompts": "/no/such/prompts.jsonl"})), **data)
