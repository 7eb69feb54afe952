"""Regenerate the BLS Table 11 shipped with fairalign (eval/occupation/resources/) from the official xlsx.

    python scripts/make_packaged_bls.py                   # ../shared/data/bls/cpsaat11_2022_official_format.xlsx
    python scripts/make_packaged_bls.py --xlsx cpsaat11.xlsx --out eval/occupation/resources

The xlsx is parsed by `load_bls_table` (the same parser users run on a download), written as the normalised CSV
(columns `bls.COLUMNS`; the heading level is stored so loading it does not re-infer the hierarchy) plus a sidecar
JSON with the source, the caveats and BLS's NOTE row. The CSV is then read back and compared cell for cell
with the parsed xlsx: a difference is an error, so the shipped file is what the official one says.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_PAGE = "https://www.bls.gov/cps/aa{year}/cpsaat11.htm"


def default_xlsx() -> Path:
    shared = Path(os.environ.get("FAIRALIGN_SHARED_DATA", REPO / ".." / "shared" / "data"))
    return (shared / "bls" / "cpsaat11_2022_official_format.xlsx").resolve()


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Write the packaged BLS Table 11 (CSV + metadata) from an official cpsaat11.xlsx.")
    p.add_argument("--xlsx", default=None, help="official-layout cpsaat11.xlsx (default: the shared 2022 file)")
    p.add_argument("--out", default=None, help="output folder (default: eval/occupation/resources)")
    return p


def _total(v: float) -> str:
    # Totals are published as whole thousands; keep them integers so the CSV reads like the table.
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _pct(v: float, where: str) -> str:
    if math.isnan(v):
        return ""  # suppressed by BLS: stays missing, never 0
    if round(v, 1) != v:  # BLS rounds to 0.1; anything finer would be lost by the format below
        raise ValueError(f"{where}: {v} has more than one decimal")
    return f"{v:.1f}"


def write_csv(table, path: Path) -> None:
    from fairalign.eval.occupation.bls import COLUMNS, PCT_COLUMNS

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for row in table.df.to_dict("records"):
            w.writerow([table.year, row["occupation"], _total(row["total_employed_thousands"]),
                        *(_pct(row[c], f"{row['occupation']!r} {c}") for c in PCT_COLUMNS),
                        int(row["level"]), int(bool(row["is_detailed"]))])


def metadata(table, xlsx: Path) -> dict:
    from fairalign.eval.occupation.bls import BLS_URL_YEAR

    caveats = {k: v for k, v in table.caveats.items() if k not in ("suppressed_occupations", "note", "year")}
    return {
        "table": "BLS Current Population Survey, Table 11 (cpsaat11): Employed persons by detailed occupation, sex, "
                 "race, and Hispanic or Latino ethnicity",
        "year": table.year,
        "source_page": SOURCE_PAGE.format(year=table.year),
        "source_xlsx": BLS_URL_YEAR.format(year=table.year),
        "generated_from": xlsx.name,
        "generated_by": "scripts/make_packaged_bls.py",
        "units": "total_employed_thousands: thousands of employed persons, 16 years and over (annual averages); "
                 "pct_*: percent of the occupation's total employed (0-100)",
        "licence": "public domain (U.S. government work, 17 U.S.C. 105); cite the Bureau of Labor Statistics",
        "rows": len(table),
        "detailed_occupations": int(table.df["is_detailed"].sum()),
        "caveats": caveats,
        "note": table.note,
    }


def check_round_trip(parsed, written, check_note: bool = True) -> None:
    """The written CSV, read back, must equal the parsed xlsx: same rows, numbers, missing cells, hierarchy."""
    import pandas as pd

    a, b = parsed.df.reset_index(drop=True), written.df.reset_index(drop=True)
    if written.year != parsed.year or list(a.columns) != list(b.columns):
        raise SystemExit(f"round trip changed the year or columns: {parsed.year}/{written.year}, {list(b.columns)}")
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=True)
    if check_note and written.note != parsed.note:
        raise SystemExit("round trip lost BLS's NOTE row")


def main(args) -> int:
    from fairalign.eval.occupation.bls import RESOURCES, load_bls_table

    xlsx = Path(args.xlsx or default_xlsx())
    out = Path(args.out) if args.out else RESOURCES
    if xlsx.suffix.lower() != ".xlsx":
        raise SystemExit(f"--xlsx must be the official cpsaat11.xlsx layout; got {xlsx}")
    parsed = load_bls_table(xlsx)
    if parsed.year is None:
        raise SystemExit(f"{xlsx}: no year in the header; cannot name the packaged table")
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"cpsaat11_{parsed.year}.csv"
    write_csv(parsed, csv_path)
    csv_path.with_suffix(".json").write_text(json.dumps(metadata(parsed, xlsx), indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    # The loader reads the sidecar's note only for the packaged folder, so elsewhere only the cells are compared.
    check_round_trip(parsed, load_bls_table(csv_path), check_note=out.resolve() == RESOURCES)
    print(f"[packaged-bls] {len(parsed)} rows ({int(parsed.df['is_detailed'].sum())} detailed occupations, "
          f"{parsed.caveats['suppressed_rows']} with suppressed percentages) for {parsed.year} -> {csv_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
