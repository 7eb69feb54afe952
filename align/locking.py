"""A folder that a run writes belongs to that run: `hold_folder(path)` takes an exclusive lock on it
(`hold_file(path)` does the same for one file, such as a cache a caller placed in a shared folder).

    with hold_folder("runs/suite", "fairalign eval suite"):
        ...  # a second run on runs/suite raises FolderInUseError naming this one (pid, host, command, start)

The lock is an OS file lock (`flock`) on `<folder>/.fairalign.lock`, so it is released when the holder exits
for any reason, SIGKILL included: a killed run never leaves a stale lock, and its resumption takes the folder
at once. The file also records who holds it, for the message a second run prints. Re-entrant within one
process (the CLI and the trainer it builds may both take it). Under `accelerate launch`, only the main process
(RANK 0) takes it: the other ranks of the same job write into the folder as the main process's team.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
import threading
from pathlib import Path

from fairalign.align.errors import FolderInUseError

LOCK_NAME = ".fairalign.lock"
_held: dict[str, list] = {}  # resolved folder -> [open file, depth]
_guard = threading.Lock()


def _describe(info: dict) -> str:
    if not info:
        return "another process (no holder details recorded)"
    return (f"pid {info.get('pid')} on {info.get('host')} (`{info.get('command')}`, started {info.get('started')})")


def _try_lock(handle) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def is_main_process() -> bool:
    """RANK 0 (or no launcher): the process that owns a run's output folder."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike, purpose: str | None = None):
    """Hold `folder` (created if missing) for the duration of the block; FolderInUseError if another live
    process holds it. No-op on non-main ranks of a distributed launch."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _hold(folder / LOCK_NAME, folder, "output folder", purpose):
        yield folder


@contextlib.contextmanager
def hold_file(path: str | os.PathLike, purpose: str | None = None):
    """Hold one file (e.g. a cache that a Python caller placed anywhere) through `<file>.lock` beside it, so
    two processes never append to it at once while other files of its folder stay free."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _hold(path.with_name(path.name + ".lock"), path, "file", purpose):
        yield path


@contextlib.contextmanager
def _hold(lock_path: Path, target: Path, kind: str, purpose: str | None):
    if not is_main_process():
        yield
        return
    key = str(lock_path.resolve())
    with _guard:
        if key in _held:
            _held[key][1] += 1
        else:
            _held[key] = [_acquire(lock_path, target, kind, purpose), 1]
    try:
        yield
    finally:
        with _guard:
            _held[key][1] -= 1
            if _held[key][1] == 0:
                handle = _held.pop(key)[0]
                handle.close()  # releases the lock; the file stays (removing it would race a waiting run)


def _acquire(path: Path, target: Path, kind: str, purpose: str | None):
    handle = open(path, "a+", encoding="utf-8")
    if not _try_lock(handle):
        handle.seek(0)
        try:
            info = json.loads(handle.read() or "{}")
        except ValueError:
            info = {}
        handle.close()
        raise FolderInUseError(
            f"{target} is in use by another fairalign run: {_describe(info)}. Wait for it to finish, or give "
            f"this run another {kind} (two runs writing one {kind} would mix their files)."
        )
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(),
        "command": purpose or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }))
    handle.flush()
    return handle
