"""Reading and writing the files a run owns.

- `read_text(path, what)`: a user's text file (CSV, JSONL, TXT) as UTF-8. Python's own UnicodeDecodeError names
  neither the file nor the line; here the InputError says the file, the line, the byte and how to re-save it.
- `write_bytes_atomic` / `write_json_atomic`: a file is either absent or complete, so a run killed mid-write
  never leaves a half-written result that a resumed run would trust.
"""
from __future__ import annotations

import json
import os
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
