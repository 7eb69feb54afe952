"""`run_suite(config) -> results`: every selected task for every system, then the differences to the baseline.

Any registered task (eval/tasks/<name>.yaml + its module) runs through this one pipeline.
Order of work: (1) resolve each task's settings and load its data, before any model loads: data given
explicitly that cannot be had is an error (`MissingPathError`); data missing from the documented places
skips its task (reason and how to get it printed and recorded); (2) the output folder is held
(`hold_folder`) for the rest of the run, so two runs never write or read each other's files; (3) per
system, per task: reuse the finished per-task file <out>/systems/<system>/<task>.json when it passes its
checksum and its fingerprint matches (system identity, task version, resolved settings, data hash, seed,
resamples), otherwise load the system (once, only if something is left to compute), run the task and write
that file atomically; (4) paired or unpaired differences to the first system, from the records this run
holds in memory; (5) results.json (validated against the schema) and the reports.
A run interrupted at any point loses at most the task in flight; the toxicity task resumes even that from
its generation and score caches, batch by batch, to the same numbers.

Several processes (`accelerate launch -m fairalign eval run ...`, or torchrun): every process plans and checks
the same way; a task whose YAML says `parallel: true` splits its work across them by global batch (the same
batches and seeds as one process) and gathers on process 0; other tasks run on process 0 while the others
wait. Only process 0 holds the output folder and writes per-task files, results.json and the reports.

Per-task files carry `content_sha256`, the sha256 of their own content (canonical JSON, that key left out).
A file that fails it was changed after fairalign wrote it: an InputError naming it (delete it to recompute);
a file that is not valid JSON never completed (writes are atomic, so it is not fairalign's) and is
recomputed, with a message. A task skipped in this run keeps an earlier run's finished file visible in its
skip entry (`earlier`, marked `from_earlier_run`), never erased from results.json.
"""
from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fairalign.align.errors import InputError
from fairalign.align.locking import hold_folder
from fairalign.eval.suite import compare
from fairalign.eval.suite.config import SuiteConfig, load_config
from fairalign.align.files import write_bytes_atomic, write_json_atomic
from fairalign.eval.suite.provenance import environment
from fairalign.eval.suite.schema import SCHEMA_VERSION, validate_results
from fairalign.eval.distributed import Dist
from fairalign.eval.registry import load_task
from fairalign.eval.suite.sources import MissingData
from fairalign.eval.suite.systems import check_files, fingerprint, identity, load_system
from fairalign.eval.tasks.common import SkipTask, TaskContext, jsonable


def _coerce(config) -> SuiteConfig:
    if isinstance(config, SuiteConfig):
        return config
    if isinstance(config, dict):
        return SuiteConfig.from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    raise TypeError(f"config must be a SuiteConfig, a dict or a YAML path; got {type(config).__name__}")


def _say(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def run_suite(config, *, progress: bool = True, out_dir: str | os.PathLike | None = None, scorer=None,
              bbnli_predictor=None, reports: bool = True, dist: Dist | None = None, inject: dict | None = None) -> dict:
    """Run the suite and return the results (also written to <out>/results.json, with the reports).

    config: a `SuiteConfig`, a dict of its fields, or a suite YAML path. out_dir: overrides `config.out`.
    scorer: a toxicity scorer (texts -> scores in [0, 1] or None) instead of the one the settings name.
    bbnli_predictor: fn(system, lm, settings) -> predictor (premises, hypotheses) -> labels, instead of
    prompting each system as a judge. inject: {task: {name: object}} for any task (`ctx.injected`; `scorer` and
    `bbnli_predictor` are shorthands for the toxicity tasks' and BBNLI's). reports: also write report.html and
    report.md. dist: the processes sharing the run
    (default: from the launcher's environment). Returns the results on process 0, None on the others.
    Raises FolderInUseError when another run holds the output folder.
    """
    config = _coerce(config)
    config.check_numbers()  # again: a field may have been changed after the config was built
    out = Path(out_dir or config.out or "")
    if not str(out) or str(out) == ".":
        raise InputError("out: give an output directory (--out DIR, `out:` in the YAML, or out_dir=...)")
    config.out = str(out)
    for spec in config.systems:
        check_files(spec)
    injected = _injections(config, scorer, bbnli_predictor, inject or {})
    plan = _plan(config, injected)  # settings and data: errors before any model loads
    dist = dist or Dist.from_environment()
    folder = hold_folder(out, "fairalign eval suite") if dist.is_main else contextlib.nullcontext()
    with folder, _library_bars_off():
        dist.barrier()  # the others start once process 0 holds the folder
        return _run(config, plan, out, progress and dist.is_main, injected, reports, dist)


def _injections(config: SuiteConfig, scorer, bbnli_predictor, inject: dict) -> dict:
    """{task: {name: object}}: what each task finds in `ctx.injected`."""
    out = {task: dict(inject.get(task, {})) for task in config.tasks}
    unknown = sorted(set(inject) - set(config.tasks))
    if unknown:
        raise InputError(f"inject: {unknown} are not tasks of this run ({config.tasks})")
    for task in config.tasks:
        module = load_task(task).module_name
        if scorer is not None and module == "fairalign.eval.tasks.toxicity":  # toxicity and its variants
            out[task].setdefault("scorer", scorer)
        if bbnli_predictor is not None and module == "fairalign.eval.tasks.bbnli":
            out[task].setdefault("bbnli_predictor", bbnli_predictor)
    return out


@dataclass
class _Plan:
    """What every system will be evaluated on: the spec, resolved settings and loaded data of each runnable
    task, and the skip entries of tasks whose data is missing."""

    specs: dict
    settings: dict
    sources: dict
    skipped: dict


def _plan(config: SuiteConfig, injected: dict) -> _Plan:
    specs = {name: load_task(name) for name in config.tasks}
    suite = _suite_settings(config)
    settings = {}
    for name, spec in specs.items():  # validates before any model loads
        resolved = config.task_settings(name)
        if hasattr(spec.module, "resolve"):
            resolved.update(spec.module.resolve(spec, resolved, suite))
        settings[name] = {"task": name, "task_version": spec.version, **resolved}
    # An injected object replaces what the settings name: record it (and fingerprint it) instead.
    for name, objects in injected.items():
        for key, obj in objects.items():
            label = getattr(obj, "name", None) or getattr(obj, "__qualname__", None) or type(obj).__qualname__
            if key == "scorer" and "scorer" in settings[name]:
                from fairalign.eval.toxicity.scorers import describe_scorer

                settings[name]["scorer"] = describe_scorer(obj).get("name")
                settings[name].update({k: None for k in ("scorer_model", "scorer_label") if k in settings[name]})
            elif key == "bbnli_predictor":
                settings[name]["predictor"] = label
            else:
                settings[name][f"injected_{key}"] = label
    sources, skipped = {}, {}
    for name, spec in specs.items():
        try:
            sources[name] = spec.load_data(settings[name], config.seed)
        except MissingData as err:  # only data looked for in the documented places; given data raises
            skipped[name] = {"status": "skipped", "reason": err.reason, "how_to": err.how_to}
            _say(f"[suite] skipping {name}: {err.reason}\n        how to get it: {err.how_to}")
    return _Plan(specs, settings, sources, skipped)


def _suite_settings(config: SuiteConfig) -> dict:
    return {"seed": config.seed, "num_resamples": config.num_resamples, "batch_size": config.batch_size,
            "device": config.device, "dtype": config.dtype}


def _run(config: SuiteConfig, plan: _Plan, out: Path, progress, injected: dict, reports, dist: Dist) -> dict | None:
    from tqdm.auto import tqdm

    env = environment()
    shared: dict = {}  # built once per run, shared by every system (a scorer, an evaluator LM)
    bar = tqdm(total=len(config.systems) * len(plan.sources), desc="suite", unit="task", disable=not progress)
    records: dict[tuple[str, str], dict] = {}  # (system, task) -> the record this run computed or verified
    systems = [_evaluate_system(spec, config, plan, shared, injected, out, bar, records, dist) for spec in config.systems]
    bar.close()
    if not dist.is_main:
        return None
    results = {
        "schema_version": SCHEMA_VERSION, "kind": "fairalign.eval.suite", "created": env["date"],
        "out_dir": str(out), "tasks": list(config.tasks), "config": config.to_dict(), "provenance": env,
        "systems": systems, "comparisons": _comparisons(config, plan, systems, records),
    }
    validate_results(results)
    write_json_atomic(out / "results.json", results)
    if reports:
        from fairalign.eval.suite.report import write_reports

        write_reports(results, out)
    return results


def _evaluate_system(spec, config: SuiteConfig, plan: _Plan, shared: dict, injected: dict, out: Path, bar,
                     records: dict, dist: Dist) -> dict:
    """Every task for one system: reuse finished per-task files, compute the rest (loading the model once).
    Fills `records` with the per-task records the comparisons will read."""
    ident = identity(spec)
    entry = {"name": spec.name, "spec": spec.to_dict(), "identity": ident, "notes": [], "tasks": {}}
    loaded = None
    suite = _suite_settings(config)
    for name, task in plan.specs.items():
        path = out / "systems" / spec.name / f"{name}.json"
        if name in plan.skipped:
            entry["tasks"][name] = _skip_entry(plan.skipped[name], path, out) if dist.is_main else plan.skipped[name]
            continue
        fp = fingerprint({"schema_version": SCHEMA_VERSION, "system": ident, "task": name, "suite": suite,
                          "settings": plan.settings[name], "data": plan.sources[name].provenance})
        found = _finished(path, fp) if dist.is_main else None
        reused = dist.broadcast(found is not None)  # every process must agree on what to compute
        if not reused and (dist.is_main or task.parallel):
            bar.set_description(f"suite: {spec.name} / {name}")
            loaded = loaded or load_system(spec, config.device, config.dtype, config.batch_size)
            ctx = TaskContext(out / "systems" / spec.name / name, ident, task, suite, dist if task.parallel else Dist(),
                              injected[name], shared)
            start = time.time()
            try:
                output = task.module.run(loaded, plan.sources[name], plan.settings[name], ctx)
            except SkipTask as err:
                skip = {"status": "skipped", "reason": str(err), "how_to": None}
                entry["tasks"][name] = _skip_entry(skip, path, out)
                _say(f"[suite] {spec.name}: skipping {name}: {err}")
                bar.update(1)
                dist.barrier()
                continue
            if dist.is_main:
                record = {"fingerprint": fp, "status": "ok", "task": name, "system": spec.name,
                          "task_version": task.version, "settings": plan.settings[name],
                          "data": plan.sources[name].provenance, "metrics": output.metrics, "details": output.details,
                          "notes": output.notes, "caveats": output.caveats, "system_notes": loaded.notes,
                          "runtime_s": round(time.time() - start, 3),
                          "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
                          "units": jsonable(output.units)}
                found = _write_record(path, record)
        elif reused and dist.is_main:
            _say(f"[suite] {spec.name} / {name}: finished earlier, reusing {path}")
        dist.barrier()
        if not dist.is_main:
            continue
        record, digest = found
        records[(spec.name, name)] = record
        entry["tasks"][name] = _summary(record, path, out, reused, digest)
        entry["notes"] += [n for n in record.get("system_notes", []) if n not in entry["notes"]]
        bar.update(1)
    del loaded
    _free_memory()
    return entry


@contextlib.contextmanager
def _library_bars_off():
    """One progress display for the suite: transformers' weight-loading bars are off while it runs (restored after)."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


# ------------------------------------------------------------------------------------- per-task files
def content_sha256(record: dict) -> str:
    """sha256 of a per-task record's canonical JSON, its own `content_sha256` key left out."""
    body = {k: v for k, v in record.items() if k != "content_sha256"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_record(path: Path, record: dict) -> tuple[dict, str]:
    """Write the record atomically with its content checksum; returns (the record as read back, file sha256).
    The JSON round trip first makes the in-memory record equal to the file (tuples -> lists, str keys)."""
    record = json.loads(json.dumps(record, ensure_ascii=False, allow_nan=False))
    record["content_sha256"] = content_sha256(record)
    data = (json.dumps(record, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    write_bytes_atomic(path, data)
    return record, hashlib.sha256(data).hexdigest()


def _read_record(path: Path) -> tuple[dict | None, str, str]:
    """(record, file sha256, problem) for the per-task file at `path`: record None with the problem when it
    is absent, not valid JSON or carries no checksum. A checksum mismatch is an InputError: the file was
    changed after fairalign wrote it, and its numbers must not be trusted (nor silently replaced)."""
    if not path.is_file():
        return None, "", "absent"
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        record = json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None, digest, "is not valid JSON (a write that never completed; fairalign writes atomically)"
    if not isinstance(record, dict) or not isinstance(record.get("content_sha256"), str):
        return None, digest, "has no content checksum (written by an older fairalign, or not fairalign's)"
    if record["content_sha256"] != content_sha256(record):
        raise InputError(f"{path} changed after fairalign wrote it: its content no longer matches its recorded "
                         "content_sha256, so its numbers cannot be trusted. Delete it and rerun with the same --out "
                         "to recompute this task.")
    return record, digest, ""


def _finished(path: Path, fp: str) -> tuple[dict, str] | None:
    """(record, file sha256) of the per-task file at `path` when it is verified and was made with the same
    fingerprint; None to (re)compute."""
    record, digest, problem = _read_record(path)
    if record is None:
        if problem != "absent":
            _say(f"[suite] {path} {problem}: recomputing")
        return None
    if record.get("fingerprint") == fp and record.get("status") == "ok":
        return record, digest
    _say(f"[suite] {path} was made with other settings, data or system files: recomputing")
    return None


def _skip_entry(skip: dict, path: Path, out: Path) -> dict:
    """A skipped task's entry; an earlier run's finished file for it stays visible under `earlier`
    (a skip never erases results), marked as from an earlier run with its own settings and fingerprint."""
    record, digest, problem = _read_record(path)
    if problem not in ("", "absent"):
        _say(f"[suite] {path} {problem}: not shown as an earlier result")
    earlier = None
    if record is not None and record.get("status") == "ok":
        earlier = {**_summary(record, path, out, True, digest), "from_earlier_run": True,
                   "finished_at": record.get("finished_at")}
        _say(f"[suite] {record.get('system')} / {record.get('task')}: skipped in this run; the earlier result in "
             f"{path} is kept in results.json, marked as from an earlier run")
    return {**skip, "earlier": earlier}


def _summary(record: dict, path: Path, out: Path, reused: bool, digest: str) -> dict:
    keep = ("status", "task_version", "settings", "data", "metrics", "details", "notes", "runtime_s", "fingerprint")
    return {**{k: record[k] for k in keep}, "caveats": record.get("caveats", []), "reused": reused,
            "file": str(path.relative_to(out)), "file_sha256": digest}


def _comparisons(config: SuiteConfig, plan: _Plan, systems: list[dict], records: dict) -> dict:
    """Differences to the baseline from the records this run holds in memory (never a re-read of a file
    that another process could have rewritten since)."""
    base = systems[0]
    differences = []
    for other in systems[1:]:
        for name in config.tasks:
            a, b = base["tasks"].get(name, {}), other["tasks"].get(name, {})
            if a.get("status") != "ok" or b.get("status") != "ok":
                continue
            units_a, units_b = records[(base["name"], name)]["units"], records[(other["name"], name)]["units"]
            for key, metric in a["metrics"].items():
                if key not in b["metrics"] or metric["units"] not in units_a or metric["units"] not in units_b:
                    continue
                diff = compare.difference(plan.specs[name].statistic(key), units_a[metric["units"]], units_b[metric["units"]],
                                          config.num_resamples, config.seed)
                differences.append({"task": name, "metric": key, "label": metric["label"], "baseline": base["name"],
                                    "system": other["name"], "higher_is_better": metric["higher_is_better"],
                                    "ideal": metric["ideal"], **diff})
    compare.add_multiplicity(differences)  # Holm over every comparison this run makes
    return {"baseline": base["name"], "differences": differences}


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
