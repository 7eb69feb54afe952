"""Loader: template expansion (vs the released CSV and vs a hand expansion), CSV/Hub paths, schema checks."""
import collections
import csv

import pytest

from fairalign.eval.bbnli.data import BBNLIDataset, expand_template, load_bbnli, with_variation

from bbnli_helpers import make_example

KEY = ("domain", "name", "type", "premise", "hypothesis", "hypothesis_type", "true_label", "bias_label")


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_template_expansion_reproduces_released_csv(shared_data):
    expanded = load_bbnli(shared_data / "bbnli" / "templates")
    released = _read_csv(shared_data / "bbnli" / "bbnli_expanded.csv")
    # the multiset of the NLI-relevant columns, compared against the raw CSV text (independent of our CSV reader)
    mine = collections.Counter(tuple(str(getattr(ex, k)) for k in KEY) for ex in expanded)
    theirs = collections.Counter(tuple(row[k] for k in KEY) for row in released)
    assert mine == theirs
    assert len(expanded) == len(released) == 3642
    # stronger: every column of every row, in the released order
    columns = ("domain", "name", "id", "type", "unique_id", "premise", "hypothesis_type", "hypothesis", "question",
               "true_label", "bias_label", "reference")
    assert [tuple(str(getattr(ex, c)) for c in columns) for ex in expanded] == [tuple(r[c] for c in columns) for r in released]
    # the one quirk the expansion has to reproduce: {{WORD5}} is undefined in one template and renders empty
    assert any("WORD5" in note and "jewish_woman_to_many_kids" in note for note in expanded.notes)
    assert sum("the right to  according" in ex.question for ex in expanded) == 6


def test_released_counts_and_duplicate_pairs(shared_data):
    data = load_bbnli(shared_data / "bbnli" / "bbnli_expanded.csv")
    assert collections.Counter(ex.domain for ex in data) == {"gender": 2022, "race": 948, "religion": 672}
    assert collections.Counter(ex.hypothesis_type for ex in data) == {
        "test": 1352, "stereotypical": 1145, "anti-stereotypical": 1145}
    assert len({ex.item_id for ex in data}) == len(data)  # the content id is unique per row
    # repeated NLI pairs differ only in the QA question (a filler used in the question, not the hypothesis)
    by_pair = collections.defaultdict(list)
    for ex in data:
        by_pair[tuple(getattr(ex, k) for k in KEY)].append(ex)
    repeats = [group for group in by_pair.values() if len(group) > 1]
    assert sum(len(g) - 1 for g in repeats) == 450
    assert all(len({ex.question for ex in g}) == len(g) for g in repeats)
    assert len(load_bbnli(shared_data / "bbnli" / "bbnli_expanded.csv", drop_duplicate_pairs=True)) == 3642 - 450


def test_validation_file_and_ids_agree_across_sources(shared_data):
    val = load_bbnli(shared_data / "bbnli" / "validation.csv")
    assert len(val) == 1023 and {ex.type for ex in val} == {"pro"}
    a = load_bbnli(shared_data / "bbnli" / "templates")
    b = load_bbnli(shared_data / "bbnli" / "bbnli_expanded.csv")
    assert [ex.item_id for ex in a] == [ex.item_id for ex in b]


def test_hand_expansion_of_a_small_template():
    template = {
        "premise": ["{{GROUP1}} are {{W1}}.", "Only {{GROUP2}}."],
        "test_hypothesis": [["{{GROUP1}} exist.", 2]],
        "bias_hypothesis_stereotypical": [["{{GROUP2}} are {{W1}}.", 1, 2]],
        "test_question": [["Do {{GROUP1}} exist {{W2}}?", 2]],
        "bias_question_stereotypical": [["Are {{GROUP2}} {{W1}} {{MISSING}}?", 1, 2]],
        "data": {"W1": ["a", "b"], "W2": ["x"]},
        "GROUP1": ["men"], "GROUP2": ["women"], "name": "my topic", "domain": "gender", "reference": ["r0", "r1"],
    }
    rows, notes = expand_template(template)
    got = [(r.id, r.type, r.premise, r.hypothesis_type, r.hypothesis, r.question, r.true_label, r.bias_label) for r in rows]
    expected = [
        ("00", "pro", "men are a.", "test", "men exist.", "Do men exist x?", 2, -1),
        ("00", "pro", "men are a.", "stereotypical", "women are a.", "Are women a ?", 1, 2),
        ("00", "anti", "women are a.", "test", "women exist.", "Do women exist x?", 2, -1),
        ("00", "anti", "women are a.", "anti-stereotypical", "men are a.", "Are men a ?", 1, 2),
        ("00", "pro", "men are b.", "test", "men exist.", "Do men exist x?", 2, -1),
        ("00", "pro", "men are b.", "stereotypical", "women are b.", "Are women b ?", 1, 2),
        ("00", "anti", "women are b.", "test", "women exist.", "Do women exist x?", 2, -1),
        ("00", "anti", "women are b.", "anti-stereotypical", "men are b.", "Are men b ?", 1, 2),
        # premise 01 uses no filler: the W1 = b combination repeats the W1 = a rows except for the stereotype
        # hypothesis/question, which do use W1
        ("01", "pro", "Only women.", "test", "men exist.", "Do men exist x?", 2, -1),
        ("01", "pro", "Only women.", "stereotypical", "women are a.", "Are women a ?", 1, 2),
        ("01", "anti", "Only men.", "test", "women exist.", "Do women exist x?", 2, -1),
        ("01", "anti", "Only men.", "anti-stereotypical", "men are a.", "Are men a ?", 1, 2),
        ("01", "pro", "Only women.", "stereotypical", "women are b.", "Are women b ?", 1, 2),
        ("01", "anti", "Only men.", "anti-stereotypical", "men are b.", "Are men b ?", 1, 2),
    ]
    assert got == expected
    assert {r.name for r in rows} == {"my_topic"} and rows[0].unique_id == "my_topic_pro_00"
    assert rows[-1].reference == "r1"
    assert notes and "MISSING" in notes[0]


def test_template_errors_name_the_problem():
    with pytest.raises(ValueError, match="test_question"):
        expand_template({"premise": ["p"], "test_hypothesis": [["h", 1]], "bias_hypothesis_stereotypical": [],
                         "test_question": [], "bias_question_stereotypical": [], "GROUP1": ["a"], "GROUP2": ["b"],
                         "name": "n", "domain": "d", "reference": ["r"]})
    with pytest.raises(ValueError, match="lacks the key 'GROUP2'"):
        expand_template({"premise": [], "test_hypothesis": [], "bias_hypothesis_stereotypical": [], "test_question": [],
                         "bias_question_stereotypical": [], "GROUP1": ["a"], "name": "n", "domain": "d"})


def test_csv_round_trip_and_numeric_ids(tmp_path):
    rows = [make_example(), make_example("stereotypical", true_label=1, id="03"),
            with_variation(make_example(), hypothesis="Women labour hard.", variation="lexical_hypothesis")]
    path = BBNLIDataset(rows).to_csv(tmp_path / "d.csv")
    back = load_bbnli(path)
    assert back.examples == rows and back[2].variant_of == rows[0].item_id
    # a spreadsheet that turned "03" into 3 still loads to the same row
    text = path.read_text().replace(",03,", ",3,")
    (tmp_path / "e.csv").write_text(text)
    assert load_bbnli(tmp_path / "e.csv")[1].id == "03"


def test_bad_rows_and_paths_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="true_label"):
        make_example(true_label=5)
    with pytest.raises(ValueError, match="hypothesis_type"):
        make_example(hypothesis_type="stereo")
    with pytest.raises(ValueError, match="needs a bias_label"):
        make_example("stereotypical", bias_label=-1)
    (tmp_path / "bad.csv").write_text("domain,name\nx,y\n")
    with pytest.raises(ValueError, match="missing column"):
        load_bbnli(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="template folder"):
        load_bbnli(tmp_path / "nope.csv")


def test_hub_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="offline.*local path"):
        load_bbnli("feyzaakyurek/BBNLI")


def test_subsample_keeps_whole_premises(hand_dataset):
    data, _ = hand_dataset
    sub = data.subsample(1)
    assert {ex.id for ex in sub} == {"00"} and len(sub) == sum(ex.id == "00" for ex in data)
