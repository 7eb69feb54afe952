"""Run every reproduction in this package (full runs, one after the other), or rebuild docs/reproductions.md's
tables and the plots from the committed JSON (--rebuild) without rerunning anything.

    python -m fairalign.scripts.repro.run_all                # full runs: about an hour each at most, 2-core CPU
    python -m fairalign.scripts.repro.run_all --rebuild      # tables + plots from docs/repro/*.json
    python -m fairalign.scripts.repro.run_all --quick        # every script on a tiny model (seconds each)
    python -m fairalign.scripts.repro.run_all --only rdpo,rpo

A reproduction is any module here with NAME, run, tables and plot (see harness.py): nothing lists them by hand.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

PACKAGE = "fairalign.scripts.repro"


def reproductions() -> dict:
    """{NAME: module} of every reproduction module in this package, in file-name order."""
    found = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name in ("harness", "run_all", "__main__"):
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        if all(hasattr(module, attr) for attr in ("NAME", "run", "tables", "plot")):
            found[module.NAME] = module
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true", help="rerun nothing: tables and plots from the JSON")
    parser.add_argument("--quick", action="store_true", help="tiny model, seconds each; never touches the doc")
    parser.add_argument("--only", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default docs/repro; --quick: temp)")
    args = parser.parse_args(argv)
    from fairalign.scripts.repro import harness

    found = reproductions()
    names = list(found) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in found]
    if unknown:
        raise SystemExit(f"--only: unknown reproduction(s) {unknown}; choose from {sorted(found)}")
    for name in names:
        flags = ["--rebuild"] * args.rebuild + ["--quick"] * args.quick
        flags += ["--out", str(args.out)] if args.out is not None else []
        print(f"=== {name} {' '.join(flags)}", flush=True)
        harness.main(found[name], flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
