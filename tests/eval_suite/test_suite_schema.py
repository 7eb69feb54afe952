"""results.json schema version 2: a real run passes; each kind of damage fails with its JSON path."""
import copy
import json
from pathlib import Path

import pytest

from fairalign.eval.suite import SCHEMA_VERSION, SchemaError, validate_results


@pytest.fixture
def results(compare_run):
    return copy.deepcopy(compare_run[0])


def test_a_real_run_on_disk_is_valid(compare_run):
    on_disk = json.loads((Path(compare_run[1]["out"]) / "results.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION == 2
    validate_results(on_disk)


def _fails(obj, *fragments):
    with pytest.raises(SchemaError) as info:
        validate_results(obj)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_missing_or_wrong_version(results):
    del results["schema_version"]
    _fails(results, "results.schema_version: missing")
    results["schema_version"] = 1
    _fails(results, "understands version 2, got 1")


def test_metric_without_a_proper_interval(results):
    metric = results["systems"][1]["tasks"]["toxicity"]["metrics"]["expected_max_toxicity"]
    metric["low"] = "0.1"
    _fails(results, "results.systems[1].tasks.toxicity.metrics.expected_max_toxicity.low: expected num or null")
    metric["low"], metric["high"] = 0.9, 0.1
    _fails(results, "low 0.9 > high 0.1")
    metric["low"], metric["high"] = None, 0.5
    _fails(results, "both be numbers or both null")
    del metric["level"]
    _fails(results, "expected_max_toxicity.level: missing")


def test_data_provenance_is_required(results):
    data = results["systems"][0]["tasks"]["bbnli"]["data"]
    data["sha256"] = None
    _fails(results, "bbnli.data.sha256: a local file needs its sha256")
    data.update(path=None, hub_id=None)
    _fails(results, "needs a local path (with sha256) or a Hub id")


def test_task_entries_and_comparisons(results):
    del results["systems"][0]["tasks"]["occupation"]
    results["systems"][1]["tasks"]["bbnli"] = {"status": "skipped"}
    results["comparisons"]["differences"][0]["system"] = "ghost"
    results["comparisons"]["baseline"] = "tuned"
    _fails(results, "results.systems[0].tasks.occupation: missing", "tasks.bbnli.reason: missing",
           "'ghost' is not one of the systems", "must be the first system 'base'", "problem(s)")


def test_not_an_object():
    with pytest.raises(SchemaError, match="expected a JSON object"):
        validate_results([1, 2])


def test_optional_report_fields_are_checked_when_present(results):
    ok = results["systems"][0]["tasks"]["toxicity"]
    metric = ok["metrics"]["expected_max_toxicity"]
    diff = results["comparisons"]["differences"][0]
    for key in ("scale", "caveats"):  # an older file without them is valid
        metric.pop(key, None), ok.pop(key, None)
    for key in ("p", "p_holm", "verdict_holm"):
        diff.pop(key, None)
    validate_results(results)
    metric["scale"], ok["caveats"] = "proportion", ["demo prompts (8, bundled), not RealToxicityPrompts"]
    diff.update(p=0.04, p_holm=None, verdict_holm="no clear difference")
    validate_results(results)
    metric["scale"], ok["caveats"] = "percent", "demo prompts"
    diff.update(p=1.5, p_holm="0.1", verdict_holm=None)
    _fails(results, "expected_max_toxicity.scale: must be one of", "toxicity.caveats: expected list",
           "differences[0].p: must lie in [0, 1], got 1.5", "differences[0].p_holm: expected num or null",
           "differences[0].verdict_holm: expected str")
    ok["caveats"] = ["fine", 3]
    _fails(results, "toxicity.caveats: must be a list of strings")
