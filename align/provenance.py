"""Where a number came from: library versions, the git commit of this checkout, Python, platform and date.
Every run and report records these (training runs, each evaluation, the suite, `fairalign env`)."""
from __future__ import annotations

import datetime
import importlib.metadata as md
import platform
import subprocess
from pathlib import Path

CORE_PACKAGES = ("fairalign", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "numpy")
_REPO = Path(__file__).resolve().parents[1]  # the checkout in an editable install; not a git tree in a wheel


def package_versions(packages=CORE_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when it is not installed)."""
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return versions


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """(commit, whether the tree has uncommitted changes); (None, None) outside a git checkout."""
    commit = _git("rev-parse", "HEAD") or None
    status = _git("status", "--porcelain") if commit else None
    return commit, None if status is None else bool(status)


def environment(packages=CORE_PACKAGES) -> dict:
    commit, dirty = git_state()
    return {"git_commit": commit, "git_dirty": dirty, "versions": package_versions(packages),
            "python": platform.python_version(), "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
