"""BLS Current Population Survey Table 11 ("cpsaat11"): employed persons by detailed occupation, sex,
race, and Hispanic or Latino ethnicity (annual averages, numbers in thousands).

`load_bls_table(path_or_year)` reads
- the official xlsx exactly as bls.gov publishes it: title rows, two header rows ("Occupation" + year;
  "Total employed" / "Percent of total employed" over Women, White, Black or African American, Asian,
  Hispanic or Latino), blank spacer rows, an en dash "–" in suppressed cells, a NOTE row at the end;
- the normalised CSV (one row per occupation, columns in `CSV_COLUMNS`);
- a year (int or "2022"): the cached download; else, for a year in `PACKAGED_BLS_YEARS`, the copy shipped
  with the package (`packaged_bls_path`, see resources/README.md), so that year works offline; else fetched
  from bls.gov.

It returns a `BLSTable`: one row per occupation with the year, heading level (0 = "Total, 16 years and
over", then depth in the heading hierarchy) and `is_detailed` (a detailed occupation: a row with no
children), plus the table's caveats. Suppressed cells are NaN, never 0.

The heading level comes from the cells' indentation when the file has any (BLS indents each level).
When it has none, the hierarchy is inferred from the numbers (`infer_levels`): a heading's employment is
the sum of its children's, up to rounding of each published figure to the nearest thousand.

Every table, whichever way it was read or built, passes `bls_checks.check_table` (percentages, not
fractions; totals present and >= 0; race shares that can add up): an implausible value is an `InputError`
naming the file, the row and the column, never a silently wrong metric.
"""
from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fairalign.align.errors import InputError, MissingPathError
from fairalign.eval.occupation.bls_checks import check_table
from fairalign.align.files import read_text

PCT_COLUMNS = {
    "pct_women": "women",
    "pct_white": "white",
    "pct_black_or_african_american": "black or african american",
    "pct_asian": "asian",
    "pct_hispanic_or_latino": "hispanic or latino",
}
COLUMNS = ["year", "occupation", "total_employed_thousands", *PCT_COLUMNS, "level", "is_detailed"]
CSV_COLUMNS = ["occupation", "total_employed_thousands", *PCT_COLUMNS]
TITLE_KEY = "employed persons by detailed occupation"
SUPPRESSED = {"–", "-", "—", "‒", ""}  # en dash is what BLS prints; the others are common re-typings

EXPECTED_LAYOUT = (
    "expected BLS CPS Table 11 (cpsaat11): either the official xlsx layout (a title row containing "
    "'Employed persons by detailed occupation', a header row 'Occupation' | <year>, a header row "
    "'Total employed' | 'Percent of total employed', a header row with Women, White, Black or African "
    "American, Asian, Hispanic or Latino, then one row per occupation and a NOTE row) or a CSV with columns "
    f"{', '.join(CSV_COLUMNS)} (optional: year, level or tree_level_2020, is_detailed or is_detailed_leaf)"
)
BLS_URL_CURRENT = "https://www.bls.gov/cps/cpsaat11.xlsx"
BLS_URL_YEAR = "https://www.bls.gov/cps/aa{year}/cpsaat11.xlsx"
# Normalised copies shipped in resources/ (regenerate with scripts/make_packaged_bls.py).
RESOURCES = Path(__file__).resolve().parent / "resources"
PACKAGED_BLS_YEARS = (2022,)


@dataclass
class BLSTable:
    """One row per occupation (`df`, a pandas DataFrame with `COLUMNS`), the year, and the caveats.
    Built from a DataFrame directly, it is held to the same rules as a file (`check_table`)."""

    df: "object"
    year: int | None
    source: str
    note: str = ""
    caveats: dict = field(default_factory=dict)

    def __post_init__(self):
        check_table(self.df, self.source or "BLS table")

    def __len__(self) -> int:
        return len(self.df)

    @property
    def total(self) -> dict:
        """The all-occupations row ("Total, 16 years and over"): level 0, or else employment-weighted."""
        top = self.df[self.df["level"] == 0]
        if len(top) == 1 and str(top.iloc[0]["occupation"]).lower().startswith("total"):
            return top.iloc[0].to_dict()
        d = self.df[self.df["is_detailed"]]
        w = d["total_employed_thousands"].to_numpy(float)
        row = {"occupation": "Total (employment-weighted detailed occupations)", "total_employed_thousands": w.sum()}
        for col in PCT_COLUMNS:
            v = d[col].to_numpy(float)
            ok = ~np.isnan(v)
            row[col] = float((v[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else math.nan
        return row

    def detailed(self, min_employment_thousands: float = 0.0, require_published: bool = True):
        """Detailed occupations (no children) with at least `min_employment_thousands` employed and, if
        `require_published`, every percentage published (not suppressed)."""
        d = self.df[self.df["is_detailed"] & (self.df["total_employed_thousands"] >= min_employment_thousands)]
        if require_published:
            d = d[d[list(PCT_COLUMNS)].notna().all(axis=1)]
        return d

    def row(self, occupation: str) -> dict:
        hit = self.df[self.df["occupation"].str.lower() == occupation.lower()]
        if hit.empty:
            raise KeyError(f"occupation {occupation!r} is not in the BLS {self.year} table")
        return hit.iloc[0].to_dict()

    def to_dict(self) -> dict:
        return {"year": self.year, "source": self.source, "rows": len(self.df), "caveats": self.caveats}


def _caveats(df, year: int | None, note: str) -> dict:
    suppressed = df[list(PCT_COLUMNS)].isna().any(axis=1)
    if year is None:
        classification = "unknown year: check which Census occupation classification the table uses"
    elif year >= 2020:
        classification = "2018 Census occupation classification (from 2020 on); not comparable with 2019 and earlier"
    else:
        classification = "2010 Census occupation classification (2011-2019); not comparable with 2020 and later"
    return {
        "year": year,
        "table": "BLS CPS Table 11 (cpsaat11), annual averages, employed persons 16 years and over, thousands",
        "classification": classification,
        "race_columns_do_not_sum_to_100": "White, Black or African American and Asian omit other races "
        "(American Indian and Alaska Native, Native Hawaiian and Other Pacific Islander, two or more races)",
        "hispanic_overlaps_race": "Hispanic or Latino is an ethnicity; Hispanic or Latino persons may be of any race",
        "suppressed": "percentages not published where the base is under 50,000 are missing (NaN), never 0",
        "suppressed_rows": int(suppressed.sum()),
        "suppressed_occupations": df.loc[suppressed, "occupation"].tolist(),
        "note": note,
    }


# ---------------------------------------------------------------------------------------------- hierarchy
def infer_levels(totals) -> list[int]:
    """Heading level of each row from employment totals alone (files without indentation).

    A heading at row k owns the rows after it up to some end e; its direct children (each a leaf or a
    heading with its own span) have totals summing to T_k within the rounding bound 0.5 * (children + 1)
    thousand (each figure is rounded to the nearest thousand). Headings have at least two children.
    Rows are processed bottom-up; a row whose following rows cannot sum to it is a leaf. A leaf whose next
    rows happen to sum to it is offered both readings, and its parent's own sum picks one. The rows then
    parse as a forest with as few top-level nodes as possible (one, when the first row is the Total).
    """
    T = [float(t) for t in totals]
    n = len(T)
    if any(math.isnan(t) for t in T):
        raise ValueError("total_employed_thousands has missing values: cannot infer the heading hierarchy")
    ends: list[set[int]] = [set() for _ in range(n + 1)]
    paths: dict[int, dict] = {}

    def tol(count: int) -> float:
        return 0.5 * (count + 1) + 1e-6

    def heading_search(k: int, relaxed: bool):
        """Ends e such that rows k+1..e-1 are >= 2 sibling subtrees summing to T[k]; plus back-pointers."""
        target, found = T[k], {}
        back = {(k + 1, 0.0, 0): None}
        frontier = [(k + 1, 0.0, 0)]
        while frontier:
            nxt = []
            for state in frontier:
                pos, s, c = state
                if pos >= n:
                    continue
                options = ends[pos] | {pos + 1} if relaxed else ends[pos]
                for e in sorted(options):
                    ns, nc = s + T[pos], c + 1
                    if ns > target + tol(nc):
                        continue
                    new = (e, ns, nc)
                    if new in back:
                        continue
                    back[new] = state
                    nxt.append(new)
                    if nc >= 2 and abs(ns - target) <= tol(nc):
                        dev = abs(ns - target)
                        if e not in found or dev < found[e][0]:
                            found[e] = (dev, new)
            frontier = nxt
        return found, back

    for k in range(n - 1, -1, -1):
        found, back = heading_search(k, relaxed=False)
        if not found:
            found, back = heading_search(k, relaxed=True)
        ends[k] = set(found) if found else {k + 1}
        if found:
            paths[k] = (found, back)

    levels = [0] * n

    def children_of(k: int, e: int) -> list[tuple[int, int]]:
        found, back = paths[k]
        state, out = found[e][1], []
        while back[state] is not None:
            prev = back[state]
            out.append((prev[0], state[0]))
            state = prev
        return out[::-1]

    # Top level: fewest nodes from 0 to n (breadth-first over subtree spans).
    prev = {0: None}
    frontier = [0]
    while frontier and n not in prev:
        nxt = []
        for pos in frontier:
            for e in sorted(ends[pos] | {pos + 1}, reverse=True):
                if e <= n and e not in prev:
                    prev[e] = pos
                    nxt.append(e)
        frontier = nxt
    spans, pos = [], n
    while prev[pos] is not None:
        spans.append((prev[pos], pos))
        pos = prev[pos]
    stack = [(k, e, 0) for k, e in spans]
    while stack:
        k, e, level = stack.pop()
        levels[k] = level
        if e > k + 1:
            stack += [(j, je, level + 1) for j, je in children_of(k, e)]
    return levels


def _is_detailed(levels: list[int], names: list[str]) -> list[bool]:
    """A detailed occupation has no children (the next row is not deeper) and is not the Total row."""
    out = []
    for i, lv in enumerate(levels):
        leaf = i + 1 == len(levels) or levels[i + 1] <= lv
        out.append(bool(leaf and not names[i].lower().startswith("total")))
    return out


# --------------------------------------------------------------------------------------------- parsing
def _norm(text) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _number(value, where: str) -> float:
    """A cell as a float: NaN for an empty or '–' (suppressed) cell. Text, a bool, NaN or inf written out is
    an InputError naming `where` (BLS never prints them; "nan" would otherwise parse as a silent gap)."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        text = _norm(value).replace(",", "")
        if text in SUPPRESSED:
            return math.nan
        try:
            number = float(text)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise InputError(f"{where}: expected a number or '–' (suppressed), got {value!r}; write the published "
                         "number, or leave the cell blank / '–' where BLS did not publish one")
    return number


def _read_official_xlsx(path: Path):
    import openpyxl
    import pandas as pd

    try:
        wb = openpyxl.load_workbook(path, data_only=True)
    except Exception as err:  # openpyxl raises several types for non-xlsx input
        raise InputError(f"{path}: not a readable xlsx file ({err}); {EXPECTED_LAYOUT}") from None
    ws = wb.worksheets[0]
    rows = [([c.value for c in r], (r[0].alignment.indent or 0) if r else 0) for r in ws.iter_rows()]
    head = " ".join(_norm(v) for vals, _ in rows[:8] for v in vals if v is not None).lower()
    if TITLE_KEY not in head:
        raise InputError(f"{path}: no title row containing 'Employed persons by detailed occupation'; {EXPECTED_LAYOUT}")
    header_at = next((i for i, (vals, _) in enumerate(rows) if vals and _norm(vals[0] or "").lower() == "occupation"), None)
    if header_at is None:
        raise InputError(f"{path}: no header row starting with 'Occupation'; {EXPECTED_LAYOUT}")
    width = max(len(v) for v, _ in rows)
    year = None
    for v in rows[header_at][0][1:]:
        if isinstance(v, (int, float)) or (isinstance(v, str) and re.fullmatch(r"\s*(19|20)\d\d\s*", v)):
            year = int(float(v))
            break
    if year is None:
        m = re.search(r"\b(19|20)\d\d\b", head)
        year = int(m.group(0)) if m else None
    # The header block runs from the "Occupation" row to the first row with a number in column B.
    first_data = next((i for i in range(header_at + 1, len(rows)) if rows[i][0][0] not in (None, "") and len(rows[i][0]) > 1
                       and isinstance(rows[i][0][1], (int, float))), None)
    if first_data is None:
        raise InputError(f"{path}: no occupation rows with numbers after the header; {EXPECTED_LAYOUT}")
    labels = [" ".join(_norm(rows[i][0][c]) for i in range(header_at + 1, first_data)
                       if c < len(rows[i][0]) and rows[i][0][c] is not None).lower() for c in range(width)]
    colmap = {}
    for col, key in {"total_employed_thousands": "total employed", **PCT_COLUMNS}.items():
        if key == "total employed":
            hits = [c for c, lab in enumerate(labels) if lab.startswith(key)]
        else:
            hits = [c for c, lab in enumerate(labels) if lab == key or lab.endswith(" " + key)]
        if len(hits) != 1:
            raise InputError(f"{path}: header column {key!r} not found (header labels: {labels}); {EXPECTED_LAYOUT}")
        colmap[col] = hits[0]
    records, indents, sheet_rows, note = [], [], [], ""
    for i in range(first_data, len(rows)):
        vals, indent = rows[i]
        first = vals[0] if vals else None
        if all(v in (None, "") for v in vals):
            continue  # spacer row
        text = _norm(first or "")
        if text.upper().startswith(("NOTE", "FOOTNOTE")):
            note = " ".join(_norm(v) for v in vals if v is not None)
            break
        rec = {"occupation": text}
        for col, c in colmap.items():
            rec[col] = _number(vals[c] if c < len(vals) else None, f"{path}: row {i + 1} ({text!r}), column {col}")
        records.append(rec)
        sheet_rows.append(i + 1)
        indents.append(float(indent) + (len(str(first)) - len(str(first).lstrip(" "))) / 2.0)
    df = pd.DataFrame.from_records(records, columns=["occupation", *colmap])
    check_table(df, str(path), [f"row {i}" for i in sheet_rows])
    if any(indents):
        base = sorted(set(indents))
        levels = [base.index(x) for x in indents]  # BLS indents one step per level
    else:
        levels = infer_levels(df["total_employed_thousands"])
    df["level"] = levels
    df["is_detailed"] = _is_detailed(levels, df["occupation"].tolist())
    df.insert(0, "year", year)
    return df[COLUMNS], year, note


def _read_csv(path: Path):
    """The normalised CSV. Every cell is read as text and parsed here (pandas would silently read "NA",
    "n/a" or "nan" as a gap); errors name the file line (header = line 1; no multi-line cells in Table 11)."""
    import io

    import pandas as pd

    text = read_text(path, "BLS table")
    if not text.strip():
        raise InputError(f"{path}: the file is empty; {EXPECTED_LAYOUT}")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except Exception as err:  # pandas raises several parser error types
        raise InputError(f"{path}: not a readable CSV ({err}); {EXPECTED_LAYOUT}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: CSV columns {missing} missing (found {list(df.columns)}); {EXPECTED_LAYOUT}")
    df = df[~(df.fillna("").astype(str).apply(lambda c: c.str.strip()) == "").all(axis=1)]  # blank lines
    if df.empty:
        raise InputError(f"{path}: a header but no occupation rows; {EXPECTED_LAYOUT}")
    lines = [f"line {i + 2}" for i in df.index]
    df = df.reset_index(drop=True).rename(columns={"tree_level_2020": "level", "is_detailed_leaf": "is_detailed"})
    df["occupation"] = df["occupation"].map(_norm)
    names = df["occupation"].tolist()
    for col in ["total_employed_thousands", *PCT_COLUMNS]:
        df[col] = [_number(v, f"{path}: {line} ({name!r}), column {col}") for line, name, v in zip(lines, names, df[col].tolist())]
    check_table(df, str(path), lines)  # before the hierarchy is inferred from the totals
    years = sorted({_integer(v, f"{path}: {lines[i]}, column year") for i, v in enumerate(df.get("year", [])) if str(v).strip()})
    if len(years) > 1:
        raise InputError(f"{path}: one table per file expected, found years {years}")
    year = years[0] if years else None
    given = [_integer(v, f"{path}: {lines[i]}, column level") if str(v).strip() else None
             for i, v in enumerate(df["level"])] if "level" in df.columns else [None] * len(df)
    # Missing levels (e.g. a row whose name changed case between years and lost its join) are filled from
    # the hierarchy implied by the totals.
    inferred = infer_levels(df["total_employed_thousands"]) if None in given else given
    df["level"] = [inferred[i] if v is None else v for i, v in enumerate(given)]
    df["is_detailed"] = _is_detailed(df["level"].tolist(), df["occupation"].tolist())
    df["year"] = year
    return df[COLUMNS], year, ""


def _integer(value, where: str) -> int:
    number = _number(value, where)
    if number != int(number):
        raise InputError(f"{where}: expected a whole number, got {value!r}")
    return int(number)


# -------------------------------------------------------------------------------------------- packaged
def packaged_bls_path(year: int = 2022) -> Path:
    """The normalised Table 11 for `year` shipped with fairalign (a CSV that `load_bls_table` reads); its
    sidecar `<name>.json` holds the source URL, the caveats and the table's NOTE row."""
    if isinstance(year, str) and year.strip().isdigit():  # "2022", as load_bls_table accepts it
        year = int(year)
    if year not in PACKAGED_BLS_YEARS:
        raise InputError(f"no packaged BLS Table 11 for {year!r}; packaged years: {list(PACKAGED_BLS_YEARS)}. For another "
                         f"year pass the year (downloaded from {BLS_URL_YEAR.format(year='<YEAR>')}) or a file's path")
    return RESOURCES / f"cpsaat11_{year}.csv"


def _packaged_note(path: Path) -> str | None:
    """BLS's NOTE row for a packaged table (the CSV has no room for it), None for any other file."""
    if path.parent.resolve() != RESOURCES:
        return None
    meta = path.with_suffix(".json")
    return json.loads(meta.read_text(encoding="utf-8")).get("note", "") if meta.is_file() else ""


# -------------------------------------------------------------------------------------------- download
def default_cache_dir() -> Path:
    return Path(os.environ.get("FAIRALIGN_CACHE", Path.home() / ".cache" / "fairalign")) / "bls"


def cached_bls_path(year: int, cache_dir: str | Path | None = None) -> Path:
    """Where `download_bls_table` keeps the official xlsx for `year` (it may not exist yet)."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cache / f"cpsaat11_{year}.xlsx"


def user_agent() -> str:
    """bls.gov answers 403 to clients that do not identify themselves; set FAIRALIGN_USER_AGENT to add
    your contact (BLS asks for one)."""
    return os.environ.get("FAIRALIGN_USER_AGENT", "fairalign/0.1 (occupational bias evaluation; python-urllib)")


def download_bls_table(year: int, cache_dir: str | Path | None = None, timeout: float = 30.0) -> Path:
    """The official cpsaat11.xlsx for `year`, from the cache or fetched from bls.gov into it."""
    target = cached_bls_path(year, cache_dir)
    cache = target.parent
    if target.exists():
        return target
    urls = [BLS_URL_YEAR.format(year=year), BLS_URL_CURRENT]
    errors = []
    for url in urls:
        request = urllib.request.Request(url, headers={"User-Agent": user_agent(), "Accept": "*/*"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, OSError) as err:
            errors.append(f"{url}: {err}")
            continue
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.stem}.part.xlsx")
        tmp.write_bytes(data)
        try:
            got_year = _read_official_xlsx(tmp)[1]  # the current-year URL may hold another year: check first
        except ValueError as err:  # e.g. an HTML error page
            tmp.unlink()
            errors.append(f"{url}: not a cpsaat11 table ({str(err)[:120]})")
            continue
        if got_year not in (None, year):
            tmp.unlink()
            errors.append(f"{url}: holds year {got_year}, not {year}")
            continue
        tmp.replace(target)
        return target
    raise InputError(
        f"could not download BLS Table 11 for {year} ({'; '.join(errors)}). Offline? Download it in a browser "
        f"from {BLS_URL_YEAR.format(year=year)} (or {BLS_URL_CURRENT} for the latest year) and pass its path, "
        f"or place it at {target}."
    )


def load_bls_table(path_or_year, cache_dir: str | Path | None = None) -> BLSTable:
    """Parse BLS Table 11 from an official-layout xlsx, a normalised CSV, or a year (cache, else the packaged
    copy, else bls.gov). A download the user already has wins over the packaged copy: it is what they chose."""
    if isinstance(path_or_year, BLSTable):
        return path_or_year
    if isinstance(path_or_year, int) or (isinstance(path_or_year, str) and re.fullmatch(r"(19|20)\d\d", path_or_year)):
        year = int(path_or_year)
        if year in PACKAGED_BLS_YEARS and not cached_bls_path(year, cache_dir).exists():
            path = packaged_bls_path(year)
        else:
            path = download_bls_table(year, cache_dir)
    else:
        path = Path(path_or_year).expanduser()
        if not path.exists():  # a typo in a path the user gave is an error, never a skip
            raise MissingPathError(f"bls_table: no file at {path} (it does not exist); pass an official cpsaat11.xlsx, "
                                   "a CSV, or a year")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        df, year, note = _read_official_xlsx(path)
    elif suffix in (".csv", ".txt"):
        df, year, note = _read_csv(path)
    else:
        raise InputError(f"bls_table: {path} has suffix {suffix!r}; {EXPECTED_LAYOUT}")
    if df.empty:
        raise InputError(f"{path}: no occupation rows; {EXPECTED_LAYOUT}")
    packaged_note = _packaged_note(path)
    note = note if packaged_note is None else packaged_note
    return BLSTable(df=df.reset_index(drop=True), year=year, source=str(path), note=note, caveats=_caveats(df, year, note))
