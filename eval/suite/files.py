"""Atomic file writes: a file is either absent or complete, so a run killed mid-write never leaves a
half-written result that a resumed run would trust."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file beside `path`, fsync, then rename over it (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    # allow_nan=False: JSON has no NaN; an undefined number must already be null.
    text = json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
