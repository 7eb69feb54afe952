"""Training data named the way TRL's scripts name it, loaded so that local files work too.

Two sources, as in `trl dpo`: `dataset_name` (+ `dataset_config`; every split, picked later by
`dataset_train_split` / `dataset_test_split`), or a `datasets:` mixture (`trl.DatasetMixtureConfig`).

TRL's `get_dataset` hands each mixture entry to `datasets.load_dataset(path=...)`, which reads a bare local
`.jsonl` path as a Hub id. Here a local data file goes to its builder (json / csv / parquet) with the file as
`data_files` (checked first, so a bad row is named with its line), a saved dataset folder to `load_from_disk`,
and anything else (a Hub id, a folder of data files, `path: json` + `data_files`) to `load_dataset` with the
entry's arguments, as TRL calls it. The mixture rules are TRL's: `columns` keeps those columns; `fraction`, set for
every entry or for none, is an entry's share of the mixture, keeping its first rows, with the mixture as large as
it can be without repeating rows; `test_split_size` splits a test set off the mixture. Unlike TRL, that split is
seeded (the run's seed), so a rerun or a resume sees the same rows.
"""
from __future__ import annotations

import difflib
import logging
from pathlib import Path

from fairalign.align.data import LOCAL_FORMATS, check_text_file
from fairalign.align.errors import InputError, MissingPathError
from fairalign.align.validation import build_checked, check_number

logger = logging.getLogger("fairalign")


# --------------------------------------------------------------------------------------------- one source
def load_dataset_dict(name: str, config: str | None = None, where: str = "dataset_name"):
    """Every split of a dataset, as TRL's `load_dataset(dataset_name, name=dataset_config)`: a Hub id, a local
    data file (one split, `train`), a folder of data files (splits from the file names: `train.jsonl`,
    `test.jsonl`, ...) or a saved dataset folder. A `datasets.DatasetDict`."""
    import datasets

    path = Path(name).expanduser()
    if path.suffix in LOCAL_FORMATS and path.is_file():
        return datasets.DatasetDict({"train": _load_file(path, "train", where)})
    _refuse_missing(name, where)
    if path.is_dir():
        saved = _load_saved(path)
        if saved is not None:
            return saved if isinstance(saved, datasets.DatasetDict) else datasets.DatasetDict({"train": saved})
        _check_folder(path)
    return _load(where, path=str(path) if path.is_dir() else name, name=config)


def pick_split(splits, split: str, field: str, source: str):
    """splits[split], or an InputError naming the field, the source and the splits it has."""
    if split not in splits:
        raise InputError(f"{field}={split!r}: {source} has no split {split!r}; its splits: {sorted(splits)}")
    return splits[split]


# --------------------------------------------------------------------------------------------- a mixture
def entry_label(i: int, entry) -> str:
    path = entry.get("path") if isinstance(entry, dict) else getattr(entry, "path", None)
    return f"datasets[{i}] ({path})"


def check_mixture_entries(entries, where: str) -> None:
    """The `datasets:` list of a recipe, before TRL's parser builds it: a list of mappings whose keys are
    `trl.scripts.utils.DatasetConfig` fields (the closest one is suggested), each value of its field's type."""
    from trl.scripts.utils import DatasetConfig
    import dataclasses

    if not isinstance(entries, list):
        raise InputError(f"{where}: datasets must be a list of entries (path: ..., split: ..., fraction: ...), "
                         f"got {type(entries).__name__}")
    valid = [f.name for f in dataclasses.fields(DatasetConfig)]
    for i, entry in enumerate(entries):
        label = f"{where}: {entry_label(i, entry)}"
        if not isinstance(entry, dict):
            raise InputError(f"{label}: an entry is a mapping (path: ..., split: ...), got {type(entry).__name__}")
        for key in entry:
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise InputError(f"{label}: unknown key {key!r}; {hint}an entry's keys are {valid}")
        build_checked(DatasetConfig, entry, label)


def check_mixture(mixture) -> None:
    """InputError, naming the entry, for what TRL's get_dataset would fail on late or not at all: a fraction
    that is NaN, infinite or negative, fractions set for some entries only or all 0, a test_split_size that is
    neither a share in (0, 1) nor a whole number of rows, streaming (the trainers need a sized dataset)."""
    if mixture.streaming:
        raise InputError("streaming: fairalign train needs datasets with a length (for max_steps, epochs and "
                         "the fractions); set streaming: false")
    fractions = [entry.fraction for entry in mixture.datasets]
    for i, (entry, fraction) in enumerate(zip(mixture.datasets, fractions)):
        if not entry.path:
            raise InputError(f"{entry_label(i, entry)}: path is required (a Hub id, a local file or folder, or a "
                             "builder such as json with data_files)")
        if fraction is not None:
            check_number(fraction, f"{entry_label(i, entry)}.fraction", "[0, inf)",
                         fix="a share of the mixture; shares are normalised to sum to 1")
    unset = [entry_label(i, e) for i, (e, f) in enumerate(zip(mixture.datasets, fractions)) if f is None]
    if unset and len(unset) < len(fractions):
        raise InputError(f"datasets: fraction is set for some entries but not for {', '.join(unset)}; set it for "
                         "every entry or for none (none: every row of every entry)")
    if fractions and not unset and sum(fractions) == 0:
        raise InputError("datasets: every fraction is 0, so the mixture would be empty; give at least one entry a "
                         "positive share")
    size = mixture.test_split_size
    if size is not None:
        check_number(size, "test_split_size", "(0, inf)", fix="a share in (0, 1) or a number of rows")
        if size >= 1 and size != int(size):
            raise InputError(f"test_split_size={size}: a share must be in (0, 1), a number of rows a whole number")


def mixture_sizes(lengths: list[int], fractions: list[float]) -> list[int]:
    """Rows kept per entry (the first ones) under TRL's fraction rule: shares normalised to sum to 1, and the
    largest mixture size N at which no entry needs more rows than it has; entry i keeps round(share_i * N)."""
    shares = [f / sum(fractions) for f in fractions]
    total = min(n / s for n, s in zip(lengths, shares) if s > 0)
    return [round(s * total) for s in shares]


def load_mixture(mixture, seed: int = 0):
    """A `datasets.DatasetDict` from a `trl.DatasetMixtureConfig`: `train`, plus `test` when test_split_size is
    set. Each entry is loaded through fairalign's loader (local files too), then TRL's rules apply (module
    docstring)."""
    import datasets

    check_mixture(mixture)
    if not mixture.datasets:
        raise InputError("datasets: the mixture has no entries")
    parts = [load_entry(entry, entry_label(i, entry)) for i, entry in enumerate(mixture.datasets)]
    fractions = [entry.fraction for entry in mixture.datasets]
    if fractions[0] is not None:
        sizes = mixture_sizes([len(p) for p in parts], fractions)
        parts = [p.select(range(n)) for p, n in zip(parts, sizes)]
        kept = [f"{entry_label(i, entry)}: {n} rows" for i, (entry, n) in enumerate(zip(mixture.datasets, sizes))]
        logger.info("mixture: %s", ", ".join(kept))
    combined = _concatenate(parts, mixture.datasets)
    if len(combined) == 0:
        raise InputError("datasets: the mixture has no rows")
    if mixture.test_split_size is None:
        return datasets.DatasetDict({"train": combined})
    size = mixture.test_split_size
    size = int(size) if size >= 1 else size
    try:
        return combined.train_test_split(test_size=size, seed=seed)
    except ValueError as err:
        message = " ".join(str(err).split())
        raise InputError(f"test_split_size={size}: {message} (the mixture has {len(combined)} rows)") from None


def load_entry(entry, label: str):
    """One mixture entry (a `DatasetConfig`) as a `datasets.Dataset`."""
    import datasets

    path = Path(entry.path).expanduser()
    if path.suffix in LOCAL_FORMATS and path.is_file():
        extra = [k for k in ("name", "data_dir", "data_files") if getattr(entry, k) is not None]
        if extra:
            raise InputError(f"{label}: path is a data file, so {', '.join(extra)} do not apply; drop them (or write "
                             f"path: {LOCAL_FORMATS[path.suffix]} with data_files: [...])")
        dataset = _load_file(path, entry.split, label)
    else:
        _refuse_missing(entry.path, label)
        saved = _load_saved(path) if path.is_dir() else None
        if isinstance(saved, datasets.DatasetDict):
            dataset = pick_split(saved, entry.split, f"{label}.split", entry.path)
        elif saved is not None:
            if entry.split != "train":
                raise InputError(f"{label}: {entry.path} is a saved Dataset (one split); drop split: {entry.split}")
            dataset = saved
        else:
            for file in _local_files(entry.data_files):
                check_text_file(file)
            if path.is_dir():
                _check_folder(path)
            dataset = _load(label, path=entry.path, name=entry.name, data_dir=entry.data_dir,
                            data_files=entry.data_files, split=entry.split)
    if entry.columns is not None:
        missing = [c for c in entry.columns if c not in dataset.column_names]
        if missing:
            raise InputError(f"{label}: columns {missing} are not in the dataset; its columns: {dataset.column_names}")
        dataset = dataset.select_columns(entry.columns)
    return dataset


# --------------------------------------------------------------------------------------------- helpers
def _load_file(path: Path, split: str, where: str):
    check_text_file(path)
    return _load(where, path=LOCAL_FORMATS[path.suffix], data_files=str(path), split=split)


def _load(where: str, **kwargs):
    """datasets.load_dataset(**kwargs); its errors (offline, unknown id or split, bad file) as one InputError."""
    import datasets

    try:
        return datasets.load_dataset(**kwargs)
    except Exception as err:  # offline, unknown id, unknown split, unreadable file, ...
        shown = {k: v for k, v in kwargs.items() if v is not None}
        raise InputError(f"{where}: could not load {shown}: {type(err).__name__}: {' '.join(str(err).split())[:400]}. "
                         "Give a local .jsonl/.json/.csv/.parquet file or folder, a saved dataset folder, or a Hub id "
                         "(needs network; HF_HUB_OFFLINE=1 forbids it)") from None


def _load_saved(path: Path):
    """A folder written by save_to_disk (a Dataset or a DatasetDict), else None."""
    import datasets

    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return datasets.load_from_disk(str(path))
    return None


def _check_folder(path: Path) -> None:
    """The JSON Lines / CSV data files of a folder, checked as single files are (a folder's .json may be metadata)."""
    for file in sorted(path.rglob("*")):
        if file.suffix in (".jsonl", ".csv") and file.is_file():
            check_text_file(file)


def _local_files(data_files) -> list[Path]:
    if data_files is None:
        return []
    # TRL's DatasetConfig.data_files: a path, a list of paths, or {split: path or list of paths}
    files = list(data_files.values()) if isinstance(data_files, dict) else [data_files]
    flat = [f for item in files for f in ([item] if isinstance(item, str) else item)]
    return [Path(f).expanduser() for f in flat if Path(f).expanduser().is_file() and Path(f).suffix in LOCAL_FORMATS]


def _refuse_missing(name: str, where: str) -> None:
    """A name that looks like a local path (a data-file suffix, or starting with . / ~) must exist: a typo is not
    sent to the Hub."""
    text = str(name)
    if (Path(text).suffix in LOCAL_FORMATS or text.startswith((".", "/", "~"))) and not Path(text).expanduser().exists():
        raise MissingPathError(f"{where}: {name} does not exist; give a local .jsonl/.json/.csv/.parquet file or folder, "
                               "a saved dataset folder, or a Hub id")


def _concatenate(parts, entries):
    import datasets

    first = set(parts[0].column_names)
    for i, part in enumerate(parts[1:], start=1):
        if set(part.column_names) != first:
            raise InputError(f"datasets: {entry_label(i, entries[i])} has columns {sorted(part.column_names)}, "
                             f"{entry_label(0, entries[0])} has {sorted(first)}; the entries of a mixture need the same "
                             "columns (select them with columns: [...])")
    try:
        return datasets.concatenate_datasets(parts)
    except ValueError as err:
        raise InputError(f"datasets: the entries' columns have different types ({' '.join(str(err).split())[:300]}); "
                         "cast them to one type first") from None
