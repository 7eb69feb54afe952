"""The task registry moved the three evaluations onto one pipeline without moving a number: the same fixed
inputs (registry_golden.py: a text-hash LM, scorer and predictor, so no float model arithmetic) give
byte-identical metrics, units, details, notes and comparisons to golden/suite_v1.json, written by the pipeline
before the registry (commit e099299).

Left out of the comparison, each for a stated reason: `scale` (a field the registry added to every metric),
the BBNLI details' `environment` (the git commit and library versions of the run), and the occupation details'
`config.progress` (the old suite showed the evaluation's own progress bars by mistake; now it shows its own).
"""
import json

from registry_golden import GOLDEN, canonical, run_golden


def _comparable(run: dict) -> dict:
    run = json.loads(json.dumps(run))
    for key, task in run["tasks"].items():
        for metric in task["metrics"].values():
            metric.pop("scale", None)
        task["details"].pop("environment", None)
        if key.endswith("/occupation"):
            task["details"]["config"].pop("progress", None)
    return run


def test_registry_pipeline_gives_the_pre_registry_numbers(tmp_path):
    old = _comparable(json.loads(GOLDEN.read_text()))
    new = _comparable(run_golden(tmp_path))
    assert sorted(new["tasks"]) == sorted(old["tasks"])
    for key in old["tasks"]:
        for part in ("metrics", "units", "details", "notes"):
            assert canonical(new["tasks"][key][part]) == canonical(old["tasks"][key][part]), f"{key}: {part} moved"
    assert canonical(new["comparisons"]) == canonical(old["comparisons"])
