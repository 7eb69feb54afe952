"""What every reproduction shares: seeds, timing, confidence intervals, the JSON it writes, plots, and the
tables of docs/reproductions.md.

A reproduction is a module of this package with

    NAME = "rdpo"                       # file stem of docs/repro/<NAME>.json / .png, and the doc's table key
    def add_arguments(parser): ...      # its own options (optional)
    def run(args, log) -> dict          # the experiment: returns {"settings": ..., "runs": [...], ...}
    def tables(results) -> dict         # {table key: Markdown}, rebuilt from the JSON alone
    def plot(results, path)             # the figure, from the JSON alone
    RESUMABLE = True                    # optional: run() honours args.prior (--resume: skip the finished runs)
    PARALLEL = True                     # optional (implied by RESUMABLE): run() honours --workers (run_jobs)
    DEFAULT_SEEDS = 1                   # optional: seeds of a full run when --seeds is not given (default 3)

`main()` below gives each one the same command line (--quick, --seeds, --out, --rebuild), records the
machine, versions, command and wall time next to the results, and replaces the block between
`<!-- repro:<key> -->` and `<!-- /repro:<key> -->` in docs/reproductions.md. Rebuilding from the committed JSON
never reruns anything, so the doc's numbers are always the JSON's.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reproductions.md"
RESULTS = REPO / "docs" / "repro"


def mean_ci(values, confidence: float = 0.95) -> dict:
    """Mean and Student-t confidence interval over seeds: {"mean", "low", "high", "n"} (low = high = mean for n=1).

    The t interval treats seeds as independent draws of the whole experiment, which is what they are here."""
    from scipy import stats

    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_ci: no values")
    if any(math.isnan(v) for v in values):
        raise ValueError(f"mean_ci: NaN among {values}")
    n, mean = len(values), sum(values) / len(values)
    if n == 1:
        return {"mean": mean, "low": mean, "high": mean, "n": 1}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def fmt_ci(ci: dict, digits: int = 3) -> str:
    """'0.412 [0.380, 0.444]' (n = 1: the mean alone)."""
    if ci["n"] == 1:
        return f"{ci['mean']:.{digits}f}"
    return f"{ci['mean']:.{digits}f} [{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def set_seed(seed: int) -> None:
    from transformers import set_seed as hf_set_seed

    hf_set_seed(seed)


def machine() -> dict:
    import torch
    import transformers
    import trl

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


class Log:
    """Prints progress with the elapsed time, so a 40-minute run shows where it is."""

    def __init__(self, name: str, already: float = 0.0):
        # `already`: seconds spent by the earlier run that --resume continues, so elapsed() is the whole job's
        self.name, self.start = name, time.perf_counter() - already

    def __call__(self, message: str) -> None:
        print(f"[{self.name} {time.perf_counter() - self.start:7.1f}s] {message}", flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def replace_block(text: str, key: str, body: str, where: str) -> str:
    """Replace what lies between `<!-- repro:key -->` and `<!-- /repro:key -->`; an absent marker is an error
    (a table silently not updated would leave the doc's numbers stale)."""
    start, end = f"<!-- repro:{key} -->", f"<!-- /repro:{key} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"{where} has no block {start} ... {end}: add the two markers where the table goes")
    return pattern.sub(lambda _: f"{start}\n{body.strip()}\n{end}", text)


def save_figure(fig, path) -> None:
    """Lay out, write (110 dpi PNG) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Scratch:
    """A run's temporary folder for trainer output, and its results so far in <out>/<name>.partial.json
    (`save_partial`), so a run stopped for time still leaves its numbers beside where the final JSON goes.
    `close()`, once the results are returned, removes both."""

    def __init__(self, name: str, out: Path, log=print):
        import tempfile

        self.name, self.log = name, log
        self.path = Path(tempfile.mkdtemp(prefix=f"repro-{name}-"))
        self.partial = Path(out) / f"{name}.partial.json"
        log(f"scratch folder {self.path}; results so far in {self.partial} (--resume continues from it)")

    def __truediv__(self, other):
        return self.path / other

    def save_partial(self, results) -> None:
        meta = {"name": self.name, "partial": True}
        if hasattr(self.log, "elapsed"):
            meta["wall_s_so_far"] = round(self.log.elapsed(), 1)
        # write then rename: a run killed mid-write leaves the previous partial file whole
        tmp = self.partial.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(dict(results, meta=meta), indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.partial)

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)
        self.partial.unlink(missing_ok=True)


def load_prior(name: str, out: Path) -> dict:
    """--resume: an earlier run's results, from <out>/<name>.partial.json (a stopped run) or else <out>/<name>.json
    (a finished or committed one, e.g. to add seeds)."""
    for path in (out / f"{name}.partial.json", out / f"{name}.json"):
        if path.is_file():
            prior = json.loads(path.read_text(encoding="utf-8"))
            prior.setdefault("meta", {})["resumed_from"] = str(path)
            return prior
    raise SystemExit(f"--resume: neither {out / f'{name}.partial.json'} nor {out / f'{name}.json'} exists, so there is "
                     "nothing to continue; run without --resume")


def _first_difference(a, b, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where or 'value'}: earlier {a!r}, now {b!r}"


def same_or_exit(what: str, earlier, now) -> None:
    """--resume keeps earlier rows only if what they depend on is identical now (compared as JSON: a changed option,
    or base samples that came out differently, would mix two experiments in one table)."""
    earlier, now = json.loads(json.dumps(earlier)), json.loads(json.dumps(now))
    if earlier != now:
        raise SystemExit(f"--resume: this run's {what} differ from the earlier run's ({_first_difference(earlier, now)}), "
                         "so its rows cannot be mixed with this run's; rerun with the earlier options (its command is "
                         "in the JSON's meta) or without --resume")


def kept_runs(prior: dict | None, key, keys_now: list) -> list:
    """--resume: the earlier run's finished rows (`key(row)` names a row's job), refusing rows of jobs this run
    would not have (fewer seeds, another option)."""
    if prior is None:
        return []
    rows, wanted = prior.get("runs", []), set(keys_now)
    stray = [key(r) for r in rows if key(r) not in wanted]
    if stray:
        raise SystemExit(f"--resume: the earlier run has rows this run would not produce, e.g. {stray[0]} (fewer --seeds "
                         "or other options than before?); rerun with the earlier options or without --resume")
    return rows


# ------------------------------------------------------------------------------------------------ parallel jobs
_WORK = None  # the job function handed to forked workers (a closure over the parent's model and data)


def prepare_workers(workers: int) -> int:
    """Call before any torch work when jobs will run in `workers` forked processes: returns the torch threads each
    worker gets (the threads this process would use, shared out). With workers > 1 this process keeps to one
    thread, so no OpenMP thread pool exists when it forks (a child of a process whose pool is running can hang)."""
    import torch

    threads = max(1, torch.get_num_threads() // max(1, workers))
    if workers > 1:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the Rust tokenizers' pool is not fork-safe either
        torch.set_num_threads(1)
    return threads


def _start_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _call_work(job):
    return job, _WORK(job)


def run_jobs(jobs: list, work, done, workers: int = 1, threads: int = 1) -> None:
    """work(job) for every job; done(job, result) in this process as each finishes, where it records the result
    and saves the partial file. With workers > 1 the jobs run in that many processes, each forked afresh from this
    one for its job (so every job starts from the same state: the loaded model and data, nothing of another job) and
    run finish-first: done() sees them out of order, and the caller sorts its rows into job order at the end.
    A job's numbers do not depend on the worker count, since every job seeds itself; they do depend on the torch
    threads (`threads` per worker), as any float reduction does."""
    global _WORK
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            done(job, work(job))
        return
    import multiprocessing

    _WORK = work
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(min(workers, len(jobs)), initializer=_start_worker, initargs=(threads,),
                      maxtasksperchild=1) as pool:
            for job, result in pool.imap_unordered(_call_work, jobs):
                done(job, result)
    finally:
        _WORK = None


def result_paths(name: str, out: Path) -> tuple[Path, Path]:
    return out / f"{name}.json", out / f"{name}.png"


def render(module, results: dict, out: Path, doc: Path | None) -> None:
    """Plot and (when `doc` is given) rewrite the doc's tables, from the results alone."""
    json_path, png_path = result_paths(module.NAME, out)
    module.plot(results, png_path)
    if doc is not None:
        text = doc.read_text(encoding="utf-8")
        for key, body in module.tables(results).items():
            text = replace_block(text, key, body, str(doc))
        doc.write_text(text, encoding="utf-8")


def make_parser(module) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(module.__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=module.__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="tiny random model, a few steps, 2 seeds: checks the script runs (seconds), "
                             "says nothing about the paper; writes to a temporary folder unless --out is given")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"number of seeds (default {getattr(module, 'DEFAULT_SEEDS', 3)}; --quick 2)")
    parser.add_argument("--out", type=Path, default=None, help=f"folder for <name>.json and .png (default {RESULTS})")
    parser.add_argument("--rebuild", action="store_true",
                        help="rerun nothing: redraw the plot and rewrite the doc's tables from the JSON in --out")
    parser.add_argument("--no_doc", action="store_true", help="do not touch docs/reproductions.md")
    parser.add_argument("--resume", action="store_true",
                        help="continue an earlier run in --out (its .partial.json, else its .json): keep its finished "
                             "runs, run the rest (or the seeds added by a larger --seeds); refused if settings differ")
    # jobs seeded on their own (what --resume needs) can also run in parallel; PARALLEL = True: parallel only
    if getattr(module, "RESUMABLE", False) or getattr(module, "PARALLEL", False):
        parser.add_argument("--workers", type=int, default=None,
                            help="jobs run at once, each in its own forked process with cpus/workers torch threads "
                                 "(default: 2 where there are 2+ cpus, 1 for --quick); 1 runs them in this process")
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    return parser


def main(module, argv=None) -> int:
    args = make_parser(module).parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        raise SystemExit(f"--seeds must be >= 1, got {args.seeds}")
    args.seeds = args.seeds or (2 if args.quick else getattr(module, "DEFAULT_SEEDS", 3))
    if hasattr(args, "workers"):  # only modules that run jobs in parallel have the option
        if args.workers is None:
            args.workers = 1 if args.quick else min(2, os.cpu_count() or 1)
        elif args.workers < 1:
            raise SystemExit(f"--workers must be >= 1, got {args.workers}")
    if args.out is None:
        if args.quick and not args.rebuild:
            import tempfile

            args.out = Path(tempfile.mkdtemp(prefix=f"repro-{module.NAME}-"))
        else:
            args.out = RESULTS
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, _ = result_paths(module.NAME, args.out)
    # --quick never rewrites the committed doc: its numbers come from a tiny random model
    doc = None if (args.no_doc or (args.quick and not args.rebuild)) else DOC
    if args.rebuild:
        if not json_path.is_file():
            raise SystemExit(f"--rebuild: {json_path} does not exist; run without --rebuild first")
        results = json.loads(json_path.read_text(encoding="utf-8"))
    else:
        if args.resume and not getattr(module, "RESUMABLE", False):
            raise SystemExit(f"--resume: {module.NAME} cannot continue a stopped run; run it again without --resume")
        args.prior = load_prior(module.NAME, args.out) if args.resume else None
        earlier = (args.prior or {}).get("meta", {})
        log = Log(module.NAME, already=earlier.get("wall_s", earlier.get("wall_s_so_far", 0.0)))
        if args.prior is not None:
            log(f"resuming {earlier['resumed_from']}: {len(args.prior.get('runs', []))} finished runs kept")
        if hasattr(args, "workers"):
            args.threads = prepare_workers(args.workers)
        results = module.run(args, log)
        results["meta"] = {"name": module.NAME, "quick": args.quick, "seeds": args.seeds, "wall_s": round(log.elapsed(), 1),
                           "command": " ".join(["python", "-m", f"fairalign.scripts.repro.{module.NAME}"] +
                                               (sys.argv[1:] if argv is None else list(argv))),
                           "date": time.strftime("%Y-%m-%d"), "machine": machine()}
        if hasattr(args, "workers"):
            results["meta"]["workers"] = {"processes": args.workers, "torch_threads_each": args.threads}
        if args.prior is not None:
            results["meta"]["resumed"] = {"from": earlier["resumed_from"], "earlier_command": earlier.get("command"),
                                          "earlier_date": earlier.get("date")}
        json_path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        log(f"wrote {json_path}")
    render(module, results, args.out, doc)
    for key, body in module.tables(results).items():
        print(f"\n## {key}\n{body}")
    return 0
