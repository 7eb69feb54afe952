"""Batch-atomic JSONL cache: what makes long generation and scoring runs resumable, and resumption exact.

The rule (one for every fairalign cache): **the batch is the unit of atomicity.** A batch's rows were made
together (one generate call under one seed, one scorer call), so a batch is either used whole or made
again whole; a resumed run therefore equals an uninterrupted one.

Layout (format 2):

    {"fairalign_cache": 2, "header": {...settings that produced the rows...}}
    {"batch": 0, "rows": [...], "sha256": "<sha256 of the canonical JSON of rows>"}
    {"batch": 1, "rows": [...], "sha256": "..."}

Each batch is appended as one line and fsync'ed before the next batch starts. On load:
- a torn last line (no final newline: a write killed halfway) is an incomplete batch: it is dropped and the
  file cut back to the last complete line, so that batch is made again whole;
- any other line that is not valid JSON, lacks its keys or fails its checksum is corruption: `InputError`
  naming the file and the line (delete the file, or use another path, to start over);
- a header that differs from the requested settings is refused, naming each setting with its recorded and
  requested value (a resumed run with other settings would mix two protocols, or other batch seeds);
- a format-1 cache (one row per line, written before this rule) is refused: it cannot tell a complete batch
  from a partial one.
Batches come back in file order; a caller that finds one batch index on several lines takes the last (a
batch made again after its first version no longer matched the run's plan, or a retry of failed rows).

The caller holds the file (`fairalign.align.locking.hold_file`), so no other process writes the file
while it is read, cut back or appended to.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from fairalign.align.errors import InputError

FORMAT = 2
START_OVER = "delete the file (or pass another cache path) to start over"


def rows_sha256(rows: list) -> str:
    """The checksum a batch line carries: sha256 of its rows' canonical JSON (Python's float repr
    round-trips, so a line read back hashes to the same value)."""
    text = json.dumps(rows, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class CachedBatch:
    """One complete batch read back: its index, rows and the file line it came from (1-based)."""

    index: int
    rows: list[dict]
    line: int


class JsonlCache:
    """A batch-atomic JSONL file with a settings header (see the module docstring for the rules).

    path: the file (parent folders are created on the first append). header: JSON-serialisable settings;
    an existing file must have been written with an equal header.
    """

    def __init__(self, path: str | os.PathLike, header: dict):
        self.path = Path(path)
        self.header = json.loads(json.dumps(header))  # normalise tuples -> lists for comparison

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"

    def load_batches(self) -> list[CachedBatch]:
        """Complete, verified batches in file order (empty when the file does not exist). Checks the header;
        drops (and cuts off) a torn last line."""
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]  # everything up to the last newline
        if len(complete) < len(data):  # a torn last line: an incomplete batch, made again whole
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))
        lines = complete.split(b"\n")[:-1]
        if not lines:
            return []
        self._check_header(self._parse(lines[0], 1))
        batches: list[CachedBatch] = []
        for number, raw in enumerate(lines[1:], start=2):
            entry = self._parse(raw, number)
            index, rows = entry.get("batch"), entry.get("rows")
            if not (isinstance(index, int) and not isinstance(index, bool) and index >= 0 and isinstance(rows, list)
                    and all(isinstance(r, dict) for r in rows) and isinstance(entry.get("sha256"), str)):
                raise InputError(f"{self.where(number)}: not a cache batch line (needs 'batch', 'rows' and 'sha256'); "
                                 f"the cache is corrupt: {START_OVER}")
            if rows_sha256(rows) != entry["sha256"]:
                raise InputError(f"{self.where(number)}: batch {index} does not match its checksum (the file was "
                                 f"changed after fairalign wrote it): {START_OVER}")
            batches.append(CachedBatch(index, rows, number))
        return batches

    def append_batch(self, index: int, rows: list[dict]) -> None:
        """Append one batch as one line, durably (flush + fsync), writing the header first if the file is new."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        line = json.dumps({"batch": index, "rows": rows, "sha256": rows_sha256(rows)}, ensure_ascii=False,
                          allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            if new:
                f.write(json.dumps({"fairalign_cache": FORMAT, "header": self.header}) + "\n")
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ----------------------------------------------------------------------------------------- checks
    def _parse(self, raw: bytes, number: int) -> dict:
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise InputError(f"{self.where(number)}: not valid JSON ({err}); the cache is corrupt (only a torn last "
                             f"line is expected after a kill): {START_OVER}") from None
        if not isinstance(entry, dict):
            raise InputError(f"{self.where(number)}: expected a JSON object; the cache is corrupt: {START_OVER}")
        return entry

    def _check_header(self, first: dict) -> None:
        if "header" not in first:
            raise InputError(f"{self.where(1)}: not a fairalign cache (its first line has no 'header'); "
                             "pass another cache path")
        version = first.get("fairalign_cache", 1)
        if version != FORMAT:
            raise InputError(
                f"{self.path} is a format-{version} cache (this fairalign reads format {FORMAT}). Format 1 stored one "
                "row per line and cannot tell a complete batch from a partial one, so resuming from it could mix "
                f"samples drawn under different seeds: {START_OVER}")
        recorded = first["header"]
        if recorded == self.header:
            return
        keys = sorted(k for k in set(recorded) | set(self.header) if recorded.get(k) != self.header.get(k))
        diffs = "; ".join(f"{k}: recorded {recorded.get(k)!r}, requested {self.header.get(k)!r}" for k in keys)
        why = (" (batch_size decides which prompts share a batch and its seed, so other batches would give other "
               "samples than an uninterrupted run)" if "batch_size" in keys else "")
        raise InputError(f"{self.path} was written with other settings ({diffs}){why}. Rerun with the recorded "
                         f"values to resume, or {START_OVER}.")
