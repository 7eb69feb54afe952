"""Dataset mixtures (align/mixtures.py) against TRL's own get_dataset, on local files TRL can load as
`path: json` + `data_files`; fairalign also takes the bare file path."""
import json
import math

import datasets
import pytest
import trl
from trl.scripts.utils import DatasetConfig

from fairalign.align.errors import InputError
from fairalign.align.mixtures import check_mixture_entries, load_dataset_dict, load_mixture, mixture_sizes

SIZES = {"a": 10, "b": 4, "c": 7}


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, n in SIZES.items():
        rows = [{"prompt": f"{name}-{i}", "chosen": f" yes {i}", "rejected": f" no {i}", "source": name} for i in range(n)]
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def _ours(files, names, **entry_and_mixture):
    mixture_keys = {k: entry_and_mixture.pop(k) for k in ("test_split_size",) if k in entry_and_mixture}
    entries = [DatasetConfig(path=str(files[n]), **{k: v[i] if isinstance(v, list) and k != "columns" else v
                                                    for k, v in entry_and_mixture.items()}) for i, n in enumerate(names)]
    return load_mixture(trl.DatasetMixtureConfig(datasets=entries, **mixture_keys), seed=0)


def _trl(files, names, **entry_and_mixture):
    mixture_keys = {k: entry_and_mixture.pop(k) for k in ("test_split_size",) if k in entry_and_mixture}
    entries = [DatasetConfig(path="json", data_files=str(files[n]), **{k: v[i] if isinstance(v, list) and k != "columns" else v
                                                                       for k, v in entry_and_mixture.items()})
               for i, n in enumerate(names)]
    return trl.get_dataset(trl.DatasetMixtureConfig(datasets=entries, **mixture_keys))


@pytest.mark.parametrize("kwargs", [
    {},
    {"fraction": [0.5, 0.25, 0.25]},
    {"fraction": [3.0, 1.0, 0.0]},  # a zero share keeps no rows of that entry
    {"fraction": [1.0, 1.0, 1.0]},
    {"columns": ["prompt", "chosen"]},
    {"split": "train[:5]"},
], ids=["all-rows", "halves", "zero-share", "equal", "columns", "split-slice"])
def test_same_rows_as_trl_get_dataset(files, kwargs):
    names = ["a", "b", "c"]
    ours, theirs = _ours(files, names, **dict(kwargs)), _trl(files, names, **dict(kwargs))
    assert list(ours) == list(theirs) == ["train"]
    assert ours["train"].to_list() == theirs["train"].to_list()


def test_fraction_rule_by_hand(files):
    # shares 1/2, 1/4, 1/4 of sizes 10, 4, 7: the largest mixture with no entry oversampled is 16 rows (b caps it)
    assert mixture_sizes([10, 4, 7], [0.5, 0.25, 0.25]) == [8, 4, 4]
    assert mixture_sizes([10, 4], [3, 1]) == [10, 3]  # N = min(10 / 0.75, 4 / 0.25) = 13.3
    assert mixture_sizes([10, 4, 7], [1, 1, 0]) == [4, 4, 0]
    rows = _ours(files, ["a", "b", "c"], fraction=[0.5, 0.25, 0.25])["train"]
    assert [r["source"] for r in rows] == ["a"] * 8 + ["b"] * 4 + ["c"] * 4
    assert rows["prompt"][:8] == [f"a-{i}" for i in range(8)]  # the first rows of each entry


def test_test_split_size_matches_trl_and_is_seeded(files):
    ours = _ours(files, ["a", "b"], test_split_size=0.25)
    theirs = _trl(files, ["a", "b"], test_split_size=0.25)
    assert {k: len(v) for k, v in ours.items()} == {k: len(v) for k, v in theirs.items()} == {"train": 10, "test": 4}
    union = lambda d: sorted(r["prompt"] for split in d.values() for r in split)  # noqa: E731
    assert union(ours) == union(theirs)
    again = _ours(files, ["a", "b"], test_split_size=0.25)
    assert again["test"]["prompt"] == ours["test"]["prompt"]  # seeded: a rerun holds out the same rows
    assert len(_ours(files, ["a", "b"], test_split_size=3)["test"]) == 3  # a whole number is a row count


def test_entry_forms_fairalign_adds(files, tmp_path):
    """A bare local path, TRL's `path: json` + data_files, and a saved dataset folder give the same rows."""
    rows = datasets.load_dataset("json", data_files=str(files["b"]), split="train").to_list()
    saved = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(saved))
    for entry in (DatasetConfig(path=str(files["b"])), DatasetConfig(path="json", data_files=str(files["b"])),
                  DatasetConfig(path=str(saved))):
        assert load_mixture(trl.DatasetMixtureConfig(datasets=[entry]))["train"].to_list() == rows


def test_dataset_name_folder_has_the_splits_datasets_infers(files, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "train.jsonl").write_text(files["a"].read_text())
    (folder / "test.jsonl").write_text(files["b"].read_text())
    ours = load_dataset_dict(str(folder))
    theirs = datasets.load_dataset(str(folder))
    assert {k: v.to_list() for k, v in ours.items()} == {k: v.to_list() for k, v in theirs.items()}
    assert {k: len(v) for k, v in load_dataset_dict(str(files["c"])).items()} == {"train": 7}


# --------------------------------------------------------------------------------------------- bad mixtures
@pytest.mark.parametrize("fractions, message", [
    ([0.5, math.nan], r"datasets\[1\] \(.*b.jsonl\).fraction=nan is not a number"),
    ([-0.1, 0.5], r"datasets\[0\] \(.*a.jsonl\).fraction=-0.1 is out of range"),
    ([math.inf, 0.5], r"datasets\[0\] \(.*a.jsonl\).fraction=inf is not finite"),
    ([0.5, None], r"fraction is set for some entries but not for datasets\[1\] \(.*b.jsonl\)"),
    ([0.0, 0.0], r"every fraction is 0"),
])
def test_bad_fractions_name_the_entry(files, fractions, message):
    entries = [DatasetConfig(path=str(files[n]), fraction=f) for n, f in zip("ab", fractions)]
    with pytest.raises(InputError, match=message):
        load_mixture(trl.DatasetMixtureConfig(datasets=entries))


@pytest.mark.parametrize("mixture, message", [
    ({"test_split_size": 1.5}, r"test_split_size=1.5: a share must be in \(0, 1\)"),
    ({"test_split_size": 0.0}, r"test_split_size=0.0 is out of range"),
    ({"test_split_size": 20}, r"test_split_size=20: .*the mixture has 14 rows"),
    ({"streaming": True}, r"streaming: fairalign train needs datasets with a length"),
])
def test_bad_mixture_settings(files, mixture, message):
    entries = [DatasetConfig(path=str(files[n])) for n in "ab"]
    with pytest.raises(InputError, match=message):
        load_mixture(trl.DatasetMixtureConfig(datasets=entries, **mixture))


def test_bad_entries_name_the_entry(files, tmp_path):
    with pytest.raises(InputError, match=r"datasets\[0\] \(x.jsonl\): unknown key 'fractoin'; did you mean 'fraction'\?"):
        check_mixture_entries([{"path": "x.jsonl", "fractoin": 0.5}], "recipe.yaml")
    with pytest.raises(InputError, match=r"datasets\[0\] \(x.jsonl\): fraction='half' has type str"):
        check_mixture_entries([{"path": "x.jsonl", "fraction": "half"}], "recipe.yaml")
    with pytest.raises(InputError, match=r"datasets\[0\] \(.*a.jsonl\): columns \['answer'\] are not in the dataset"):
        load_mixture(trl.DatasetMixtureConfig(datasets=[DatasetConfig(path=str(files["a"]), columns=["answer"])]))
    narrow = [DatasetConfig(path=str(files["a"]), columns=["prompt", "chosen"]), DatasetConfig(path=str(files["b"]))]
    with pytest.raises(InputError, match=r"datasets\[1\] \(.*b.jsonl\) has columns .*the entries of a mixture need the same columns"):
        load_mixture(trl.DatasetMixtureConfig(datasets=narrow))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": \n')
    with pytest.raises(InputError, match=r"bad.jsonl:2 is not valid JSON"):
        load_mixture(trl.DatasetMixtureConfig(datasets=[DatasetConfig(path=str(bad))]))
    with pytest.raises(InputError, match=r"datasets\[0\] \(no/such.jsonl\): no/such.jsonl does not exist"):
        load_mixture(trl.DatasetMixtureConfig(datasets=[DatasetConfig(path="no/such.jsonl")]))
