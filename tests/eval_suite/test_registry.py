"""The task registry's one typed loader: every shipped task loads; every key is used or an error naming the key
and the file; aggregations, sources and types are registered names; your own task runs from a folder."""
import textwrap

import pytest

from fairalign.align.errors import InputError
from fairalign.eval.registry import (AGGREGATIONS, SOURCES, TASK_DIR, all_tasks, default_tasks, load_task,
                                     load_task_file, task_files)

# A task of its own, in a folder of its own: a YAML and a module beside it. `answer_length` is the mean
# number of words a system answers with; the unit is the prompt.
MODULE = '''
from fairalign.eval.registry import aggregation, source
from fairalign.eval.stats import bootstrap_ci
from fairalign.eval.suite.sources import Source, local_provenance
from fairalign.eval.tasks.common import TaskOutput


@source("tiny_words_prompts")
def prompts(settings, seed=0, *, path):
    texts = open(path).read().splitlines()[: settings.limit]
    return Source(texts, {**local_provenance(path), "rows_used": len(texts)})


@aggregation("mean_words")
def mean_words(key):
    return lambda values: sum(values) / len(values)


def run(system, source, settings, ctx):
    answers = system.lm().generate(source.data, num_samples=1, max_new_tokens=settings["max_new_tokens"],
                                   seed=ctx.suite["seed"])
    values = [len(a[0].split()) for a in answers]
    est = bootstrap_ci(values, ctx.spec.statistic("answer_length"), num_resamples=ctx.suite["num_resamples"],
                       seed=ctx.suite["seed"])
    return TaskOutput({"answer_length": ctx.entry("answer_length", est, unit="prompts", units="prompts")},
                      {"prompts": {"unit": "prompt", "ids": list(map(str, range(len(values)))), "values": values}})
'''

YAML = '''
task: words
version: 1
description: "mean answer length in words (a toy task)"
module: words_task.py
output_type: generate
data:
  source: tiny_words_prompts
  path: PROMPTS
settings:
  limit: {type: int, default: 3, range: "[1, inf)", help: "first N prompts"}
  max_new_tokens: {type: int, default: 4, range: "[1, inf)", help: "tokens per answer"}
metrics:
  - {metric: answer_length, aggregation: mean_words, higher_is_better: null, ideal: null, scale: score}
'''


def test_every_shipped_task_loads_and_is_discovered():
    tasks = all_tasks()
    assert {"toxicity", "toxicity_challenging", "occupation", "bbnli", "counterfactual"} <= set(tasks)
    assert "toxicity_challenging" not in default_tasks() and "toxicity" in default_tasks()
    for name, spec in tasks.items():
        assert spec.path.parent == TASK_DIR and spec.description and spec.metrics
        for m in spec.metrics:
            assert m.aggregation in AGGREGATIONS
        assert spec.data["source"] in SOURCES
        spec.resolve_settings({})  # every default passes its own checks


def _write(tmp_path, text, name="t.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


BASE = (TASK_DIR / "toxicity.yaml").read_text()
VARIANT = f"include: {TASK_DIR / 'toxicity.yaml'}\n"  # the toxicity task with one key changed


@pytest.mark.parametrize("edit, fragments", [
    ("colour: blue\n", ["unknown key(s) ['colour']", "valid keys"]),
    ("version: 2\nversion: 3\n", ["key 'version' is given twice"]),
    ("metrics:\n  - {metric: x, aggregation: mean over prompts, higher_is_better: true, ideal: 1, scale: score}\n",
     ["aggregation 'mean over prompts' is not registered", "registered:"]),
    ("metrics:\n  - {metric: x, aggregation: mean_max_score, higher_is_better: true, ideal: 1, scale: pixels}\n",
     ["scale 'pixels'"]),
    ("metrics:\n  - {metric: x, aggregation: mean_max_score, higher_is_better: true, ideal: 1, scale: score, colour: red}\n",
     ["metrics[0]: unknown key(s) ['colour']"]),
    ("data: {source: toxicity_prompts, path: x, columns: [a]}\n", ["data: unknown key(s) ['columns']", "valid keys"]),
    ("data: {source: my_csv}\n", ["data.source 'my_csv' is not registered"]),
    ("settings:\n  k: {type: integer, default: 3, help: x}\n", ["settings.k: type 'integer'"]),
    ("settings:\n  k: {type: int, default: 3, help: x, range: 'one to ten'}\n", ["settings.k: range 'one to ten'"]),
    ("settings:\n  k: {type: int, default: 0, help: x, range: '[1, inf)'}\n", ["settings.k.default=0 is out of range"]),
    ("settings:\n  k: {type: int, default: 3}\n", ["settings.k: missing required key(s) ['help']"]),
    ("version: 0\n", ["version must be a positive integer"]),
    ("protocol: {x: 1}\n", ["protocol: given, but", "declares no Protocol"]),
    ("task: Bad Name\n", ["task: 'Bad Name' must match"]),
    ("module: no_such_module\n", ["module fairalign.eval.tasks.no_such_module cannot be imported"]),
])
def test_every_key_is_used_or_an_error_naming_it_and_the_file(tmp_path, edit, fragments):
    path = _write(tmp_path, VARIANT + ("" if edit.startswith("task:") else "task: t\n") + edit)
    with pytest.raises(InputError) as info:
        load_task_file(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_protocol_is_checked_against_the_modules_dataclass(tmp_path):
    text = (TASK_DIR / "occupation.yaml").read_text().replace("      form: completion\n", "      form: completion\n      colour: red\n", 1)
    with pytest.raises(InputError, match=r"protocol.templates\[0\]: unknown key\(s\) \['colour'\]"):
        load_task_file(_write(tmp_path, text, "occupation.yaml"))
    text = (TASK_DIR / "bbnli.yaml").read_text().replace("table_group_by: [", "table_group_by: 3 #[")
    with pytest.raises(InputError, match="table_group_by=3"):
        load_task_file(_write(tmp_path, text, "bbnli.yaml"))


def test_settings_are_checked_against_the_tasks_schema():
    spec = load_task("toxicity")
    assert spec.resolve_settings({"num_samples": 5})["num_samples"] == 5
    assert spec.resolve_settings({"num_samples": None})["num_samples"] == 25  # null = the task's default
    with pytest.raises(InputError, match=r"toxicity.top_p=nan is not a number"):
        spec.resolve_settings({"top_p": float("nan")})
    with pytest.raises(InputError, match=r"unknown setting\(s\) \['k'\] for task 'toxicity'"):
        spec.resolve_settings({"k": 25})
    with pytest.raises(InputError, match=r"occupation.scoring='all': \['all'\] not among the choices"):
        load_task("occupation").resolve_settings({"scoring": "all"})
    with pytest.raises(InputError, match=r"\['d3o'\] not among the choices"):  # a list: each item is checked
        load_task("occupation").resolve_settings({"directions": ["o2d", "d3o"]})


def test_malformed_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, "task: x\nsettings: {a: [\n")
    with pytest.raises(InputError, match=f"{path}.*not valid YAML"):
        load_task_file(path)


def test_your_own_task_from_a_folder_runs_through_the_suite(tmp_path, monkeypatch):
    from registry_golden import HashLM

    from fairalign.eval.suite import SystemSpec, load_config, run_suite

    folder = tmp_path / "my_tasks"
    folder.mkdir()
    (folder / "words_task.py").write_text(MODULE)
    (folder / "prompts.txt").write_text("Hello there\nTell me about cats\nWhy is the sky blue\nCount to three\n")
    _write(folder, YAML.replace("PROMPTS", str(folder / "prompts.txt")), "words.yaml")
    monkeypatch.setenv("FAIRALIGN_TASKS", str(folder))
    assert task_files()["words"] == folder / "words.yaml"
    systems = [SystemSpec("a", lm=HashLM("a")), SystemSpec("b", lm=HashLM("b"))]
    config = load_config(None, ["words.limit=4"], systems=systems, tasks=["words"], out=str(tmp_path / "run"),
                         num_resamples=50)
    results = run_suite(config, progress=False, reports=False)
    metric = results["systems"][0]["tasks"]["words"]["metrics"]["answer_length"]
    answers = HashLM("a").generate(["Hello there", "Tell me about cats", "Why is the sky blue", "Count to three"],
                                   max_new_tokens=4, seed=0)
    assert metric["value"] == pytest.approx(sum(len(a[0].split()) for a in answers) / 4) and metric["n"] == 4
    [diff] = results["comparisons"]["differences"]
    assert diff["metric"] == "answer_length" and diff["paired"]
    with pytest.raises(InputError, match=r"words.limit=0 is out of range"):
        load_config(None, ["words.limit=0"], systems=systems, tasks=["words"])


def test_a_task_declared_twice_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "toxicity.yaml").write_text(BASE)
    monkeypatch.setenv("FAIRALIGN_TASKS", str(tmp_path))
    with pytest.raises(InputError, match="declared twice"):
        task_files()
