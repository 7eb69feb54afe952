"""Reading and writing the files a run owns.

- `read_text(path, what)`: a user's text file (CSV, JSONL, TXT) as UTF-8. Python's own UnicodeDecodeError names
  neither the file nor the line; here the InputError says the file, the line, the byte and how to re-save it.
- `parse_jsonl(text, path, what)` / `read_jsonl(path, what)`: (line number, value) of each JSON Lines row; a
  line that is not JSON is an InputError naming `file:line`.
- `could_be_hub_id(text)`: whether a source that is not a local path may be a Hub dataset id; anything else the
  user typed is a path that must exist.
- `write_bytes_atomic` / `write_json_atomic`: a file is either absent or complete, so a run killed mid-write
  never leaves a half-written result that a resumed run would trust.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from fairalign.align.errors import InputError


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark is dropped). Newlines are kept as written.
    InputError when it is not UTF-8, naming `what`, the file, the line and the byte."""
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (Excel writes one): not part of the text
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{what} {path} is not UTF-8 text: line {line} has the byte 0x{data[err.start]:02x}, which UTF-8 cannot "
            "decode (the file was probably saved as Latin-1 / Windows-1252). Re-save it as UTF-8, e.g. "
            f"`iconv -f cp1252 -t utf-8 {path.name} > fixed_{path.name}`"
        ) from None


def parse_jsonl(text: str, path, what: str = "file", fix: str = "fix or remove the line") -> list[tuple[int, object]]:
    """(line number, parsed value) of each non-blank line of JSON Lines `text` read from `path`. Lines end at
    \n, \r\n or \r only: str.splitlines would also split inside JSON strings at U+2028 and the other separators
    JSON allows unescaped."""
    rows = []
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise InputError(f"{what} {path}:{number} is not valid JSON ({err.msg}, column {err.colno}); {fix}") from None
    return rows


def read_jsonl(path: str | os.PathLike, what: str = "file", fix: str = "fix or remove the line") -> list[tuple[int, object]]:
    """`parse_jsonl` of a UTF-8 file (see `read_text`)."""
    return parse_jsonl(read_text(path, what), path, what, fix)


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
DATA_FILE_SUFFIXES = (".jsonl", ".json", ".txt", ".csv", ".xlsx", ".xlsm", ".parquet")


def could_be_hub_id(source: str) -> bool:
    """`owner/name` with no data-file suffix: a name that is not a local path may be a Hub dataset id. "./x",
    "~/x", absolute paths, deeper paths and file names are local paths (so a missing one is an error)."""
    return bool(_HUB_ID.match(source)) and not source.lower().endswith(DATA_FILE_SUFFIXES)


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
