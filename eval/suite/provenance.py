"""Code provenance for results.json: git commit (and whether the tree had uncommitted changes), library
versions, Python, platform and date, so a number can be traced to the code that produced it."""
from __future__ import annotations

import datetime
import importlib.metadata as md
import platform
import subprocess
from pathlib import Path

PACKAGES = ("fairalign", "torch", "transformers", "peft", "datasets", "numpy", "pandas", "matplotlib", "tqdm",
            "alt-profanity-check")


def _git(*args: str) -> str | None:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment() -> dict:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    status = _git("status", "--porcelain")
    return {"git_commit": _git("rev-parse", "HEAD") or None, "git_dirty": None if status is None else bool(status),
            "versions": versions, "python": platform.python_version(), "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
