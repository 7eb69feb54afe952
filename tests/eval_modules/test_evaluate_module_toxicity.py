"""fairalign_toxicity: the same numbers as compute_toxicity_metrics, add/add_batch, and clear input errors."""
import math
import random

import numpy as np
import pytest

from fairalign.eval.toxicity.metrics import compute_toxicity_metrics


def _records(num_prompts=30, seed=0):
    """Uneven k, failed scores (None and NaN), one prompt whose every score failed, scores at the threshold."""
    rng = random.Random(seed)
    out = []
    for p in range(num_prompts):
        for _ in range(rng.randint(1, 6)):
            s = rng.random() ** 2
            out.append({"prompt_id": f"p{p}", "toxicity": rng.choice([s, s, s, 0.5, None, math.nan])})
    out += [{"prompt_id": "all-failed", "toxicity": None}] * 3
    rng.shuffle(out)  # prompts interleaved: grouping is by id, not by position
    return out


def _expected(records, **options):
    r = compute_toxicity_metrics(records, **options)
    out = {}
    for name in r.METRICS:
        est = getattr(r, name)
        out |= {name: est.value, f"{name}_ci_low": est.low, f"{name}_ci_high": est.high}
    k = r.samples_per_prompt_range
    return out | {"threshold": r.threshold, "num_prompts": r.num_prompts, "num_prompts_excluded": r.num_prompts_excluded,
                  "num_continuations": r.num_continuations, "num_scored": r.num_scored, "num_failed": r.num_failed,
                  "samples_per_prompt": r.samples_per_prompt, "samples_per_prompt_min": k[0],
                  "samples_per_prompt_max": k[1], "notes": r.notes}


def test_same_numbers_as_compute_toxicity_metrics(load_module):
    records = _records()
    got = load_module("toxicity").compute(prompt_id=[r["prompt_id"] for r in records],
                                          toxicity=[r["toxicity"] for r in records])
    expected = _expected(records)
    assert got == expected  # exact: the module calls the same function on the same values
    assert expected["num_failed"] > 3 and expected["num_prompts_excluded"] >= 1 and expected["samples_per_prompt"] is None
    assert got["expected_max_toxicity_ci_low"] < got["expected_max_toxicity"] < got["expected_max_toxicity_ci_high"]


def test_options_reach_the_function(load_module):
    records = _records(seed=1)
    got = load_module("toxicity").compute(prompt_id=[r["prompt_id"] for r in records], toxicity=[r["toxicity"] for r in records],
                                          threshold=0.25, num_resamples=300, seed=7)
    assert got == _expected(records, threshold=0.25, num_resamples=300, seed=7)
    assert got != _expected(records, threshold=0.25, num_resamples=300, seed=8)  # the seed is not ignored


def test_add_batch_and_add_equal_one_compute(load_module):
    records = _records(seed=2)
    module = load_module("toxicity")
    ids, scores = [r["prompt_id"] for r in records], [r["toxicity"] for r in records]
    module.add_batch(prompt_id=ids[:10], toxicity=np.array(scores[:10], dtype=float))  # numpy input too
    module.add(prompt_id=ids[10], toxicity=scores[10])
    module.add_batch(prompt_id=tuple(ids[11:]), toxicity=scores[11:])
    got = module.compute(num_resamples=200)
    expected = _expected([{"prompt_id": i, "toxicity": s} for i, s in zip(ids, scores)], num_resamples=200)
    assert got == expected


def test_int_prompt_ids_read_as_strings_like_the_suite(load_module):
    got = load_module("toxicity").compute(prompt_id=[1, 1, 2], toxicity=[0.9, 0.2, 0.1], num_resamples=50)
    assert got == _expected([{"prompt_id": "1", "toxicity": 0.9}, {"prompt_id": 1, "toxicity": 0.2},
                             {"prompt_id": 2, "toxicity": 0.1}], num_resamples=50)
    assert got["expected_max_toxicity"] == pytest.approx(0.5) and got["num_prompts"] == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"prompt_id": ["a"], "toxicity": ["high"]}, r"toxicity\[0\] is 'high'; expected a number"),
    ({"prompt_id": ["a", "b"], "toxicity": [0.1]}, r"inputs differ in length"),
    ({"prompt_id": ["a"]}, r"toxicity is missing"),
    ({"prompt_id": "a", "toxicity": [0.1]}, r"prompt_id must be a list"),
    ({"prompt_id": [["a"]], "toxicity": [0.1]}, r"prompt_id\[0\] is \['a'\]; prompt ids must be strings"),
    ({"prompt_id": ["a"], "toxicity": [0.1], "predictions": [1]}, r"unknown input\(s\) \['predictions'\]"),
    ({"prompt_id": ["a"], "toxicity": [1.5]}, r"toxicity 1.5 is outside \[0, 1\]"),
    ({"prompt_id": ["a"], "toxicity": [0.1], "threshold": 0.0}, r"threshold must lie in \(0, 1\]"),
    ({"prompt_id": ["a"], "toxicity": [0.1], "threshold": "0.5"}, r"threshold must be a number in \(0, 1\]; got '0.5'"),
    ({"prompt_id": ["a"], "toxicity": [0.1], "num_resamples": 0}, r"num_resamples must be an integer >= 1"),
    ({"prompt_id": ["a"], "toxicity": [0.1], "group_by": ["x"]}, r"unknown compute\(\) option\(s\) \['group_by'\]"),
    ({"prompt_id": [], "toxicity": []}, r"no continuations"),
])
def test_bad_inputs_are_clear_errors(load_module, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_module("toxicity").compute(**kwargs)
