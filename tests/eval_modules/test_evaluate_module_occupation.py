"""fairalign_occupation: the numbers of the occupation suite for the same shares, per dimension and scoring;
add_batch; clear input errors."""
import math
import zlib

import pytest

from fairalign.eval.lm import LM
from fairalign.eval.occupation import evaluate_occupational_bias, load_bls_table
from fairalign.eval.occupation import metrics as M

CATEGORY_METRICS = ("mae_pp", "signed_error_pp", "spearman", "amplification_pp", "amplification_slope")


class HashLM(LM):
    """Deterministic pseudo-random answers and log-likelihoods: both scorings of the suite, no model."""

    name = "hash"
    WORDS = ["a woman", "a man", "White", "Black", "Asian", "Hispanic", "not Hispanic", "I cannot say"]

    def loglikelihood(self, requests):
        return [-(zlib.crc32(f"{c}|{x}".encode()) % 997) / 150.0 for c, x in requests]

    def generate(self, prompts, num_samples=1, **_):
        return [[self.WORDS[zlib.crc32(f"{p}#{k}".encode()) % len(self.WORDS)] for k in range(num_samples)] for p in prompts]


def _module_inputs(rows, cats):
    return {"occupation": [r["occupation"] for r in rows],
            **{f"model_{c}": [None if math.isnan(r[f"model_{c}"]) else r[f"model_{c}"] for r in rows] for c in cats}}


def _assert_same_as_suite(got, suite_metrics, categories):
    for c in categories:
        for m in CATEGORY_METRICS:
            est = suite_metrics[c][m]
            assert (got[f"{c}_{m}"], got[f"{c}_{m}_ci_low"], got[f"{c}_{m}_ci_high"]) == (est.value, est.low, est.high), (c, m)
    for m in ("tvd_pp", "jsd_bits"):
        est = suite_metrics["all"][m]
        assert (got[m], got[f"{m}_ci_low"], got[f"{m}_ci_high"]) == (est.value, est.low, est.high), m


def test_same_numbers_as_the_suite_every_dimension_and_scoring(load_module, shared_data):
    bls = shared_data / "bls" / "cpsaat11_2022_clean.csv"
    result = evaluate_occupational_bias(HashLM(), bls, directions=("o2d",), scoring="both", max_occupations=25,
                                        num_samples=3, num_resamples=200, seed=3)
    task_dims = {"gender": ["woman", "man"], "race": ["white", "black", "asian"], "ethnicity": ["hispanic", "not_hispanic"]}
    checked = 0
    for method, dims in result.conditions["baseline"]["o2d"].items():
        for dim, res in dims.items():
            module = load_module("occupation", config_name=dim)
            got = module.compute(**_module_inputs(res["per_occupation"], task_dims[dim]), bls_table=str(bls),
                                 num_resamples=200, seed=3)
            interest = [c for c in task_dims[dim] if c in res["metrics"]]
            _assert_same_as_suite(got, res["metrics"], interest)
            assert got["num_occupations"] == 25 and got["num_occupations_scored"] == res["occupations_scored"]
            assert got["dimension"] == dim and got["bls_year"] == 2022
            checked += 1
    assert checked == 6  # 2 scorings x 3 dimensions
    # the generate path leaves some occupations without a valid answer: they are dropped, as in the suite
    gen = result.conditions["baseline"]["o2d"]["generate"]["race"]
    assert gen["occupations_scored"] <= 25


def _toy_expected(m_woman, bls_woman, pivot, num_resamples=1000, seed=0):
    est = M.category_metrics(m_woman, bls_woman, pivot, num_resamples, seed)
    dist = M.distribution_metrics([[w, 100 - w] for w in m_woman], [[b, 100 - b] for b in bls_woman], num_resamples, seed)
    return est, dist


def test_by_hand_on_the_toy_table(load_module, toy_bls_csv):
    # names resolve like the suite: singular, plural or the BLS row name, any case
    got = load_module("occupation").compute(occupation=["nurse", "Software developers", "cashiers"],
                                            model_woman=[95.0, 10.0, 70.0], model_man=[5.0, 90.0, 30.0],
                                            bls_table=toy_bls_csv)
    assert got["woman_mae_pp"] == pytest.approx((5 + 10 + 0) / 3)
    assert got["woman_signed_error_pp"] == pytest.approx((5 - 10 + 0) / 3)
    assert got["woman_amplification_pp"] == pytest.approx((5 + 10 + 0) / 3)  # every error leans the BLS way
    assert got["woman_spearman"] == pytest.approx(1.0)
    assert got["woman_bls_all_occupations_pp"] == 50.0 and got["bls_source"] == str(toy_bls_csv)
    est, dist = _toy_expected([95.0, 10.0, 70.0], [90.0, 20.0, 70.0], 50.0)
    _assert_same_as_suite(got, {"woman": est, "all": dist}, ["woman"])


def test_add_batch_and_add_equal_one_compute(load_module, toy_bls_csv):
    module = load_module("occupation", config_name="gender")
    module.add_batch(occupation=["Registered nurses", "Cashiers"], model_woman=[80.0, 75.0], model_man=[20.0, 25.0])
    module.add(occupation="Janitors and building cleaners", model_woman=None, model_man=None)  # not scored
    module.add_batch(occupation=["Software developers"], model_woman=[33.0], model_man=[67.0])
    got = module.compute(bls_table=str(toy_bls_csv), num_resamples=200, seed=1)
    est, dist = _toy_expected([80.0, 75.0, 33.0], [90.0, 70.0, 20.0], 50.0, 200, 1)
    _assert_same_as_suite(got, {"woman": est, "all": dist}, ["woman"])
    assert got["num_occupations"] == 4 and got["num_occupations_scored"] == 3


def test_race_shares_renormalised_like_the_suite(load_module, toy_bls_csv):
    got = load_module("occupation", config_name="race").compute(
        occupation=["Registered nurses", "Software developers", "Cashiers"], model_white=[60.0, 50.0, 40.0],
        model_black=[30.0, 10.0, 40.0], model_asian=[10.0, 40.0, 20.0], bls_table=load_bls_table(toy_bls_csv))
    # BLS race shares are renormalised over White + Black + Asian (Cashiers: 50/30/20 of 100 already)
    assert got["white_bls_all_occupations_pp"] == pytest.approx(75.0)
    assert got["asian_mae_pp"] == pytest.approx((0 + 10 + 0) / 3)
    assert {"white_mae_pp", "black_spearman", "asian_amplification_slope", "tvd_pp", "jsd_bits"} <= set(got)


@pytest.mark.parametrize("kwargs, match", [
    ({"model_woman": [0.9, 0.2], "model_man": [0.1, 0.8]}, r"must be percentages in \[0, 100\] summing to 100.*multiply fractions by 100"),
    ({"model_woman": [90.0, None], "model_man": [10.0, 80.0]}, r"mixes shares and None"),
    ({"model_woman": [90.0, "x"], "model_man": [10.0, 80.0]}, r"model_woman\[1\] is 'x'; expected a number"),
    ({"model_woman": [90.0, 20.0]}, r"model_man is missing"),
    ({"model_woman": [90.0, 20.0], "model_man": [10.0, 80.0], "model_white": [1.0, 2.0]},
     r"unknown compute\(\) option\(s\) \['model_white'\]; this module's inputs are \['occupation', 'model_woman', 'model_man'\]"),
])
def test_bad_shares_are_clear_errors(load_module, toy_bls_csv, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_module("occupation").compute(occupation=["Registered nurses", "Cashiers"], bls_table=toy_bls_csv, **kwargs)


@pytest.mark.parametrize("occupations, options, match", [
    (["Astronauts", "Cashiers"], {}, r"'Astronauts' matches no BLS occupation; use the exact BLS row name"),
    (["nurse", "Registered nurses"], {}, r"'nurse' and 'Registered nurses' are both the BLS row 'Registered nurses'"),
    (["Cashiers", "nurse"], {"bls_table": None}, r"bls_table is missing"),
    (["Cashiers", "nurse"], {"bls_table": "/nonexistent/cpsaat11.csv"}, r"bls_table: no file at"),
    (["Cashiers", "nurse"], {"dimension": "race"}, r"unknown compute\(\) option\(s\) \['dimension'\]"),
])
def test_bad_occupations_and_options_are_clear_errors(load_module, toy_bls_csv, occupations, options, match):
    options = {"bls_table": toy_bls_csv, **options}
    with pytest.raises(ValueError, match=match):
        load_module("occupation").compute(occupation=occupations, model_woman=[50.0, 50.0], model_man=[50.0, 50.0], **options)


def test_unknown_dimension_is_a_clear_error(load_module):
    with pytest.raises(ValueError, match=r"config_name 'age' is not a dimension; use one of \['gender', 'race', 'ethnicity'\]"):
        load_module("occupation", config_name="age")
