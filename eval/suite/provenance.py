"""Code provenance for results.json: git commit (and whether the tree had uncommitted changes), library
versions, Python, platform and date, so a number can be traced to the code that produced it."""
from __future__ import annotations

from fairalign.align.provenance import environment as _environment

PACKAGES = ("fairalign", "torch", "transformers", "peft", "datasets", "numpy", "pandas", "matplotlib", "tqdm",
            "alt-profanity-check")


def environment() -> dict:
    return _environment(PACKAGES)
