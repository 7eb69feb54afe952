"""`fairalign eval list`: every registered task, its one-line description and whether its default data is here.

    fairalign eval list                      # name, version, data status, description
    fairalign eval list --settings           # also each task's settings: type, default, range, help
    fairalign eval list --json               # the same for machines
    fairalign eval list --task-dir my_tasks  # with your own task YAMLs

Tasks are discovered from eval/tasks/*.yaml (and --task-dir / $FAIRALIGN_TASKS); nothing lists them by hand.
Data status tries each task's default data source as `eval run` would: "ready" (with the rows found), or
"missing" with what was tried and how to get it. --no-data skips that check (it reads the data).
"""
from __future__ import annotations

import argparse
import json


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", action="store_true", help="also list each task's settings")
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    p.add_argument("--no-data", action="store_true", help="do not check whether each task's data is available")
    p.add_argument("--task-dir", action="append", default=[], metavar="DIR", help="repeatable: a folder of your own task YAMLs")
    return p


def data_status(spec) -> dict:
    """Try the task's default data source, as a run would (nothing given explicitly)."""
    from fairalign.eval.suite.sources import MissingData

    try:
        source = spec.load_data({"task": spec.name, **spec.defaults()})
    except MissingData as err:
        return {"status": "missing", "reason": err.reason, "how_to": err.how_to}
    prov = source.provenance
    return {"status": "ready", "source": prov.get("source"), "rows": prov.get("rows_used")}


def describe(spec, with_data: bool) -> dict:
    out = {"task": spec.name, "version": spec.version, "description": spec.description, "file": str(spec.path),
           "variant_of": spec.variant_of, "output_type": spec.output_type, "parallel": spec.parallel,
           "metrics": [m.metric for m in spec.metrics],
           "settings": {n: {"type": s.type, "default": s.default, "range": s.range, "choices": s.choices, "help": s.help}
                        for n, s in spec.settings.items()}}
    if with_data:
        out["data"] = data_status(spec)
    return out


def main(args: argparse.Namespace) -> int:
    from fairalign.eval.registry import all_tasks
    from fairalign.scripts.eval_run import add_task_dirs

    add_task_dirs(args.task_dir)
    tasks = [describe(spec, not args.no_data) for spec in all_tasks().values()]
    if args.json:
        print(json.dumps(tasks, indent=1))
        return 0
    width = max(len(t["task"]) for t in tasks)
    for t in tasks:
        data = t.get("data")
        status = "" if data is None else ("ready" if data["status"] == "ready" else "no data")
        variant = f" (variant of {t['variant_of']})" if t["variant_of"] else ""
        print(f"{t['task']:<{width}}  v{t['version']}  {status:<7}  {t['description']}{variant}")
        if data is not None and data["status"] != "ready":
            print(f"{'':<{width}}  missing: {data['reason']}\n{'':<{width}}  how to get it: {data['how_to']}")
        if args.settings:
            for name, s in t["settings"].items():
                extra = f" in {s['range']}" if s["range"] else (f" one of {s['choices']}" if s["choices"] else "")
                print(f"{'':<{width}}    --set {t['task']}.{name}=  ({s['type']}{extra}; default {s['default']!r}) {s['help']}")
    return 0
