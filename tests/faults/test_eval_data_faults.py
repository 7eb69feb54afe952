"""Fault injection for the evaluations' data and settings (issue 15, "no silent wrong results"): every input that
used to give a quietly wrong number, a bare traceback or an error only after the model loaded is now an
InputError naming the file, the row (line) and the field, raised before any model loads.

- BLS Table 11: fractions for percentages (CSV, xlsx, DataFrame), > 100, negative, NaN / inf / text in a number
  cell, a missing or negative total, race shares that cannot add up; the real shared tables still load with the
  numbers they always had; the legitimate "–" / blank cells still read as suppressed.
- BBNLI: an empty, header-only or column-less CSV, a non-UTF-8 file, a bad row, a broken template JSON and a
  mistyped path, all reported by `fairalign eval bbnli` before the predictor is built.
- Toxicity prompts: an empty or blank JSONL, non-UTF-8 JSONL / TXT, a corrupt line (named with its number).
- The CLIs: a path or setting error is one line on stderr and exit code 2; the output folder is held while the
  run writes, and a second run on it refuses before loading a model.
- Every numeric field of the evaluation settings dataclasses: NaN, inf, negative and a bool are refused, naming
  Class.field (the fields are read from dataclasses.fields, so a new field is covered).
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing

import pandas as pd
import pytest

from fairalign.align.errors import InputError, MissingPathError
from fairalign.eval.bbnli.data import COLUMNS as BBNLI_COLUMNS
from fairalign.eval.bbnli.data import BBNLIDataset, BBNLIExample, load_bbnli
from fairalign.eval.occupation.bls import CSV_COLUMNS, PCT_COLUMNS, BLSTable, load_bls_table
from fairalign.eval.toxicity.data import load_prompts
from fairalign.scripts.cli import main as cli

# occupation, total (thousands), % women, White, Black, Asian, Hispanic; "–" = not published (base < 50,000)
TOY = [
    ("Total, 16 years and over", 1000, 46.8, 75.0, 15.0, 10.0, 20.0),
    ("Registered nurses", 300, 87.9, 70.0, 20.0, 10.0, 10.0),
    ("Software developers", 500, 20.0, 60.0, 10.0, 30.0, 10.0),
    ("Cashiers", 190, 70.0, 50.0, 30.0, 20.0, 40.0),
    ("Lamplighters", 10, "–", "–", "–", "–", "–"),
]
FRACTION_MESSAGE = r"column pct_women is between 0 and 1.*fractions, not percentages.*multiply the column by 100"


def write_csv(path, rows=TOY):
    lines = [",".join(CSV_COLUMNS)]
    for name, *numbers in rows:
        lines.append(",".join([f'"{name}"', *("" if v == "–" else str(v) for v in numbers)]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_xlsx(path, rows=TOY, year=2022):
    """The layout bls.gov publishes: title rows, header rows, a spacer, rows, a NOTE. Data starts at sheet row 8."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["HOUSEHOLD DATA\nANNUAL AVERAGES\n11. Employed persons by detailed occupation, sex, race, and Hispanic "
               "or Latino ethnicity"])
    ws.append(["[Numbers in thousands]"])
    ws.append([])
    ws.append(["Occupation", year])
    ws.append([None, "Total\nemployed", "Percent of total employed"])
    ws.append([None, None, "Women", "White", "Black or\nAfrican\nAmerican", "Asian", "Hispanic\nor Latino"])
    ws.append([])
    for row in rows:
        ws.append(list(row))
    ws.append([])
    ws.append(["NOTE: Estimates for the above race groups do not sum to totals because data are not presented for all races."])
    wb.save(path)
    return path


def as_fractions(rows, columns=range(2, 7)):
    return [tuple(v / 100 if i in columns and v != "–" else v for i, v in enumerate(r)) for r in rows]


def with_cell(row_index: int, column: str, value, rows=TOY):
    """TOY with one cell replaced; column is a CSV_COLUMNS name."""
    out = [list(r) for r in rows]
    out[row_index][CSV_COLUMNS.index(column)] = value
    return [tuple(r) for r in out]


# ------------------------------------------------------------------------------------------------ BLS table
def test_legitimate_tables_still_load(tmp_path):
    for table in (load_bls_table(write_csv(tmp_path / "t.csv")), load_bls_table(write_xlsx(tmp_path / "t.xlsx"))):
        assert table.row("Registered nurses")["pct_women"] == 87.9
        lamp = table.row("Lamplighters")  # "–" / blank: not published, NaN (never 0), and no error
        assert lamp["total_employed_thousands"] == 10 and all(math.isnan(lamp[c]) for c in PCT_COLUMNS)


@pytest.mark.parametrize("columns", [range(2, 7), [2]], ids=["all-columns", "women-only"])
def test_fraction_percentages_csv(tmp_path, columns):
    path = write_csv(tmp_path / "fractions.csv", as_fractions(TOY, columns))
    with pytest.raises(InputError, match=FRACTION_MESSAGE) as err:
        load_bls_table(path)
    assert "fractions.csv" in str(err.value)


def test_fraction_percentages_xlsx(tmp_path):
    with pytest.raises(InputError, match=FRACTION_MESSAGE) as err:
        load_bls_table(write_xlsx(tmp_path / "fractions.xlsx", as_fractions(TOY)))
    assert "fractions.xlsx" in str(err.value)


def test_fraction_percentages_in_a_dataframe():
    df = pd.DataFrame(as_fractions(TOY[:4]), columns=CSV_COLUMNS)
    with pytest.raises(InputError, match=FRACTION_MESSAGE):
        BLSTable(df=df, year=2022, source="my DataFrame")


def test_shared_2022_table_as_fractions_xlsx(tmp_path, shared_data):
    """The real 2022 table written in the official layout with every percentage divided by 100."""
    df = pd.read_csv(shared_data / "bls" / "cpsaat11_2022_clean.csv")
    rows = [(r.occupation, r.total_employed_thousands, *("–" if pd.isna(v) else v / 100 for v in
                                                          (getattr(r, c) for c in PCT_COLUMNS))) for r in df.itertuples()]
    with pytest.raises(InputError, match=FRACTION_MESSAGE):
        load_bls_table(write_xlsx(tmp_path / "cpsaat11_fractions.xlsx", rows))


# (row of TOY, column, value written, message); the CSV line is row + 2 (header = line 1)
BAD_CELLS = [
    (1, "pct_women", 146.8, r"146.8 is not a percentage in \[0, 100\]"),
    (2, "pct_asian", -3.0, r"-3.0 is not a percentage in \[0, 100\]"),
    (3, "pct_white", "nan", r"expected a number"),
    (3, "pct_white", "inf", r"expected a number"),
    (2, "pct_black_or_african_american", "n/a", r"expected a number"),
    (1, "pct_hispanic_or_latino", "twelve", r"expected a number"),
    (2, "total_employed_thousands", -500, r"number employed \(thousands\) is -500"),
    (2, "total_employed_thousands", "–", r"number employed \(thousands\) is missing"),
]


# (writer, how the error names the place, offset of toy row 0 in the file). openpyxl cannot write an inf cell.
LAYOUTS = {"csv": (write_csv, "line", 2), "xlsx": (write_xlsx, "row", 8)}
CELL_CASES = [(layout, *b) for layout in LAYOUTS for b in BAD_CELLS if not (layout == "xlsx" and b[2] == "inf")]


@pytest.mark.parametrize("layout, row, column, value, message", CELL_CASES,
                         ids=[f"{layout}-{c}={v}" for layout, _, c, v, _ in CELL_CASES])
def test_bad_cell_names_line_or_row_occupation_and_column(tmp_path, layout, row, column, value, message):
    write, place, offset = LAYOUTS[layout]
    path = write(tmp_path / f"bad.{layout}", with_cell(row, column, value))
    with pytest.raises(InputError, match=message) as err:
        load_bls_table(path)
    text = str(err.value)
    assert f"bad.{layout}" in text and f"{place} {row + offset}" in text and TOY[row][0] in text and column in text


def test_race_shares_above_100_beyond_rounding(tmp_path):
    rows = with_cell(2, "pct_white", 75.0)  # 75 + 10 + 30 = 115: the three race groups do not overlap
    with pytest.raises(InputError, match=r"line 4 \('Software developers'\).*= 115.0 %"):
        load_bls_table(write_csv(tmp_path / "race.csv", rows))
    # Rounding (each figure to 0.1) may push the sum to 100.1 (the shared 2021 table has one); Hispanic overlaps
    # every race and is in no sum.
    ok = with_cell(2, "pct_white", 60.1)
    ok = with_cell(2, "pct_hispanic_or_latino", 95.0, ok)
    assert load_bls_table(write_csv(tmp_path / "ok.csv", ok)).row("Software developers")["pct_white"] == 60.1


def test_non_utf8_and_empty_bls_csv(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(write_csv(tmp_path / "x.csv").read_bytes().replace(b"Cashiers", "Caissi\u00e8res".encode("latin-1")))
    with pytest.raises(InputError, match=r"latin1.csv is not UTF-8 text: line 5"):
        load_bls_table(path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_bls_table(tmp_path / "empty.csv")


SHARED = {  # rows, year, column sums, rows with a suppressed percentage, detailed published rows
    "cpsaat11_2020_clean.csv": (595, 2020, [654813.0, 17744.0, 30193.8, 4620.4, 2562.8, 6415.4], 208, 357),
    "cpsaat11_2021_clean.csv": (595, 2021, [675062.0, 17771.5, 29858.6, 4632.4, 2504.3, 6491.6], 211, 354),
    "cpsaat11_2022_clean.csv": (595, 2022, [701259.0, 17801.4, 30427.7, 4719.2, 2589.1, 6868.0], 203, 362),
    "cpsaat11_2022_official_format.xlsx": (595, 2022, [701259.0, 17801.4, 30427.7, 4719.2, 2589.1, 6868.0], 203, 362),
}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_tables_load_with_the_same_numbers(shared_data, name):
    """No regression: the real tables pass the checks and give the numbers the loader gave before them."""
    rows, year, sums, suppressed, detailed = SHARED[name]
    table = load_bls_table(shared_data / "bls" / name)
    got = [round(float(table.df[c].sum()), 1) for c in ["total_employed_thousands", *PCT_COLUMNS]]
    assert (len(table), table.year, got) == (rows, year, sums)
    assert table.caveats["suppressed_rows"] == suppressed and len(table.detailed(0, True)) == detailed


# ---------------------------------------------------------------------------------------------------- BBNLI
def bbnli_rows():
    """Two invented rows (not BBNLI's text, which stays out of the repository)."""
    common = dict(domain="gender", name="toy_topic", id="00", type="pro", unique_id="toy_topic_pro_00",
                  premise="The committee met on Tuesday to plan the fair.")
    return [BBNLIExample(**common, hypothesis_type="test", hypothesis="The committee met.", question="Did it meet?",
                         true_label=2, bias_label=-1),
            BBNLIExample(**common, hypothesis_type="stereotypical", hypothesis="Tuesday is a bad day.",
                         question="Is Tuesday bad?", true_label=1, bias_label=2)]


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model (or building a BBNLI predictor) fails the test: errors must come before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input error was reported")

    monkeypatch.setattr("fairalign.align.modeling.load_model_and_tokenizer", refuse)
    monkeypatch.setattr("fairalign.scripts.eval_bbnli.build_predictor", refuse)


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"fairalign {command}: error: "), err
    assert "ValueError:" not in err and "Traceback" not in err, err  # an InputError's own message, not a fallback
    return err


BBNLI_HEADER = ",".join(BBNLI_COLUMNS)


@pytest.mark.parametrize("text, message", [
    ("", r"is empty"),
    (BBNLI_HEADER + "\n", r"has a header but no rows"),
    ("domain,name,premise\ngender,toy,Some premise.\n", r"missing column\(s\) \['id', 'type', 'hypothesis_type'"),
], ids=["empty", "header-only", "missing-columns"])
def test_bbnli_csv_reported_before_the_model_loads(tmp_path, capsys, no_model, text, message):
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_bbnli(path)
    assert cli(["eval", "bbnli", "--predictor", "unused", "--data", str(path), "--out-dir", str(tmp_path / "o")]) == 2
    assert "data.csv" in one_error_line(capsys, "eval bbnli")
    assert not (tmp_path / "o").exists()  # nothing written, not even the output folder


def test_bbnli_non_utf8_bad_row_and_broken_template_are_named(tmp_path, capsys, no_model):
    good = BBNLIDataset(bbnli_rows()).to_csv(tmp_path / "good.csv").read_text(encoding="utf-8")
    (tmp_path / "latin1.csv").write_bytes(good.replace("Tuesday to", "mardi \u00e0").encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.csv is not UTF-8 text: line 2"):
        load_bbnli(tmp_path / "latin1.csv")
    (tmp_path / "row.csv").write_text(good.replace(",stereotypical,", ",stereo,"))
    with pytest.raises(InputError, match=r"row.csv line 3: .*hypothesis_type must be one of"):
        load_bbnli(tmp_path / "row.csv")
    folder = tmp_path / "templates" / "gender"
    folder.mkdir(parents=True)
    (folder / "toy.json").write_text('{\n  "premise": ["A premise."],\n  "GROUP1": ["a"]\n  "GROUP2": ["b"]\n}\n')
    with pytest.raises(InputError, match=r"toy.json: line 4, column 3: not valid JSON"):
        load_bbnli(tmp_path / "templates")
    assert cli(["eval", "bbnli", "--predictor", "unused", "--data", str(tmp_path / "row.csv"),
                "--out-dir", str(tmp_path / "o")]) == 2
    assert "row.csv line 3" in one_error_line(capsys, "eval bbnli")


@pytest.mark.parametrize("flags, message", [
    (["--data", "./bbnli_typo"], r"BBNLI data not found at './bbnli_typo' \(it does not exist\)"),
    (["--data", "{good}", "--max-premises-per-subtopic", "0"], r"--max-premises-per-subtopic=0 is out of range"),
    (["--data", "{good}", "--num-resamples", "0"], r"--num-resamples: BootstrapSettings.num_resamples=0"),
    (["--data", "{good}", "--kind", "judge", "--num-samples", "0"], r"--num-samples: GenerationSettings.num_samples=0"),
    (["--data", "{good}", "--kind", "judge", "--form", "qa", "--templates", "nope"], r"unknown qa template"),
], ids=["path-typo", "max-premises-0", "num-resamples-0", "num-samples-0", "unknown-template"])
def test_bbnli_cli_flag_errors_before_the_model_loads(tmp_path, capsys, no_model, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    good = str(BBNLIDataset(bbnli_rows()).to_csv(tmp_path / "good.csv"))
    argv = ["eval", "bbnli", "--predictor", "unused", "--out-dir", str(tmp_path / "o"), *(f.format(good=good) for f in flags)]
    assert cli(argv) == 2
    assert __import__("re").search(message, one_error_line(capsys, "eval bbnli"))


# ------------------------------------------------------------------------------------------ toxicity prompts
@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["empty", "blank-lines"])
def test_empty_prompts_file(tmp_path, content):
    (tmp_path / "p.jsonl").write_text(content)
    with pytest.raises(InputError, match=r"p.jsonl has no prompts"):
        load_prompts(tmp_path / "p.jsonl")


@pytest.mark.parametrize("suffix", [".jsonl", ".txt"])
def test_non_utf8_prompts_file(tmp_path, suffix):
    lines = ['{"prompt": "first"}', '{"prompt": "caf\u00e9 au lait"}'] if suffix == ".jsonl" else ["first", "caf\u00e9"]
    path = tmp_path / f"p{suffix}"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(InputError, match=rf"p\{suffix} is not UTF-8 text: line 2"):
        load_prompts(path)


@pytest.mark.parametrize("bad_line, message", [
    ('{"prompt": "half-writ', r"p.jsonl:4 is not valid JSON"),
    ("[1, 2]", r"p.jsonl:4 is a list"),
    ('{"question": "?"}', r"p.jsonl:4 has no text field"),
    ('{"prompt": "again", "id": "a"}', r"duplicate prompt_id 'a' \(.*p.jsonl:1 and .*p.jsonl:4\)"),
], ids=["truncated", "not-an-object", "no-text", "duplicate-id"])
def test_corrupt_prompt_line_is_named_with_its_number(tmp_path, bad_line, message):
    rows = ['{"prompt": "one", "id": "a"}', '{"prompt": "two"}', "", bad_line]
    (tmp_path / "p.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=message):
        load_prompts(tmp_path / "p.jsonl")


def test_missing_prompts_path(tmp_path):
    with pytest.raises(MissingPathError, match="does not exist"):
        load_prompts(tmp_path / "typo.jsonl")


# ----------------------------------------------------------------------------------------- occupation CLI
def test_occupation_cli_path_and_data_errors_before_the_model_loads(tmp_path, capsys, no_model):
    out = str(tmp_path / "o")
    assert cli(["eval", "occupation", "--bls", str(tmp_path / "typo.csv"), "--out", out]) == 2
    assert "no file at" in one_error_line(capsys, "eval occupation")
    fractions = write_csv(tmp_path / "fractions.csv", as_fractions(TOY))
    assert cli(["eval", "occupation", "--bls", str(fractions), "--out", out]) == 2
    assert "multiply the column by 100" in one_error_line(capsys, "eval occupation")
    good = str(write_csv(tmp_path / "good.csv"))
    for flags, message in ((["--temperature", "nan"], "--temperature: OccupationEvalConfig.temperature=nan"),
                           (["--top-p", "1.5"], "--top-p: OccupationEvalConfig.top_p=1.5 is out of range"),
                           (["--min-employment", "-1"], "--min-employment: OccupationEvalConfig.min_employment_thousands=-1"),
                           (["--batch-size", "0"], "--batch-size=0 is out of range"),
                           (["--occupations", "astronaut"], "matches no BLS occupation")):
        assert cli(["eval", "occupation", "--bls", good, "--out", out, *flags]) == 2
        assert message in one_error_line(capsys, "eval occupation")
    assert not (tmp_path / "o").exists()


def hold_elsewhere(folder):
    """Lock `folder` as another run would (a separate open file: flock conflicts even within one process)."""
    fcntl = pytest.importorskip("fcntl")  # POSIX; the lock itself also works on Windows (msvcrt)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".fairalign.lock", "a+")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(json.dumps({"pid": 4242, "host": "elsewhere", "command": "fairalign eval (other run)", "started": "now"}))
    handle.flush()
    return handle


def is_held(folder) -> bool:
    fcntl = pytest.importorskip("fcntl")
    with open(folder / ".fairalign.lock", "a+") as probe:
        try:
            fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(probe.fileno(), fcntl.LOCK_UN)
        return False


@pytest.mark.parametrize("command", ["occupation", "bbnli"])
def test_output_folder_of_a_running_evaluation_is_refused(tmp_path, capsys, no_model, command):
    out = tmp_path / "out"
    handle = hold_elsewhere(out)
    try:
        data = (["--bls", str(write_csv(tmp_path / "t.csv"))] if command == "occupation"
                else ["--predictor", "unused", "--data", str(BBNLIDataset(bbnli_rows()).to_csv(tmp_path / "b.csv"))])
        assert cli(["eval", command, *data, "--out", str(out)]) == 2
        assert "in use by another fairalign run: pid 4242 on elsewhere" in one_error_line(capsys, f"eval {command}")
    finally:
        handle.close()


def test_bbnli_cli_holds_its_folder_while_it_writes(tmp_path, monkeypatch):
    out = tmp_path / "out"
    seen = []

    def predictor_checking_the_lock(args):
        seen.append(is_held(out))
        return lambda premises, hypotheses: [1] * len(premises)

    monkeypatch.setattr("fairalign.scripts.eval_bbnli.build_predictor", predictor_checking_the_lock)
    data = BBNLIDataset(bbnli_rows()).to_csv(tmp_path / "b.csv")
    assert cli(["eval", "bbnli", "--predictor", "x", "--data", str(data), "--out", str(out), "--num-resamples", "5"]) == 0
    assert seen == [True] and (out / "bbnli.json").exists() and not is_held(out)


def test_occupation_cli_holds_its_folder_while_it_writes(tmp_path, monkeypatch):
    from fairalign.eval.lm import CallableLM

    out = tmp_path / "out"
    seen = []

    def loader_checking_the_lock(*args, **kwargs):
        seen.append(is_held(out))
        return None, None

    # No real model: the CLI's HFLM becomes a scripted one (the lock, not the model, is under test).
    monkeypatch.setattr("fairalign.align.modeling.load_model_and_tokenizer", loader_checking_the_lock)
    monkeypatch.setattr("fairalign.eval.lm.HFLM", lambda *a, **k: CallableLM(lambda prompts: [" She"] * len(prompts)))
    assert cli(["eval", "occupation", "--bls", str(write_csv(tmp_path / "t.csv")), "--out", str(out),
                "--templates", "gender_question", "--directions", "o2d", "--scoring", "generate", "--num-samples", "1",
                "--max-new-tokens", "2", "--num-resamples", "5"]) == 0
    assert seen == [True] and (out / "occupation.json").exists() and not is_held(out)


# ------------------------------------------------------------------------------------------ numeric settings
def _settings_classes():
    from fairalign.eval.bbnli.evaluate import BootstrapSettings
    from fairalign.eval.bbnli.judge import GenerationSettings
    from fairalign.eval.occupation.debias import BLSContext
    from fairalign.eval.occupation.evaluate import OccupationEvalConfig

    return [OccupationEvalConfig, BootstrapSettings, GenerationSettings, BLSContext]


def _numeric_fields(cls) -> list[str]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        if any(a in (int, float) for a in args):
            out.append(f.name)
    return out


NUMERIC = [(cls, name) for cls in _settings_classes() for name in _numeric_fields(cls)]


def _build(cls, **kwargs):
    if cls.__name__ == "BLSContext":
        table = BLSTable(df=pd.DataFrame(TOY[:4], columns=CSV_COLUMNS).assign(level=[0, 1, 1, 1], is_detailed=[False, True, True, True]),
                         year=2022, source="toy")
        return cls(table, **({"k": 1} | kwargs))
    return cls(**kwargs)


def test_every_settings_class_has_numeric_fields_and_builds_with_defaults():
    assert {cls.__name__ for cls, _ in NUMERIC} == {c.__name__ for c in _settings_classes()}
    for cls in _settings_classes():
        _build(cls)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1, True], ids=["nan", "inf", "-inf", "negative", "bool"])
@pytest.mark.parametrize("cls, name", NUMERIC, ids=[f"{c.__name__}.{n}" for c, n in NUMERIC])
def test_numeric_setting_refused_naming_the_field(cls, name, bad):
    with pytest.raises(InputError, match=rf"{cls.__name__}\.{name}="):
        _build(cls, **{name: bad})


def test_settings_reach_the_evaluations():
    """The checks hold where the settings are used, not only in the dataclasses."""
    from fairalign.eval.bbnli.evaluate import evaluate_nli_bias
    from fairalign.eval.bbnli.judge import GenerativeJudgePredictor
    from fairalign.eval.occupation import evaluate_occupational_bias

    data = BBNLIDataset(bbnli_rows())
    with pytest.raises(InputError, match=r"BootstrapSettings.num_resamples=nan"):
        evaluate_nli_bias(lambda p, h: [1] * len(p), data, num_resamples=math.nan)
    with pytest.raises(InputError, match=r"GenerationSettings.temperature=nan"):
        GenerativeJudgePredictor(lambda prompts: prompts, scoring="generate", temperature=math.nan)
    with pytest.raises(InputError, match=r"OccupationEvalConfig.num_samples=inf"):
        evaluate_occupational_bias(lambda prompts: prompts, None, num_samples=math.inf)
