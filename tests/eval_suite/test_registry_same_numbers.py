"""The task registry moved the three evaluations onto one pipeline without moving a number.

Fixed inputs (registry_golden.py: a text-hash LM, scorer and predictor, so no float model arithmetic):
- against golden/suite_v1.json, written by the pipeline *before* the registry (commit e099299): every metric's
  value and n, every unit's values, and every comparison's value are identical. The intervals of a few
  proportions moved on purpose afterwards (Wilson where the bootstrap collapses at 0 or 1), so v1's intervals
  are not compared;
- against golden/suite_v2.json (the registry pipeline with those intervals, p-values and Holm): byte-identical
  metrics, units, details, notes and comparisons.
Left out everywhere, for a stated reason: the BBNLI details' `environment` (the git commit and library
versions of the run), and v1's `scale` (a field the registry added) and the occupation details'
`config.progress` (the old suite showed the evaluation's own progress bars by mistake).
"""
import json

import pytest

from registry_golden import GOLDEN, GOLDEN_V1, canonical, run_golden


@pytest.fixture(scope="module")
def new_run(tmp_path_factory):
    return _comparable(run_golden(tmp_path_factory.mktemp("golden")))


def _comparable(run: dict) -> dict:
    run = json.loads(json.dumps(run))
    for key, task in run["tasks"].items():
        task["details"].pop("environment", None)
        if key.endswith("/occupation"):
            task["details"]["config"].pop("progress", None)
    return run


def test_the_registry_moved_no_number_of_the_pre_registry_pipeline(new_run):
    old = _comparable(json.loads(GOLDEN_V1.read_text()))
    assert sorted(new_run["tasks"]) == sorted(old["tasks"])
    for key, task in old["tasks"].items():
        new = new_run["tasks"][key]
        assert {m: (e["value"], e["n"], e["units"]) for m, e in new["metrics"].items()} == \
               {m: (e["value"], e["n"], e["units"]) for m, e in task["metrics"].items()}, key
        assert canonical(new["units"]) == canonical(task["units"]), key
    assert [(d["task"], d["metric"], d["system"], d["value"], d["n"]) for d in new_run["comparisons"]] == \
           [(d["task"], d["metric"], d["system"], d["value"], d["n"]) for d in old["comparisons"]]


def test_the_registry_pipeline_gives_the_golden_numbers_byte_for_byte(new_run):
    golden = _comparable(json.loads(GOLDEN.read_text()))
    for key in golden["tasks"]:
        for part in ("metrics", "units", "details", "notes"):
            assert canonical(new_run["tasks"][key][part]) == canonical(golden["tasks"][key][part]), f"{key}: {part} moved"
    assert canonical(new_run["comparisons"]) == canonical(golden["comparisons"])
