"""Fault injection for the evaluation suite and the toxicity caches (issue 15, "no silent wrong results").

Each test reproduces one fault that used to give a silently wrong result and checks that it now gives the
right result or a clear error: two runs on one folder, a kill mid-run, caches cut at any byte or corrupted,
a resume with another batch size, an edited per-task file, a mistyped data path, a skip over earlier
results, and NaN / infinite / negative / out-of-range values for every numeric suite setting (taken from
the dataclass fields, so a new field is covered without editing this file). Tiny and fast: a seeded
callable sampler (suite_fault_helpers.SeededSampler), no model weights.
"""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from suite_fault_helpers import PROMPTS, BatchScorer, SeededSampler, numbers, tox_config, two_systems, write_prompts

from fairalign.align.errors import FolderInUseError, InputError, MissingPathError
from fairalign.align.validation import Interval
from fairalign.eval.suite import SuiteConfig, SystemSpec, load_config, run_suite, validate_results
from fairalign.eval.toxicity import generate_continuations, score_records
from fairalign.scripts.cli import main as cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval_suite"))  # the suite tests' toy data
from suite_helpers import CountingPredictorFactory, write_toy_bbnli  # noqa: E402

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)}
QUIET = dict(progress=False, reports=False)


def _suite(prompts, out, systems=None, **kwargs):
    return run_suite(tox_config(prompts, out, systems or two_systems(), **kwargs), scorer=BatchScorer(), **QUIET)


# ------------------------------------------------------------------------------------- runs never mix
def test_a_second_suite_run_on_a_held_folder_is_refused_naming_the_holder(tmp_path):
    """The second run is a real process, started while the first holds the folder (from inside its model)."""
    prompts, out = write_prompts(tmp_path / "p.jsonl"), tmp_path / "run"
    argv = ["eval", "suite", "--out", str(out), "--tasks", "toxicity", "--prompts", prompts, "--model",
            "nobody/no-such-model", "--set", "toxicity.ppl_model=none", "--no-progress"]
    second = {}

    def start_second_run():
        code = f"import sys; from fairalign.scripts.cli import main; sys.exit(main({argv!r}))"
        second["run"] = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)

    results = _suite(prompts, out, [SystemSpec("base", lm=SeededSampler("base-lm", on_first_call=start_second_run))])
    run = second["run"]
    assert run.returncode == 2, run.stderr
    assert "is in use by another fairalign run" in run.stderr and f"pid {os.getpid()}" in run.stderr, run.stderr
    assert "fairalign eval suite" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert results["systems"][0]["tasks"]["toxicity"]["status"] == "ok"


def test_eval_toxicity_refuses_an_out_folder_another_process_holds(tmp_path, capsys):
    out = tmp_path / "tox"
    code = ("import sys, time\nfrom fairalign.align.locking import hold_folder\n"
            "with hold_folder(sys.argv[1], 'holder-for-test'):\n    print('held', flush=True)\n    time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        argv = ["eval", "toxicity", "--model", "nobody/no-such-model", "--prompts", write_prompts(tmp_path / "p.jsonl"),
                "--scorer", "profanity", "--ppl-model", "none", "--out", str(out), "--no-progress"]
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert "is in use by another fairalign run" in err and f"pid {holder.pid}" in err and "holder-for-test" in err
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_comparisons_use_this_runs_records_not_files_rewritten_meanwhile(tmp_path):
    """While the second system runs, another writer replaces the baseline's finished file with a file from
    a run with another seed: the differences must still be this run's (they used to be read back from disk)."""
    prompts = write_prompts(tmp_path / "p.jsonl")
    foreign = _suite(prompts, tmp_path / "seed1", seed=1)
    clean = _suite(prompts, tmp_path / "clean")
    out = tmp_path / "run"

    def overwrite_baseline_file():
        shutil.copy(tmp_path / "seed1" / "systems" / "base" / "toxicity.json", out / "systems" / "base" / "toxicity.json")

    mixed = _suite(prompts, out, two_systems(on_first_call=overwrite_baseline_file))
    assert numbers(foreign)["metrics"]["base"] != numbers(clean)["metrics"]["base"]  # the foreign file differs
    assert numbers(mixed) == numbers(clean)


# ------------------------------------------------------------------------------ resume = uninterrupted
def test_sigkill_during_a_suite_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    prompts, out = write_prompts(tmp_path / "p.jsonl"), tmp_path / "run"
    child = subprocess.Popen([sys.executable, str(HERE / "suite_fault_helpers.py"), prompts, str(out), "0.3"], env=ENV)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and child.poll() is None:
            caches = list((out / "systems" / "other").rglob("generations.jsonl"))
            if caches and caches[0].read_bytes().count(b"\n") >= 2:  # header + a batch of the second system
                break
            time.sleep(0.02)
        assert child.poll() is None, "the suite finished before it could be killed"
        with pytest.raises(FolderInUseError, match=f"pid {child.pid}"):  # the Python API is refused too
            _suite(prompts, out)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert (out / "systems" / "base" / "toxicity.json").is_file()
    assert not (out / "systems" / "other" / "toxicity.json").exists() and not (out / "results.json").exists()

    systems = two_systems()
    resumed = _suite(prompts, out, systems)  # the lock died with the killed run: the folder is free at once
    uninterrupted = _suite(prompts, tmp_path / "clean")
    assert numbers(resumed) == numbers(uninterrupted)
    assert resumed["systems"][0]["tasks"]["toxicity"]["reused"] is True and systems[0].lm.calls == 0
    assert systems[1].lm.calls <= 3  # 4 batches in all; at least one was finished before the kill


def _generate(cache, lm=None, batch_size=3):
    return generate_continuations(lm or SeededSampler(), PROMPTS, num_samples=3, max_new_tokens=4, batch_size=batch_size,
                                  cache_path=cache, seed=7, progress=False)


def _cuts(data: bytes) -> list[int]:
    """Byte offsets to cut a file at: inside the header, at every line end, in the middle of every line."""
    ends = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
    middles = [(a + b) // 2 for a, b in zip([0] + ends, ends)]
    return sorted(set(ends[:-1] + middles + [len(data) - 1]))


def test_a_generation_cache_cut_anywhere_resumes_to_the_uninterrupted_result(tmp_path):
    full = tmp_path / "full.jsonl"
    expected = _generate(full)
    data = full.read_bytes()
    for cut in _cuts(data):
        cache = tmp_path / f"cut-{cut}.jsonl"
        cache.write_bytes(data[:cut])
        sampler = SeededSampler()
        assert _generate(cache, sampler) == expected, f"cache cut at byte {cut} of {len(data)}"
        assert sampler.calls >= 1
        assert cache.read_bytes().count(b"\n") >= data.count(b"\n")  # the resumed file holds every batch again


def test_a_score_cache_cut_anywhere_resumes_to_the_uninterrupted_scores(tmp_path):
    records = _generate(None)
    full = tmp_path / "full.jsonl"
    expected = score_records(records, BatchScorer(), batch_size=5, cache_path=full)
    data = full.read_bytes()
    for cut in _cuts(data):
        cache = tmp_path / f"cut-{cut}.jsonl"
        cache.write_bytes(data[:cut])
        assert score_records(records, BatchScorer(), batch_size=5, cache_path=cache) == expected, f"cut at byte {cut}"


def _edit(node):
    """Change the first continuation text or toxicity score inside a parsed cache line (whatever its layout)."""
    if isinstance(node, dict):
        if isinstance(node.get("continuations"), list):
            node["continuations"][0] += " edited"
            return True
        if isinstance(node.get("toxicity"), float):
            node["toxicity"] = 1.0 - node["toxicity"]
            return True
        return any(_edit(v) for v in node.values())
    return isinstance(node, list) and any(_edit(v) for v in node)


def _damage(path: Path, line: int, how: str) -> None:
    lines = path.read_text().split("\n")
    if how == "not json":
        lines[line - 1] = lines[line - 1][: len(lines[line - 1]) // 2]  # a complete line holding half a line
    else:  # still valid JSON, other content
        entry = json.loads(lines[line - 1])
        assert _edit(entry)
        lines[line - 1] = json.dumps(entry)
    path.write_text("\n".join(lines))


@pytest.mark.parametrize("how", ["not json", "edited"])
@pytest.mark.parametrize("kind", ["generations", "scores"])
def test_a_corrupt_cache_line_is_an_error_naming_the_file_and_the_line(tmp_path, kind, how):
    cache = tmp_path / f"{kind}.jsonl"
    records = _generate(cache if kind == "generations" else None)
    if kind == "scores":
        score_records(records, BatchScorer(), batch_size=5, cache_path=cache)
    _damage(cache, 3, how)  # a middle line: line 1 is the header
    with pytest.raises(InputError) as info:
        if kind == "generations":
            _generate(cache)
        else:
            score_records(records, BatchScorer(), batch_size=5, cache_path=cache)
    assert f"{cache}:3" in str(info.value) and "delete the file" in str(info.value)


def test_resuming_with_another_batch_size_is_refused(tmp_path):
    cache = tmp_path / "g.jsonl"
    records = _generate(cache, batch_size=3)
    with pytest.raises(InputError) as info:
        _generate(cache, batch_size=4)
    message = str(info.value)
    assert str(cache) in message and "batch_size: recorded 3, requested 4" in message and "delete the file" in message
    scores = tmp_path / "s.jsonl"
    score_records(records, BatchScorer(), batch_size=5, cache_path=scores)
    with pytest.raises(InputError, match="batch_size: recorded 5, requested 6"):
        score_records(records, BatchScorer(), batch_size=6, cache_path=scores)


def test_a_cache_in_the_old_row_per_line_format_is_refused(tmp_path):
    from fairalign.eval.lm import as_lm
    from fairalign.eval.toxicity.generation import _generator_id

    cache = tmp_path / "g.jsonl"
    header = {"kind": "toxicity-generations", "generator": _generator_id(as_lm(SeededSampler())), "num_samples": 3,
              "max_new_tokens": 4, "top_p": 0.9, "temperature": 1.0, "do_sample": True, "seed": 7,
              "use_chat_template": False}  # what the old code wrote for these settings (it would have resumed)
    row = {"prompt_id": "0", "prompt": PROMPTS[0], "continuations": ["a", "b", "c"]}
    cache.write_text(json.dumps({"header": header}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(InputError, match=r"format-1 cache .* delete the file"):
        _generate(cache)


# --------------------------------------------------------------------------------- per-task files
def test_an_edited_task_file_is_refused_when_it_would_be_reused(tmp_path):
    prompts, out = write_prompts(tmp_path / "p.jsonl"), tmp_path / "run"
    systems = lambda: [SystemSpec("base", lm=SeededSampler("base-lm"))]  # noqa: E731
    _suite(prompts, out, systems())
    path = out / "systems" / "base" / "toxicity.json"
    record = json.loads(path.read_text())
    record["metrics"]["expected_max_toxicity"]["value"] = 0.0
    path.write_text(json.dumps(record, indent=1))
    with pytest.raises(InputError) as info:
        _suite(prompts, out, systems())
    assert str(path) in str(info.value) and "changed after fairalign wrote it" in str(info.value)
    assert "Delete it" in str(info.value)


def test_a_torn_task_file_is_recomputed_and_the_run_says_so(tmp_path, capfd):
    prompts, out = write_prompts(tmp_path / "p.jsonl"), tmp_path / "run"
    first = _suite(prompts, out, [SystemSpec("base", lm=SeededSampler("base-lm"))])
    path = out / "systems" / "base" / "toxicity.json"
    path.write_bytes(path.read_bytes()[:1000])
    capfd.readouterr()
    sampler = SeededSampler("base-lm")
    again = _suite(prompts, out, [SystemSpec("base", lm=sampler)])
    assert f"{path} is not valid JSON" in capfd.readouterr().err
    assert again["systems"][0]["tasks"]["toxicity"]["reused"] is False and sampler.calls == 0  # from the caches
    assert numbers(again) == numbers(first)


# ------------------------------------------------------------------------ explicit paths and skips
@pytest.mark.parametrize("form", ["flag", "set"])
@pytest.mark.parametrize("task, flag, key", [("toxicity", "--prompts", "toxicity.prompts"),
                                             ("occupation", "--bls", "occupation.bls"),
                                             ("bbnli", "--bbnli-data", "bbnli.data")])
def test_an_explicit_path_that_does_not_exist_is_an_error_before_any_model_loads(tmp_path, capsys, task, flag, key, form):
    missing = str(tmp_path / "typo" / "data.csv")
    given = [flag, missing] if form == "flag" else ["--set", f"{key}={missing}"]
    out = tmp_path / "run"
    argv = ["eval", "suite", "--out", str(out), "--tasks", task, "--model", "nobody/no-such-model", "--no-progress", *given]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{key} ({flag}): {missing} does not exist" in err, err
    assert not out.exists()


def test_the_python_api_raises_missing_path_error_too(tmp_path):
    config = tox_config(tmp_path / "typo.jsonl", tmp_path / "run",
                        [SystemSpec("base", lm=SeededSampler(on_first_call=lambda: pytest.fail("a model ran")))])
    with pytest.raises(MissingPathError, match="typo.jsonl does not exist"):
        run_suite(config, scorer=BatchScorer(), **QUIET)


def test_a_skip_keeps_an_earlier_result_visible(tmp_path, monkeypatch):
    """BBNLI from a file, then a rerun whose data is left to the documented places (absent here): the
    task is skipped, and the first run's result stays in results.json and the report, marked as earlier."""
    monkeypatch.setenv("FAIRALIGN_SHARED_DATA", str(tmp_path / "no-shared-data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, data = tmp_path / "run", write_toy_bbnli(tmp_path / "bbnli.csv")

    def config(source):
        return SuiteConfig.from_dict({"systems": [SystemSpec("base", lm=SeededSampler("base-lm"))], "tasks": ["bbnli"],
                                      "out": str(out), "num_resamples": 50,
                                      "bbnli": {"data": source, "templates": ["can we infer"]}})

    first = run_suite(config(data), bbnli_predictor=CountingPredictorFactory(), **QUIET)
    second = run_suite(config(None), bbnli_predictor=CountingPredictorFactory(), progress=False)
    done, entry = first["systems"][0]["tasks"]["bbnli"], second["systems"][0]["tasks"]["bbnli"]
    assert entry["status"] == "skipped" and entry["how_to"]
    earlier = entry["earlier"]
    assert earlier["from_earlier_run"] is True and earlier["metrics"] == done["metrics"]
    assert earlier["fingerprint"] == done["fingerprint"] and earlier["settings"]["data"] == data
    validate_results(json.loads((out / "results.json").read_text()))
    report = (out / "report.md").read_text()
    assert "result from an earlier run" in report and "not recomputed" in report


# -------------------------------------------------------------------------------- numeric settings
def _suite_fields() -> list:
    found = []
    hints = typing.get_type_hints(SuiteConfig)
    for f in fields(SuiteConfig):
        kinds = set(typing.get_args(hints[f.name])) or {hints[f.name]}
        if kinds & {int, float}:
            found.append(pytest.param(f.name, "int" if float not in kinds else "float", f.metadata.get("range"),
                                      id=f"SuiteConfig.{f.name}"))
    return found


def _task_settings() -> list:
    """Every numeric setting of every registered task: a task added later is checked too."""
    from fairalign.eval.registry import all_tasks

    return [pytest.param(task, name, s.type.rstrip("?").replace("list[int]", "int"), s.range, id=f"{task}.{name}")
            for task, spec in all_tasks().items() for name, s in spec.settings.items()
            if s.type.rstrip("?") in ("int", "float", "list[int]", "int|str")]


SUITE_NUMERIC = _suite_fields()
TASK_NUMERIC = _task_settings()


def _bad_values(kind: str, interval: str | None) -> list:
    """NaN, ±inf, a bool, and the nearest values just outside the declared range (integers for int settings)."""
    integer = kind != "float"
    rng = Interval.parse(interval)
    bad = [math.nan, math.inf, -math.inf, True]
    step = 1 if integer else 0.5
    if math.isfinite(rng.low):
        bad.append(rng.low - step if rng.low_closed else rng.low)
    if math.isfinite(rng.high):
        bad.append(rng.high + step if rng.high_closed else rng.high)
    return [int(v) if integer and isinstance(v, float) and math.isfinite(v) else v for v in bad]


def test_every_numeric_setting_declares_its_range():
    assert len(SUITE_NUMERIC) >= 3 and len(TASK_NUMERIC) >= 19
    missing = [p.id for p in SUITE_NUMERIC + TASK_NUMERIC if p.values[-1] is None]
    assert not missing, f"numeric settings without a range: {missing}"


@pytest.mark.parametrize("name, kind, interval", SUITE_NUMERIC)
def test_bad_suite_numbers_are_refused_naming_the_setting(name, kind, interval):
    for value in _bad_values(kind, interval):
        with pytest.raises(InputError, match=re.escape(f"SuiteConfig.{name}=")):
            SuiteConfig(systems=[SystemSpec("a", model="m")], **{name: value})


@pytest.mark.parametrize("task, name, kind, interval", TASK_NUMERIC)
def test_bad_task_numbers_are_refused_naming_the_setting(task, name, kind, interval):
    for value in _bad_values(kind, interval):
        if isinstance(value, bool) and kind == "int|str":
            continue
        with pytest.raises(InputError, match=re.escape(f"{task}.{name}=")):
            SuiteConfig(systems=[SystemSpec("a", model="m")], tasks=[task], settings={task: {name: value}})
    for text in (".nan", ".inf", "-1"):  # the same through --set / YAML (YAML's .nan and .inf are floats)
        if text == "-1" and -1 in Interval.parse(interval):
            continue
        with pytest.raises(ValueError, match=name):
            load_config(None, [f"{task}.{name}={text}"], systems=[{"name": "a", "model": "m"}])


def test_a_setting_changed_after_construction_is_caught_by_run_suite(tmp_path):
    config = tox_config(write_prompts(tmp_path / "p.jsonl"), tmp_path / "run", two_systems())
    config.settings["toxicity"]["top_p"] = math.nan
    with pytest.raises(InputError, match=r"toxicity\.top_p=nan"):
        run_suite(config, scorer=BatchScorer(), **QUIET)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad", [math.nan, math.inf, 37.5, "0.4"])
def test_a_sentiment_score_outside_minus_one_to_one_is_an_error_not_a_gap(tmp_path, bad):
    """The counterfactual gap averages scores: a NaN, an inf, a 0-100 score or text would move it silently."""
    from registry_golden import HashLM

    def scorer(texts):
        return [bad if i == 1 else 0.25 for i in range(len(texts))]

    config = SuiteConfig.from_dict({"systems": [SystemSpec("a", lm=HashLM("a"))], "tasks": ["counterfactual"],
                                    "out": str(tmp_path / "run"), "num_resamples": 20,
                                    "counterfactual": {"axes": ["gender"], "max_templates": 1, "num_samples": 1}})
    with pytest.raises(InputError, match=r"scorer \S*scorer: the score of continuation 1 .* \[-1, 1\]"):
        run_suite(config, inject={"counterfactual": {"scorer": scorer}}, **QUIET)
    assert not (tmp_path / "run" / "systems" / "a" / "counterfactual.json").exists()


@pytest.mark.parametrize("kwargs", [{"top_p": math.nan}, {"top_p": 0.0}, {"temperature": math.inf},
                                    {"temperature": math.nan}, {"num_samples": 2.5}, {"batch_size": True},
                                    {"max_new_tokens": 0}, {"seed": -1}])
def test_generation_arguments_are_checked(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(InputError, match=f"^{name}="):
        generate_continuations(SeededSampler(), PROMPTS[:2], **kwargs, progress=False)


@pytest.mark.parametrize("flag, value", [("--temperature", "inf"), ("--top-p", "nan"), ("--threshold", "nan"),
                                         ("--batch-size", "0"), ("--perspective-qps", "-1")])
def test_eval_toxicity_flags_are_checked_before_any_model_loads(tmp_path, capsys, flag, value):
    out = tmp_path / "tox"
    argv = ["eval", "toxicity", "--model", "nobody/no-such-model", "--prompts", write_prompts(tmp_path / "p.jsonl"),
            "--out", str(out), flag, value]
    assert cli(argv) == 2  # the alias of `eval run --tasks toxicity`: the error names the setting the flag sets
    assert f"{flag[2:].replace('-', '_')}=" in capsys.readouterr().err and not out.exists()
