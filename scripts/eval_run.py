"""`fairalign eval run` (alias: `fairalign eval suite`): any registered tasks for one or several systems, one report.

    fairalign eval list                                   # the registered tasks, their descriptions and data status
    fairalign eval run --model smollm2 --tasks toxicity,counterfactual --set toxicity.num_samples=5 --out runs/x
    fairalign eval run --model smollm2 --adapter outputs/demo/rdpo-adapter --out runs/tuned
    fairalign eval run --config configs/suites/demo_smollm2.yaml --out runs/demo
    fairalign eval run --out runs/cmp --prompts demo \\
        --system name=base,model=smollm2 \\
        --system name=tuned,model=smollm2,adapter=outputs/demo/rdpo-adapter \\
        --system name=uddia,model=smollm2,uddia=demo,uddia_lr=0.01,uddia_trigger_threshold=0.5,uddia_redo_ppl_threshold=none
    accelerate launch --num_processes 8 -m fairalign eval run --config configs/suites/default.yaml --out runs/rtp

Precedence: the YAML (--config), then --set task.setting=value (checked against the task's own settings,
`fairalign eval list --settings`), then the dedicated flags. --system (repeatable) or --model/--adapter/--uddia
replace the YAML's systems; the first system is the baseline of the differences. --task-dir DIR adds your own
task YAMLs (docs/suite.md, "Write your own task"). Rerunning with the same --out resumes: finished
(system, task) results are reused (after their checksum is checked). A second run on an --out that a live run
holds is refused, naming the holder. Data given with a flag or in the YAML that does not exist is an error
(exit 2) before any model loads; a task whose data is missing from the documented places is skipped with
instructions (an earlier run's result for it stays in results.json, marked as such); the others run. Under
several processes, tasks declared `parallel` split their batches across them and give the numbers of one
process. Writes results.json, report.html, report.md and plots/.
"""
from __future__ import annotations

import argparse
import sys


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="suite YAML (configs/suites/*.yaml)")
    p.add_argument("--out", default=None, help="output directory (rerun with the same one to resume)")
    p.add_argument("--tasks", default=None, help="comma-separated registered tasks (fairalign eval list); default: all but variants")
    p.add_argument("--task-dir", action="append", default=[], metavar="DIR",
                   help="repeatable: a folder of your own task YAMLs (also $FAIRALIGN_TASKS)")
    s = p.add_argument_group("one system (instead of the YAML's systems)")
    s.add_argument("--model", default=None, help="Hub id, local directory or 'smollm2' (embedded)")
    s.add_argument("--adapter", default=None, help="PEFT adapter directory")
    s.add_argument("--uddia", default=None, help="UDDIA head file, 'demo' or 'debias-only'")
    s.add_argument("--name", default=None, help="the system's name (default: 'model', or 'uddia'/'tuned' by its parts)")
    p.add_argument("--system", action="append", default=None, metavar="SPEC",
                   help="repeatable: name=N,model=M[,adapter=A][,uddia=H][,uddia_<field>=V]; the first is the baseline")
    d = p.add_argument_group("data (default: the documented places, see docs/suite.md)")
    d.add_argument("--prompts", default=None, help="toxicity prompts: .jsonl/.txt, Hub id, or 'demo'")
    d.add_argument("--bls", default=None, help="BLS Table 11: cpsaat11 .xlsx/.csv path or a year")
    d.add_argument("--bbnli-data", default=None, help="BBNLI template folder, expanded CSV or Hub id")
    p.add_argument("--scorer", default=None, help="toxicity scorer: auto | hf-classifier | perspective | profanity | hatesonar | better-profanity | a classifier")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="repeatable: a suite key or task.setting, e.g. toxicity.limit=20 (checked against the task's settings)")
    p.add_argument("--seed", type=int, default=None, help="generation and bootstrap seed")
    p.add_argument("--num-resamples", type=int, default=None, help="bootstrap resamples per CI")
    p.add_argument("--batch-size", type=int, default=None, help="prompts per model call")
    p.add_argument("--device", default=None, help="cpu | cuda")
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _single_system(args) -> dict:
    name = args.name or ("uddia" if args.uddia else "tuned" if args.adapter else "model")
    return {"name": name, "model": args.model, "adapter": args.adapter, "uddia": args.uddia}


def add_task_dirs(dirs) -> None:
    """--task-dir folders join $FAIRALIGN_TASKS, which the registry reads."""
    import os

    if dirs:
        from fairalign.align.errors import MissingPathError

        for d in dirs:
            if not os.path.isdir(d):
                raise MissingPathError(f"--task-dir {d} is not a folder of task YAMLs")
        os.environ["FAIRALIGN_TASKS"] = os.pathsep.join([*dirs, *filter(None, [os.environ.get("FAIRALIGN_TASKS")])])


def build_config(args):
    """The SuiteConfig the arguments describe (YAML < --set < dedicated flags)."""
    from fairalign.eval.suite.config import load_config, parse_system

    add_task_dirs(getattr(args, "task_dir", None))
    if args.system and (args.model or args.adapter or args.uddia):
        raise ValueError("use either --system (repeatable) or --model/--adapter/--uddia, not both")
    if (args.adapter or args.uddia) and not args.model:
        raise ValueError("--adapter/--uddia need --model (the base model)")
    overrides = list(args.set)
    flags = {"toxicity.prompts": args.prompts, "occupation.bls": args.bls, "bbnli.data": args.bbnli_data,
             "toxicity.scorer": args.scorer}
    overrides += [f"{key}={value}" for key, value in flags.items() if value is not None]
    fields = {"out": args.out, "seed": args.seed, "num_resamples": args.num_resamples, "batch_size": args.batch_size,
              "device": args.device, "dtype": args.dtype}
    if args.tasks:
        fields["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.system:
        fields["systems"] = [parse_system(text) for text in args.system]
    elif args.model:
        fields["systems"] = [_single_system(args)]
    return load_config(args.config, overrides, **fields)


def main(args: argparse.Namespace) -> int:
    config = build_config(args)
    return run_and_summarize(config, progress=not args.no_progress)


def run_and_summarize(config, progress: bool = True) -> int:
    """Run the suite and print one line per system; exit 1 when no task finished. Under several processes
    only process 0 prints."""
    from fairalign.eval.suite import run_suite
    from fairalign.eval.suite.systems import check_files

    for spec in config.systems:
        check_files(spec)
    results = run_suite(config, progress=progress)
    _leave_process_group()  # not on an error: the launcher stops the other processes when one fails
    if results is None:  # not process 0: it wrote nothing and has nothing to say
        return 0
    finished = [(s["name"], t) for s in results["systems"] for t, e in s["tasks"].items() if e["status"] == "ok"]
    out = results["out_dir"]
    for s in results["systems"]:
        states = ", ".join(f"{t} {e['status']}{' (reused)' if e.get('reused') else ''}" for t, e in s["tasks"].items())
        print(f"[eval] {s['name']}: {states}")
    print(f"[eval] wrote {out}/results.json, {out}/report.html and {out}/report.md")
    if not finished:
        print("[eval] no task finished for any system (see the skip reasons above)", file=sys.stderr)
        return 1
    return 0


def _leave_process_group() -> None:
    """Under a launcher, every process leaves the group together: gloo aborts a process that exits while its
    group is still up ("terminate called without an active exception")."""
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        td.barrier()
        td.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main(make_parser().parse_args()))
