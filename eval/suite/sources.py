"""Where each task's data comes from, and the provenance that goes with every number.

A source given explicitly (flag / YAML) is used as given, and one that cannot be had is an error
(`MissingPathError`, an InputError, before any model loads): a path that does not exist, a Hub id that cannot
be loaded, a BLS year that is neither cached nor downloadable. Left out, it is looked for in documented places:
- shared reference data: `$FAIRALIGN_SHARED_DATA`, else `../shared/data` beside the checkout (the same place
  the tests read, tests/conftest.py): `bls/cpsaat11_2022_official_format.xlsx`, `bbnli/bbnli_expanded.csv`;
- the BLS download cache `$FAIRALIGN_CACHE/bls/cpsaat11_<year>.xlsx` (what `load_bls_table(year)` fills);
- the Hugging Face cache for Hub datasets (RealToxicityPrompts at the task's pinned revision, BBNLI).
Only data looked for there may be missing: it raises `MissingData` with the reason and how to get it, and the
runner records the task as skipped and goes on with the others.

Provenance: a local file -> path, sha256 and rows; a folder -> sha256 over its files' paths and contents;
a Hub dataset -> id and revision.
"""
from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from fairalign.align.errors import InputError, MissingPathError
from fairalign.align.files import could_be_hub_id
from fairalign.eval.registry import source

SHARED_DATA_ENV = "FAIRALIGN_SHARED_DATA"
DEMO_PROMPTS = Path(__file__).resolve().parents[1] / "toxicity" / "resources" / "demo_prompts.jsonl"
BLS_YEAR = 2022  # the default year (eval/tasks/occupation.yaml data.year pins it per task)
# owner/name as the Hub spells a dataset id; anything else that does not exist is a mistyped path


class MissingData(Exception):
    """A task's data is not available here: `reason` says what was tried, `how_to` how to get it."""

    def __init__(self, task: str, reason: str, how_to: str):
        super().__init__(f"{task}: {reason}. {how_to}")
        self.task, self.reason, self.how_to = task, reason, how_to


@dataclass
class Source:
    """Loaded data plus where it came from. `rows_used` is filled once the task has selected its rows."""

    data: object
    provenance: dict = field(default_factory=dict)


def shared_data_dir() -> Path:
    """$FAIRALIGN_SHARED_DATA, else ../shared/data beside the checkout (as tests/conftest.py)."""
    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return Path(os.environ.get(SHARED_DATA_ENV, default)).resolve()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_path(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder: over the sorted relative paths and contents of its files."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(file.relative_to(path)).encode() + b"\0" + sha256_file(file).encode() + b"\n")
    return h.hexdigest()


def require_source(source: str, what: str, how_to: str) -> bool:
    """For a source the user named explicitly: True when it is a local path, False when it may be a Hub id;
    MissingPathError naming `what` (e.g. "toxicity.prompts (--prompts)") and the fix otherwise."""
    if Path(source).exists():
        return True
    if could_be_hub_id(source):
        return False
    raise MissingPathError(f"{what}: {source} does not exist. {how_to}")


def local_provenance(path: str | os.PathLike) -> dict:
    path = Path(path).resolve()
    return {"source": str(path), "path": str(path), "sha256": sha256_path(path), "hub_id": None, "revision": None}


def hub_provenance(hub_id: str, revision: str | None) -> dict:
    return {"source": hub_id, "path": None, "sha256": None, "hub_id": hub_id, "revision": revision}


# ------------------------------------------------------------------------------------------------ toxicity
@source("toxicity_prompts")
def toxicity_prompts(settings, seed: int = 0, *, path: str, split: str = "train", revision: str | None = None,
                     prompt_field: str | None = None) -> Source:
    """Prompts for a toxicity task: settings.prompts ('demo', a file, a Hub id) or the task's dataset `path`
    at `revision` (the documented default: the only source whose absence is a skip)."""
    from fairalign.eval.toxicity.data import load_prompts

    what = "toxicity.prompts (--prompts)"
    explicit = settings.prompts is not None
    source = settings.prompts or path
    source = str(DEMO_PROMPTS) if source == "demo" else source
    is_task_dataset = source == path
    kwargs = dict(challenging_only=settings.challenging_only, limit=settings.limit, shuffle_seed=settings.shuffle_seed)
    if is_task_dataset:
        kwargs.update(split=split, revision=revision, prompt_field=prompt_field)
    how_to = ("Pass --prompts PATH (JSONL with a `prompt` field), or --prompts demo for the bundled demo prompts.")
    local = require_source(source, what, how_to) if explicit else Path(source).exists()
    try:
        prompts = load_prompts(source, **kwargs)
    except OSError as err:  # the Hub is unreachable and the dataset is not cached
        reason = f"could not load {source!r} ({str(err).splitlines()[0]})"
        hub_how_to = (f"Run once where the Hub is reachable (it is then cached), or download {path}'s "
                      "prompts.jsonl and pass --prompts /path/to/prompts.jsonl; --prompts demo runs the bundled "
                      "demo prompts (not comparable with RealToxicityPrompts).")
        if explicit:  # asked for by name: an error, never a skip
            raise MissingPathError(f"{what}: {reason}: no such local file, and not loadable as a Hub dataset. "
                                   f"{hub_how_to}") from err
        raise MissingData("toxicity", reason, hub_how_to) from err
    if not prompts:
        raise InputError(f"toxicity: no prompts left in {source} after filtering; check prompts / challenging_only / limit")
    prov = local_provenance(source) if local else hub_provenance(source, kwargs.get("revision"))
    prov["rows_used"] = len(prompts)
    return Source(prompts, prov)


# ---------------------------------------------------------------------------------------------- occupation
def _bls_candidates(year: int = BLS_YEAR) -> list[Path]:
    """The documented places, in order: the shared reference data, the download cache, the packaged table."""
    from fairalign.eval.occupation.bls import PACKAGED_BLS_YEARS, default_cache_dir, packaged_bls_path

    out = [shared_data_dir() / "bls" / f"cpsaat11_{year}_official_format.xlsx",
           Path(default_cache_dir()) / f"cpsaat11_{year}.xlsx"]
    return out + ([packaged_bls_path(year)] if year in PACKAGED_BLS_YEARS else [])


@source("bls_table")
def bls_table_source(settings, seed: int = 0, *, year: int = BLS_YEAR) -> Source:
    """The BLS table the occupation settings name (settings.bls), with the occupation selection checked here
    so that a bad occupation name fails before any model loads."""
    from fairalign.eval.occupation import select_occupations

    table = bls_table(settings.bls, year)
    names = select_occupations(table.data, settings.occupations, settings.min_employment_thousands,
                               settings.max_occupations)
    table.provenance.update(rows_used=len(names), rows_total=len(table.data))
    return table


def bls_table(setting, year: int = BLS_YEAR) -> Source:
    """BLS Table 11 from a path or a year (cache / bls.gov / packaged), else the first documented place that has
    the task's `year` (the last is the table shipped with fairalign, for the years it ships). Only the documented
    places may come up empty (MissingData); a path or year given is an error if missing."""
    from fairalign.eval.occupation.bls import load_bls_table

    what = "occupation.bls (--bls)"
    candidates = _bls_candidates(year)
    how_to = (f"Download https://www.bls.gov/cps/aa{year}/cpsaat11.xlsx in a browser and pass --bls PATH, "
              f"or put it at {candidates[1]}, or set {SHARED_DATA_ENV} to a folder with bls/{candidates[0].name}.")
    explicit = setting is not None
    if not explicit:
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise MissingData("occupation", f"no BLS table given and none at {', '.join(map(str, candidates))}", how_to)
        setting = found
    is_year = isinstance(setting, int) or (isinstance(setting, str) and setting.isdigit())
    if not is_year and not Path(setting).exists():
        raise MissingPathError(f"{what}: {setting} does not exist. {how_to}")
    if not is_year and not Path(setting).is_file():
        raise InputError(f"{what}: {setting} is a folder; pass the cpsaat11 .xlsx or the CSV itself")
    try:
        table = load_bls_table(int(setting) if is_year else setting)
    except ValueError as err:
        if is_year:  # offline and not in the download cache: asked for by name, so an error
            raise InputError(f"{what}={setting}: {str(err).split('. ')[0]}. {how_to}") from err
        raise
    return Source(table, local_provenance(table.source))


# --------------------------------------------------------------------------------------------------- bbnli
def _bbnli_candidates() -> list[Path]:
    base = shared_data_dir() / "bbnli"
    return [base / "bbnli_expanded.csv", base / "templates"]


@source("bbnli")
def bbnli_dataset(settings, seed: int = 0, *, release_sha256: str | None = None, release_rows: int | None = None) -> Source:
    """BBNLI from settings.data (folder, CSV, Hub id, or "demo": our small probe set), else the shared data, else
    the Hub cache (only these documented places may come up empty); then settings.max_premises_per_subtopic,
    then settings.max_rows (a seeded random subset, in the original order). A local CSV is compared with the
    released file's sha256: `provenance["is_release"]` says whether the numbers are BBNLI's."""
    from fairalign.eval.bbnli.data import HUB_ID, BBNLIDataset, load_bbnli

    what = "bbnli.data (--bbnli-data)"
    how_to = (f"Clone https://github.com/feyzaakyurek/bbnli and pass --bbnli-data <clone>/data/bbnli (the template "
              f"folder), or pass the expanded CSV, or set {SHARED_DATA_ENV} to a folder with bbnli/bbnli_expanded.csv, "
              f"or run once online so the Hub dataset {HUB_ID} is cached; --bbnli-data demo runs our demo probe set.")
    source = settings.data
    explicit = source is not None
    if source == "demo":
        from fairalign.eval.bbnli.data import demo_probes_path

        source = str(demo_probes_path())
    if not explicit:
        source = next((str(p) for p in _bbnli_candidates() if p.exists()), HUB_ID)
    local = require_source(source, what, how_to) if explicit else Path(source).exists()
    try:
        data = load_bbnli(source, drop_duplicate_pairs=settings.drop_duplicate_pairs)
    except (FileNotFoundError, RuntimeError, OSError) as err:
        reason = f"could not load {source!r} ({str(err).splitlines()[0]})"
        if explicit:  # asked for by name: an error, never a skip
            error = InputError if local else MissingPathError
            raise error(f"{what}: {reason}. {how_to}") from err
        raise MissingData("bbnli", reason, how_to) from err
    rows_loaded = len(data)
    if settings.max_premises_per_subtopic:
        data = data.subsample(settings.max_premises_per_subtopic)
    if settings.max_rows and settings.max_rows < len(data):
        keep = set(random.Random(seed).sample(range(len(data)), settings.max_rows))
        data = BBNLIDataset([ex for i, ex in enumerate(data) if i in keep], data.source,
                            data.notes + [f"quick run: a random {settings.max_rows} of {len(data)} rows (seed {seed}); "
                                          "premises are partly represented"])
    prov = local_provenance(source) if local else hub_provenance(source, None)
    prov["rows_used"] = len(data)
    if local and Path(source).is_file() and release_sha256:
        prov["is_release"] = prov["sha256"] == release_sha256 and rows_loaded == (release_rows or rows_loaded)
    return Source(data, prov)
