"""Append-only JSONL cache: what makes long generation and scoring runs resumable.

Layout: the first line is `{"header": {...}}` (the settings that produced the rows), then one JSON object
per line. Rows are appended and fsync'ed as soon as they exist, so a killed run loses at most the batch
in flight. A kill in the middle of a write can leave a torn last line: it is dropped on load and the file
is cut back to the last complete line, so later appends stay valid JSONL.

Reopening with different settings is an error rather than a silent mix of two protocols in one file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable


class JsonlCache:
    """An append-only JSONL file with a settings header.

    path: the file (parent folders are created). header: JSON-serialisable settings; an existing file
    must have been written with an equal header.
    """

    def __init__(self, path: str | os.PathLike, header: dict):
        self.path = Path(path)
        self.header = json.loads(json.dumps(header))  # normalise tuples -> lists for comparison

    def load(self) -> list[dict]:
        """Rows already on disk (empty when the file does not exist). Checks the header."""
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]  # everything up to the last newline
        if len(complete) < len(data):
            # Torn last line from a killed write: drop it so the next append starts on a fresh line.
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))
        lines = [line for line in complete.decode("utf-8").splitlines() if line.strip()]
        if not lines:
            return []
        first = json.loads(lines[0])
        if "header" not in first:
            raise ValueError(f"{self.path} is not a fairalign cache (its first line has no 'header'); "
                             "choose another cache path")
        if first["header"] != self.header:
            diff = sorted(k for k in set(first["header"]) | set(self.header)
                          if first["header"].get(k) != self.header.get(k))
            raise ValueError(
                f"{self.path} was written with different settings ({', '.join(diff)}: "
                f"{ {k: first['header'].get(k) for k in diff} } on disk vs { {k: self.header.get(k) for k in diff} } now). "
                "Delete the file or pass another cache path to start over."
            )
        return [json.loads(line) for line in lines[1:]]

    def append(self, rows: Iterable[dict]) -> None:
        """Append rows durably (flush + fsync), writing the header first if the file is new."""
        rows = list(rows)
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", encoding="utf-8") as f:
            if new:
                f.write(json.dumps({"header": self.header}) + "\n")
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())
