"""The errors fairalign raises on purpose, so that callers (and the CLI) can tell bad input from a bug.

- `InputError` (a ValueError): a setting, a file or a row is wrong. The message names the field, the file
  or the row, and the fix. The `fairalign` command prints it as one line and exits with 2, like argparse.
- `MissingPathError` (also a FileNotFoundError): a path the user gave does not exist.
- `FolderInUseError`: another run holds the output folder (see `fairalign.align.locking`).
- `NonFiniteError` (a RuntimeError): training produced a NaN/inf loss, gradient or parameter; it names the step.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message says what is wrong, where (field / file / row) and how to fix it."""


class MissingPathError(InputError, FileNotFoundError):
    """A path given explicitly (flag, recipe, argument) does not exist."""


class FolderInUseError(InputError):
    """An output folder is held by another live run."""


class NonFiniteError(RuntimeError):
    """A non-finite loss, gradient or parameter: training stops (nothing non-finite is saved)."""


def require_path(path, what: str, fix: str = "check the spelling, or pass another path"):
    """`path` as a Path when it exists, else MissingPathError naming `what` (e.g. "--bls") and the fix."""
    from pathlib import Path

    p = Path(path).expanduser()
    if not p.exists():
        raise MissingPathError(f"{what}: {path} does not exist; {fix}")
    return p
