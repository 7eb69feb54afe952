"""BLS Table 11 loading: the official xlsx layout (shared 2022 file and a synthetic one), the CSV, the
hierarchy, wrong layouts, and the download path (with urlopen faked: no network in tests)."""
import math
import urllib.error

import numpy as np
import pytest

from fairalign.align.errors import MissingPathError
from fairalign.eval.occupation import bls
from fairalign.eval.occupation.bls import infer_levels, load_bls_table

NOTE = ("NOTE: Estimates for the above race groups (White, Black or African American, and Asian) do not sum to totals "
        "because data are not presented for all races. Dash indicates no data or data that do not meet publication criteria.")
# name, total, pct women/white/black/asian/hispanic ("–" = suppressed), level
SYNTH = [
    ("Total, 16 years and over", 1000, 47.0, 77.0, 12.0, 7.0, 18.0, 0),
    ("Widget occupations", 600, 30.0, 80.0, 10.0, 6.0, 15.0, 1),
    ("Widget makers", 300, 20.0, 81.0, 9.0, 7.0, 14.0, 2),
    ("Widget testers", 200, 40.0, 79.0, 11.0, 5.0, 16.0, 2),
    ("Widget polishers", 100, 45.0, 78.0, 12.0, 6.0, 15.5, 2),
    ("Gadget occupations", 400, 70.0, 72.0, 15.0, 8.0, 22.0, 1),
    ("Gadget designers", 360, 72.0, 71.0, 16.0, 8.5, 23.0, 2),
    ("Gadget inspectors", 40, "–", "–", "–", "–", "–", 2),
]


def write_official(path, rows=SYNTH, year=2022, title=True, indent=False, header_women="Women"):
    """An xlsx in the layout bls.gov publishes: title rows, two header rows, spacer rows, en dashes, NOTE."""
    import openpyxl
    from openpyxl.styles import Alignment

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["HOUSEHOLD DATA\nANNUAL AVERAGES\n11. Employed persons by detailed occupation, sex, race, and Hispanic or Latino ethnicity"
               if title else "Some other statistics table"])
    ws.append(["[Numbers in thousands]"])
    ws.append([])
    ws.append(["Occupation", year])
    ws.append([None, "Total\nemployed", "Percent of total employed"])
    ws.append([None, None, header_women, "White", "Black or\nAfrican\nAmerican", "Asian", "Hispanic\nor Latino"])
    ws.append([])
    for i, r in enumerate(rows):
        ws.append(list(r[:7]))
        if indent:
            ws.cell(ws.max_row, 1).alignment = Alignment(indent=r[7])
        if i == 0:
            ws.append([])  # spacer after the total row, as BLS does
    ws.append([])
    ws.append([NOTE])
    wb.save(path)
    return path


def test_official_xlsx_matches_clean_csv(shared_data):
    x = load_bls_table(shared_data / "bls" / "cpsaat11_2022_official_format.xlsx")
    c = load_bls_table(shared_data / "bls" / "cpsaat11_2022_clean.csv")
    assert x.year == c.year == 2022
    assert x.df["occupation"].tolist() == c.df["occupation"].tolist()
    for col in ["total_employed_thousands", *bls.PCT_COLUMNS]:
        a, b = x.df[col].to_numpy(float), c.df[col].to_numpy(float)
        assert (np.isnan(a) == np.isnan(b)).all(), col
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)]), col
    raw = __import__("pandas").read_csv(shared_data / "bls" / "cpsaat11_2022_clean.csv")
    known = raw["tree_level_2020"].notna().to_numpy()
    assert (x.df["level"].to_numpy()[known] == raw["tree_level_2020"].to_numpy()[known]).all()
    assert (x.df["is_detailed"].to_numpy()[known] == (raw["is_detailed_leaf"] == 1).to_numpy()[known]).all()
    # Suppressed cells are missing, never 0.
    leg = x.row("Legislators")
    assert leg["total_employed_thousands"] == 14 and all(math.isnan(leg[k]) for k in bls.PCT_COLUMNS)
    assert x.row("Chief executives")["pct_women"] == pytest.approx(29.2)
    assert x.caveats["suppressed_rows"] == int(x.df[list(bls.PCT_COLUMNS)].isna().any(axis=1).sum()) > 100
    assert "Legislators" in x.caveats["suppressed_occupations"]
    assert x.note.startswith("NOTE") and "do not sum" in x.note
    assert "2018 Census" in x.caveats["classification"]
    assert len(x.detailed(0, require_published=True)) == 362


def test_clean_csv_fills_missing_level(shared_data):
    # "File Clerks" lost its level in the shared 2021/2022 CSVs (its capitalisation changed); it is filled from the totals.
    c = load_bls_table(shared_data / "bls" / "cpsaat11_2022_clean.csv")
    row = c.row("File Clerks")
    assert row["level"] == 3 and row["is_detailed"]


@pytest.mark.parametrize("year", [2020, 2021, 2022])
def test_infer_levels_reproduces_bls_tree(shared_data, year):
    import pandas as pd

    raw = pd.read_csv(shared_data / "bls" / f"cpsaat11_{year}_clean.csv")
    got = np.array(infer_levels(raw["total_employed_thousands"]))
    known = raw["tree_level_2020"].notna().to_numpy()
    assert (got[known] == raw["tree_level_2020"].to_numpy()[known]).all()


@pytest.mark.parametrize("indent", [False, True])
def test_synthetic_official_layout(tmp_path, indent):
    t = load_bls_table(write_official(tmp_path / "t.xlsx", indent=indent))
    assert t.year == 2022 and len(t) == len(SYNTH)
    assert t.df["occupation"].tolist() == [r[0] for r in SYNTH]
    assert t.df["level"].tolist() == [r[7] for r in SYNTH]
    assert t.df["is_detailed"].tolist() == [False, False, True, True, True, False, True, True]
    assert t.row("Gadget designers")["pct_asian"] == 8.5
    ins = t.row("Gadget inspectors")
    assert ins["total_employed_thousands"] == 40 and all(math.isnan(ins[k]) for k in bls.PCT_COLUMNS)
    assert t.caveats["suppressed_occupations"] == ["Gadget inspectors"]
    assert t.note == NOTE
    assert t.total["pct_women"] == 47.0
    assert t.detailed(150)["occupation"].tolist() == ["Widget makers", "Widget testers", "Gadget designers"]


def test_infer_levels_resolves_a_leaf_that_looks_like_a_heading():
    # "a1" (30) is a leaf although its next siblings sum to 30; only the parent's own sum (60) tells.
    totals = [100, 60, 30, 20, 10, 40]
    assert infer_levels(totals) == [0, 1, 2, 2, 2, 1]
    # Rounding: children may miss the heading by up to half a thousand each.
    assert infer_levels([101, 50, 50]) == [0, 1, 1]
    assert infer_levels([5, 3, 9]) == [0, 0, 0]  # no total row: a flat list of occupations


def test_wrong_layouts_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="expected BLS CPS Table 11"):
        load_bls_table(write_official(tmp_path / "a.xlsx", title=False))
    with pytest.raises(ValueError, match="header column 'women' not found"):
        load_bls_table(write_official(tmp_path / "b.xlsx", header_women="Men"))
    bad = [SYNTH[0], ("Widgets", 10, "n/a", 1, 1, 1, 1, 1)]
    with pytest.raises(ValueError, match="expected a number or '–'"):
        load_bls_table(write_official(tmp_path / "c.xlsx", rows=bad))
    (tmp_path / "d.csv").write_text("job,share\nnurse,90\n")
    with pytest.raises(ValueError, match="CSV columns .* missing"):
        load_bls_table(tmp_path / "d.csv")
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(ValueError, match="suffix"):
        load_bls_table(tmp_path / "e.json")
    with pytest.raises(MissingPathError, match="no file at .*missing.xlsx"):  # a typo is an error, named
        load_bls_table(tmp_path / "missing.xlsx")


def test_year_uses_cache_then_download(tmp_path, monkeypatch):
    # 2021: a year with no packaged copy (2022's is tested in test_occupation_packaged.py)
    src = write_official(tmp_path / "src.xlsx", year=2021)
    seen = []

    class Response:
        def __init__(self, data):
            self.data = data

        def read(self):
            return self.data

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def fake_urlopen(request, timeout=None):
        seen.append((request.full_url, request.get_header("User-agent")))
        return Response(src.read_bytes())

    monkeypatch.setattr(bls.urllib.request, "urlopen", fake_urlopen)
    t = load_bls_table(2021, cache_dir=tmp_path / "cache")
    assert t.year == 2021 and (tmp_path / "cache" / "cpsaat11_2021.xlsx").exists()
    assert seen == [("https://www.bls.gov/cps/aa2021/cpsaat11.xlsx", bls.user_agent())]
    assert "fairalign" in seen[0][1]  # bls.gov refuses anonymous clients
    load_bls_table("2021", cache_dir=tmp_path / "cache")  # second call: from the cache
    assert len(seen) == 1


def test_offline_download_error_says_where_to_get_the_file(tmp_path, monkeypatch):
    def offline(request, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(bls.urllib.request, "urlopen", offline)
    with pytest.raises(ValueError, match=r"bls\.gov/cps/aa2019/cpsaat11\.xlsx.*pass its path"):
        load_bls_table(2019, cache_dir=tmp_path)
