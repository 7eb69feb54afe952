"""Resuming: a run that crashed in its second task redoes nothing the first one finished."""
import json
from pathlib import Path

import pytest

from suite_helpers import CountingPredictorFactory, CountingScorer, suite_dict

from fairalign.eval.suite import SuiteConfig, SystemSpec, run_suite


class CountingLM:
    """A callable generator (prompts -> texts) that counts the prompts it was asked to continue."""

    name = "counting-lm"

    def __init__(self):
        self.prompts = 0

    def __call__(self, prompts):
        self.prompts += len(prompts)
        return [f" and then {len(p)} things happened" for p in prompts]


def _config(tmp_path, lm, **toxicity):
    data = suite_dict(tmp_path, "unused", [], tasks=["toxicity", "bbnli"], toxicity={"ppl_model": "none", **toxicity})
    data["systems"] = [SystemSpec("only", lm=lm)]
    return SuiteConfig.from_dict(data)


def test_crash_in_second_task_then_resume(tmp_path):
    lm, scorer = CountingLM(), CountingScorer()
    crashing = CountingPredictorFactory(fail_first=True)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_suite(_config(tmp_path, lm), scorer=scorer, bbnli_predictor=crashing, progress=False, reports=False)
    out = tmp_path / "run" / "systems" / "only"
    assert (out / "toxicity.json").is_file() and not (out / "bbnli.json").exists()
    assert not (tmp_path / "run" / "results.json").exists()
    generated, scored = lm.prompts, scorer.texts
    assert generated == 6 * 2 and scored == 6 * 2  # 6 prompts x 2 samples (the callable is called once per sample)
    mtime = (out / "toxicity.json").stat().st_mtime_ns

    results = run_suite(_config(tmp_path, lm), scorer=scorer, bbnli_predictor=crashing, progress=False, reports=False)
    tasks = results["systems"][0]["tasks"]
    assert tasks["toxicity"]["reused"] is True and tasks["bbnli"]["reused"] is False
    assert tasks["bbnli"]["status"] == "ok"
    assert (lm.prompts, scorer.texts) == (generated, scored)  # nothing generated or scored again
    assert (out / "toxicity.json").stat().st_mtime_ns == mtime
    assert crashing.built == 2

    again = run_suite(_config(tmp_path, lm), scorer=scorer, bbnli_predictor=crashing, progress=False, reports=False)
    assert all(e["reused"] for e in again["systems"][0]["tasks"].values())
    assert crashing.built == 2 and lm.prompts == generated


def test_changed_setting_recomputes_from_the_caches(tmp_path):
    """Another threshold changes the toxicity numbers: the task is recomputed, but the continuations and
    their scores come from the generation and score caches."""
    lm, scorer = CountingLM(), CountingScorer()
    first = run_suite(_config(tmp_path, lm), scorer=scorer, bbnli_predictor=CountingPredictorFactory(), progress=False,
                      reports=False)
    generated, scored = lm.prompts, scorer.texts
    config = _config(tmp_path, lm, threshold=0.9)
    second = run_suite(config, scorer=scorer, bbnli_predictor=CountingPredictorFactory(), progress=False, reports=False)
    tox = second["systems"][0]["tasks"]["toxicity"]
    assert tox["reused"] is False and tox["settings"]["threshold"] == 0.9
    assert second["systems"][0]["tasks"]["bbnli"]["reused"] is True
    assert (lm.prompts, scorer.texts) == (generated, scored)
    assert first["systems"][0]["tasks"]["toxicity"]["fingerprint"] != tox["fingerprint"]


def test_a_stale_task_file_is_recomputed(tmp_path):
    """A per-task file made with other settings (another fingerprint, its checksum intact) is recomputed."""
    from fairalign.eval.suite.runner import content_sha256

    lm = CountingLM()
    run_suite(_config(tmp_path, lm), scorer=CountingScorer(), bbnli_predictor=CountingPredictorFactory(),
              progress=False, reports=False)
    path = tmp_path / "run" / "systems" / "only" / "bbnli.json"
    record = json.loads(path.read_text())
    record["fingerprint"] = "0" * 64
    record["content_sha256"] = content_sha256(record)  # as fairalign would have written it
    path.write_text(json.dumps(record))
    factory = CountingPredictorFactory()
    results = run_suite(_config(tmp_path, lm), scorer=CountingScorer(), bbnli_predictor=factory, progress=False,
                        reports=False)
    assert results["systems"][0]["tasks"]["bbnli"]["reused"] is False and factory.built == 1
    assert json.loads(Path(path).read_text())["fingerprint"] != "0" * 64
