"""The report as a first-time reader meets it, on a demo-like results.json built by hand (no model run):
the caveat banner on top, labels that name scorer, prompt set and evaluator, one plot panel per scale,
multiplicity, skips said once, and the provocative/neutral breakdown; older files without the new fields."""
import copy

import pytest

from fairalign.eval.suite.plots import difference_panels, differences_plot, scale_of
from fairalign.eval.suite.report import PROXY_CAVEAT, build_blocks, metric_labels, task_caveats, with_multiplicity
from fairalign.eval.suite.report_html import render_html
from fairalign.eval.suite.report_md import render_markdown

SYSTEMS = ("base", "tuned", "uddia")
DEMO_PATH = "/repo/eval/toxicity/resources/demo_prompts.jsonl"


def metric(value, low, high, label, n=8, unit="prompts", units="prompts", higher_is_better=False, ideal=0.0,
           method="bootstrap"):
    return {"value": value, "low": low, "high": high, "level": 0.95, "n": n, "method": method, "label": label,
            "unit": unit, "units": units, "higher_is_better": higher_is_better, "ideal": ideal}


def toxicity_entry(shift: float) -> dict:
    group = {"expected_max_toxicity": {"value": 0.2 + shift, "low": 0.1, "high": 0.3, "n": 4},
             "toxicity_probability": {"value": 0.25, "low": 0.05, "high": 0.7, "n": 4},
             "per_continuation_toxic_rate": {"value": 0.0, "low": 0.0, "high": 0.49, "n": 4}, "num_prompts": 4}
    return {
        "status": "ok", "task_version": 1, "runtime_s": 1.0, "reused": False, "file": "x.json", "file_sha256": "0" * 64,
        "fingerprint": "f" * 64, "notes": ["offline proxy scorer: alt-profanity-check measures profanity"],
        "settings": {"scorer": "profanity", "ppl_model": "smollm2", "group_by": ["kind"], "threshold": 0.5,
                     "prompts": {"prompts": "demo", "challenging_only": False, "limit": 8, "shuffle_seed": None}},
        "data": {"source": DEMO_PATH, "path": DEMO_PATH, "sha256": "a" * 64, "hub_id": None, "revision": None,
                 "rows_used": 8},
        "metrics": {
            "expected_max_toxicity": metric(0.21 + shift, 0.15, 0.3, "expected max toxicity"),
            "toxicity_probability": metric(0.0, 0.0, 0.32, "toxicity probability", method="wilson"),
            "per_continuation_toxic_rate": metric(0.04, 0.0, 0.1, "per continuation toxic rate"),
            "perplexity": metric(20.0 + 30 * shift, 14.0, 28.0, "perplexity", higher_is_better=False, ideal=None),
        },
        "details": {"scorer": {"name": "profanity-check", "notice": "proxy"},
                    "groups": {"kind": {"neutral": group, "provocative": copy.deepcopy(group)}}},
    }


def occupation_entry() -> dict:
    return {"status": "ok", "task_version": 1, "runtime_s": 1.0, "reused": False, "file": "y.json",
            "file_sha256": "0" * 64, "fingerprint": "e" * 64, "notes": [], "settings": {"scoring": "both"},
            "data": {"source": "bls.csv", "path": "/data/bls.csv", "sha256": "b" * 64, "hub_id": None,
                     "revision": None, "rows_used": 6},
            "metrics": {"probabilities.gender.women.mae_pp": metric(12.0, 8.0, 16.0, "MAE gender women (pp), probabilities",
                                                                    n=6, unit="occupations", units="occupations.probabilities")},
            "details": {}}


SKIP = {"status": "skipped", "reason": "BBNLI data not found", "how_to": "fairalign data bbnli", "earlier": None}


def difference(task, key, label, system, value, low, high, unit="prompt", higher_is_better=False, ideal=0.0):
    return {"task": task, "metric": key, "label": label, "baseline": "base", "system": system, "value": value,
            "low": low, "high": high, "level": 0.95, "n": 8, "paired": True, "method": "paired", "unit": unit,
            "n_baseline": 8, "n_system": 8, "higher_is_better": higher_is_better, "ideal": ideal}


def demo_like_results() -> dict:
    systems = []
    for i, name in enumerate(SYSTEMS):
        spec = {"name": name, "model": "smollm2", "adapter": "adapter" if name == "tuned" else None,
                "uddia": "demo" if name == "uddia" else None, "uddia_config": {"lr": 0.01}}
        systems.append({"name": name, "spec": spec, "identity": {}, "notes": [],
                        "tasks": {"toxicity": toxicity_entry(0.01 * i), "occupation": occupation_entry(),
                                  "bbnli": dict(SKIP)}})
    diffs = []
    for name, emt_high in (("tuned", -0.01), ("uddia", 0.01)):  # tuned's EMT CI excludes 0, uddia's does not
        diffs += [difference("toxicity", "expected_max_toxicity", "expected max toxicity", name, -0.03, -0.06, emt_high),
                  difference("toxicity", "toxicity_probability", "toxicity probability", name, 0.0, -0.125, 0.125),
                  difference("toxicity", "per_continuation_toxic_rate", "per continuation toxic rate", name, 0.02, -0.01, 0.05),
                  difference("toxicity", "perplexity", "perplexity", name, -15.0, -22.0, -6.0, ideal=None),
                  difference("occupation", "probabilities.gender.women.mae_pp", "MAE gender women (pp), probabilities",
                             name, 1.5, -2.0, 5.0, unit="occupation")]
    return {"schema_version": 2, "kind": "fairalign.eval.suite", "created": "2026-12-05", "out_dir": "/tmp/run",
            "tasks": ["toxicity", "occupation", "bbnli"], "config": {},
            "provenance": {"git_commit": "abc", "versions": {"torch": "2"}, "python": "3.11"},
            "systems": systems, "comparisons": {"baseline": "base", "differences": diffs}}


def with_p_values(results: dict) -> dict:
    """p-values in step with the CIs: 0.03 for tuned's EMT, 0.001 for perplexity, 0.5 for the rest."""
    for j, d in enumerate(results["comparisons"]["differences"]):
        d["p"] = 0.03 if j == 0 else 0.001 if d["metric"] == "perplexity" else 0.5
    return results


@pytest.fixture
def results():
    return demo_like_results()


def _render(results):
    blocks = build_blocks(results, {})
    return blocks, render_markdown(blocks), render_html(blocks, {})


# ---- 1: one plot panel per scale ------------------------------------------------------------------------


@pytest.mark.parametrize("key, metric_, scale", [
    ("perplexity", {}, "perplexity"), ("token_weighted_perplexity", {}, "perplexity"),
    ("expected_max_toxicity", {}, "proportion"), ("per_continuation_toxic_rate", {}, "proportion"),
    ("dist_2", {}, "proportion"), ("stereotype_aligned_rate_stereotypical", {}, "proportion"),
    ("accuracy", {}, "proportion"), ("brittleness", {}, "proportion"),
    ("probabilities.gender.women.mae_pp", {}, "pp"), ("spearman", {}, "correlation"),
    ("amplification_slope", {}, "ratio"), ("test_acc_gap", {}, "ratio"), ("bbnli_bias_score", {}, "score"),
    ("perplexity", {"scale": "score"}, "score"),  # the pipeline's field wins over the guess
    ("bbnli_bias_score", {"scale": None}, "score"),
])
def test_scale_from_the_field_or_from_the_key(key, metric_, scale):
    assert scale_of(key, metric_) == scale


def test_differences_get_one_panel_per_scale_each_with_its_own_axis(results):
    panels = difference_panels(results, "toxicity")
    assert {scale: [d["metric"] for d in rows] for scale, rows in panels.items()} == {
        "proportion": ["expected_max_toxicity", "toxicity_probability", "per_continuation_toxic_rate"] * 2,
        "perplexity": ["perplexity"] * 2}
    fig = differences_plot(results, "toxicity")
    rates, ppl = fig.axes
    # the rate panel spans the rate CIs (about ±0.13), not the perplexity ones (about -22)
    assert rates.get_xlim()[1] - rates.get_xlim()[0] < 1.0 < ppl.get_xlim()[1] - ppl.get_xlim()[0]
    assert "rates" in rates.get_title(loc="left") and ppl.get_title(loc="left") == "perplexity"


def test_scale_field_regroups_the_panels(results):
    for s in results["systems"]:
        s["tasks"]["toxicity"]["metrics"]["perplexity"]["scale"] = "score"
    assert list(difference_panels(results, "toxicity")) == ["proportion", "score"]


# ---- 2: caveats on top, scorer and prompt set in the labels ----------------------------------------------


def test_caveats_are_derived_from_settings_until_the_pipeline_writes_them(results):
    entry = results["systems"][0]["tasks"]["toxicity"]
    assert task_caveats("toxicity", entry) == ["demo prompts (8, bundled), not RealToxicityPrompts", PROXY_CAVEAT]
    entry["caveats"] = ["written by the pipeline"]
    assert task_caveats("toxicity", entry) == ["written by the pipeline"]
    entry["caveats"] = []  # the pipeline found none: nothing is derived on top
    assert task_caveats("toxicity", entry) == []
    real = copy.deepcopy(results["systems"][0]["tasks"]["toxicity"])
    real["settings"].update(scorer="hf-classifier", prompts={"prompts": None})
    real["data"].update(path=None, hub_id="allenai/real-toxicity-prompts")
    real["details"]["scorer"] = {"name": "unitary/toxic-bert"}
    assert task_caveats("toxicity", real) == []


def test_auto_scorer_that_fell_back_to_the_proxy_is_a_caveat(results):
    entry = results["systems"][0]["tasks"]["toxicity"]
    entry["settings"]["scorer"] = "auto"
    entry["settings"]["prompts"] = {"prompts": None}
    entry["data"]["path"] = "/data/rtp.jsonl"
    assert task_caveats("toxicity", entry) == [PROXY_CAVEAT]


def test_banner_is_at_the_top_of_both_reports_and_says_each_caveat_once(results):
    results["systems"][2]["tasks"]["occupation"]["caveats"] = ["sampled answers only"]
    blocks, md, html = _render(results)
    assert blocks[0][0] == "h1" and blocks[1][0] == "banner"
    items = blocks[1][2]
    assert items == ["toxicity: demo prompts (8, bundled), not RealToxicityPrompts", f"toxicity: {PROXY_CAVEAT}",
                     "occupation (uddia): sampled answers only"]
    assert md.index("> - toxicity: demo prompts (8, bundled)") < md.index("## Systems")
    assert html.index('<div class="banner"') < html.index("<h2>") and html.count('class="banner"') == 1
    assert md.count("not RealToxicityPrompts") == html.count("not RealToxicityPrompts") == 1


def test_no_banner_without_caveats(results):
    for s in results["systems"]:
        s["tasks"]["toxicity"]["caveats"] = []
    blocks, md, html = _render(results)
    assert all(b[0] != "banner" for b in blocks) and 'class="banner"' not in html and "Read this first" not in md


def test_toxicity_labels_name_scorer_and_prompt_set(results):
    labels = metric_labels(results, "toxicity")
    assert labels["expected_max_toxicity"] == "expected max toxicity (profanity proxy, demo prompts)"
    assert labels["per_continuation_toxic_rate"] == "per continuation toxic rate (profanity proxy, demo prompts)"
    _, md, html = _render(results)
    assert "| expected max toxicity (profanity proxy, demo prompts) | lower |" in md
    assert "<td>toxicity probability (profanity proxy, demo prompts)</td>" in html
    assert metric_labels(results, "occupation")["probabilities.gender.women.mae_pp"] == "MAE gender women (pp), probabilities"


# ---- 3: the interval method is stated --------------------------------------------------------------------


def test_results_table_states_each_interval_method(results):
    _, md, _ = _render(results)
    row = next(line for line in md.splitlines() if line.startswith("| toxicity probability (profanity"))
    assert row.endswith("| wilson |")
    assert next(line for line in md.splitlines() if line.startswith("| expected max toxicity (")).endswith("| bootstrap |")


# ---- 4: multiplicity -------------------------------------------------------------------------------------


def test_report_counts_comparisons_and_shows_both_verdicts(results):
    with_p_values(results)
    blocks, md, html = _render(results)
    assert "This run made 10 comparisons" in md and "3 have a 95% CI that excludes 0" in md
    # Holm, m = 10: perplexity 0.001 * 10 = 0.01 (both), EMT 0.03 * 8 = 0.24, the rest 1
    assert "2 of 10 with a p-value remain after it" in md
    header = next(b for b in blocks if b[0] == "table" and "p (Holm)" in b[1])[1]
    assert header[-4:] == ["reading (CI, unadjusted)", "p", "p (Holm)", "reading (Holm)"]
    row = next(line for line in md.splitlines() if line.startswith("| expected max toxicity (profanity proxy, demo prompts) | tuned"))
    assert "lower: better (CI excludes 0) | 0.03 | 0.24 | no clear difference |" in row
    ppl = next(line for line in md.splitlines() if line.startswith("| perplexity under smollm2") and "| uddia |" in line)
    assert ppl.endswith("| lower (CI excludes 0) | 0.001 | 0.01 | lower |")
    assert "This run made 10 comparisons" in html


def test_report_says_when_too_few_resamples_make_holm_unreachable(results):
    with_p_values(results)
    results["config"]["num_resamples"] = 300  # smallest p = 2/301 = 0.0066 > 0.05 / 10
    _, md, _ = _render(results)
    assert "no difference can pass it in this run, whatever the data; num_resamples >= 400 would allow it" in md
    results["config"]["num_resamples"] = 1000  # 2/1001 = 0.002 < 0.005
    _, md, _ = _render(results)
    assert "whatever the data" not in md


def test_stored_holm_values_are_used_as_they_are(results):
    with_p_values(results)
    for d in results["comparisons"]["differences"]:
        d.update(p_holm=0.01, verdict_holm="lower: better")
    assert with_multiplicity(results["comparisons"]["differences"]) is results["comparisons"]["differences"]
    _, md, _ = _render(results)
    assert "10 of 10 with a p-value remain after it" in md


def test_an_older_file_without_p_values_still_renders(results):
    blocks, md, html = _render(results)
    assert "not available here, as this results.json holds no p-values" in md
    row = next(line for line in md.splitlines() if line.startswith("| expected max toxicity (profanity proxy, demo prompts) | tuned"))
    assert row.endswith("| lower: better (CI excludes 0) | n/a | n/a | n/a |")


# ---- 5: perplexity under the systems' own base model -----------------------------------------------------


def test_perplexity_under_the_base_model_is_labelled_as_favouring_blander_text(results):
    label = metric_labels(results, "toxicity")["perplexity"]
    assert label == "perplexity under smollm2, the base model of the systems compared: favours blander text"
    _, md, html = _render(results)
    assert md.count("favours blander text") == html.count("favours blander text") >= 3  # results, diffs x2
    results["systems"][1]["spec"]["model"] = "/models/other"
    assert metric_labels(results, "toxicity")["perplexity"].endswith("the base model of base, uddia: favours blander text")
    for s in results["systems"]:
        s["tasks"]["toxicity"]["settings"]["ppl_model"] = "gpt2-large"
    assert metric_labels(results, "toxicity")["perplexity"] == "perplexity under gpt2-large"


# ---- 6: skips once, the group breakdown ------------------------------------------------------------------


def test_a_skip_shared_by_every_system_is_said_once(results):
    _, md, html = _render(results)
    assert md.count("BBNLI data not found") == 1 and html.count("BBNLI data not found") == 1
    assert "Skipped for every system: BBNLI data not found. How to get it: fairalign data bbnli" in md
    results["systems"][2]["tasks"]["bbnli"] = dict(SKIP, reason="no log-likelihoods")
    _, md, _ = _render(results)
    assert "Skipped for base, tuned: BBNLI data not found." in md and "Skipped for uddia: no log-likelihoods." in md


def test_provocative_and_neutral_results_are_shown_per_system(results):
    blocks, md, _ = _render(results)
    tables = [b for b in blocks if b[0] == "table" and b[1][0].endswith(": kind")]
    assert [t[1][0] for t in tables] == ["base: kind", "tuned: kind", "uddia: kind"]
    assert tables[0][1][1] == "expected max toxicity (profanity proxy, demo prompts)"
    assert [row[0] for row in tables[1][2]] == ["neutral", "provocative"]
    assert tables[1][2][0][1:] == ["0.21 [0.1, 0.3]", "0.25 [0.05, 0.7]", "0 [0, 0.49]", "4"]
    assert "### By kind (value [95% CI])" in md
