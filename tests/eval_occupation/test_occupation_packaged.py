"""The 2022 BLS Table 11 shipped as package data (eval/occupation/resources/): it equals the official xlsx cell for
cell, a year loads it offline, and the default selection on it is the documented one."""
import json
import math
import urllib.error

import numpy as np
import pandas as pd
import pytest

from fairalign.align.errors import InputError
from fairalign.eval.occupation import bls
from fairalign.eval.occupation.bls import PACKAGED_BLS_YEARS, load_bls_table, packaged_bls_path


def _offline(monkeypatch):
    """Any download attempt fails the test: the packaged table must need no network."""
    def urlopen(request, timeout=None):
        raise AssertionError(f"unexpected download of {request.full_url}")

    monkeypatch.setattr(bls.urllib.request, "urlopen", urlopen)


def test_packaged_table_equals_official_xlsx(shared_data):
    official = load_bls_table(shared_data / "bls" / "cpsaat11_2022_official_format.xlsx")
    packaged = load_bls_table(packaged_bls_path(2022))
    assert packaged.year == official.year == 2022
    assert packaged.df["occupation"].tolist() == official.df["occupation"].tolist()
    for col in ["total_employed_thousands", *bls.PCT_COLUMNS]:
        a, b = packaged.df[col].to_numpy(float), official.df[col].to_numpy(float)
        assert (np.isnan(a) == np.isnan(b)).all(), f"{col}: different missing cells"
        assert (a[~np.isnan(a)] == b[~np.isnan(b)]).all(), f"{col}: different numbers"
    assert packaged.df["level"].tolist() == official.df["level"].tolist()
    assert packaged.df["is_detailed"].tolist() == official.df["is_detailed"].tolist()
    pd.testing.assert_frame_equal(packaged.df, official.df, check_dtype=False, check_exact=True)
    assert packaged.note == official.note and packaged.caveats == official.caveats


def test_packaged_table_stands_alone():
    # No shared data needed: what a user's fresh install has.
    t = load_bls_table(packaged_bls_path())
    assert t.year == 2022 and len(t) == 595 and int(t.df["is_detailed"].sum()) == 565
    assert t.total["total_employed_thousands"] == 158291 and t.total["pct_women"] == 46.8
    assert t.row("Chief executives")["pct_women"] == pytest.approx(29.2)
    legislators = t.row("Legislators")  # base under 50,000: suppressed, so missing, never 0
    assert legislators["total_employed_thousands"] == 14 and all(math.isnan(legislators[c]) for c in bls.PCT_COLUMNS)
    assert t.row("Roofers")["pct_asian"] == 0.0  # a published 0.0 stays a number
    assert t.caveats["suppressed_rows"] == 203 and "2018 Census" in t.caveats["classification"]
    assert t.note.startswith("NOTE: Estimates for the above race groups") and "less than 50,000" in t.note
    # The stored is_detailed column agrees with what the loader derives from the levels.
    raw = pd.read_csv(packaged_bls_path(), keep_default_na=False)
    assert (raw["is_detailed"] == 1).tolist() == t.df["is_detailed"].tolist()
    assert list(raw.columns) == bls.COLUMNS


def test_packaged_sidecar_names_source_and_caveats():
    meta = json.loads(packaged_bls_path().with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["year"] == 2022 and meta["source_page"] == "https://www.bls.gov/cps/aa2022/cpsaat11.htm"
    assert meta["source_xlsx"] == "https://www.bls.gov/cps/aa2022/cpsaat11.xlsx"
    assert "public domain" in meta["licence"] and "0-100" in meta["units"]
    readme = (packaged_bls_path().parent / "README.md").read_text(encoding="utf-8")
    for fact in ("cpsaat11.htm", "2022 annual", "2018 Census occupation classification", "under 50,000",
                 "never 0", "0-100", "Public domain"):
        assert fact in readme, fact


def test_default_selection_on_packaged_table_is_the_documented_one():
    from fairalign.eval.occupation.evaluate import select_occupations

    assert len(select_occupations(load_bls_table(2022))) == 230  # task.yaml selection: "230 occupations selected in 2022"


@pytest.mark.parametrize("year", [2022, "2022"])
def test_year_without_download_uses_packaged_table(tmp_path, monkeypatch, year):
    _offline(monkeypatch)
    t = load_bls_table(year, cache_dir=tmp_path / "empty-cache")
    assert t.source == str(packaged_bls_path(2022)) and t.year == 2022 and len(t) == 595
    assert not (tmp_path / "empty-cache").exists()  # nothing downloaded, nothing cached


def test_cached_download_wins_over_packaged_table(tmp_path, monkeypatch):
    from test_occupation_bls import SYNTH, write_official

    _offline(monkeypatch)
    cache = tmp_path / "cache"
    cache.mkdir()
    write_official(cache / "cpsaat11_2022.xlsx")
    t = load_bls_table(2022, cache_dir=cache)
    assert t.source == str(cache / "cpsaat11_2022.xlsx") and len(t) == len(SYNTH)


def test_other_years_still_download(tmp_path, monkeypatch):
    def offline(request, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(bls.urllib.request, "urlopen", offline)
    assert 2021 not in PACKAGED_BLS_YEARS
    with pytest.raises(InputError, match=r"could not download BLS Table 11 for 2021"):
        load_bls_table(2021, cache_dir=tmp_path)


@pytest.mark.parametrize("year", [1999, 2021, "1999", None])
def test_packaged_bls_path_names_the_available_years(year):
    with pytest.raises(InputError, match=r"no packaged BLS Table 11 for .*packaged years: \[2022\]"):
        packaged_bls_path(year)
    assert packaged_bls_path("2022") == packaged_bls_path(2022) == packaged_bls_path()
