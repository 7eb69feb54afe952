"""BLS-grounded debiasing: held-out occupations never appear in the context; pairing; before/after."""
import pytest

from fairalign.eval.occupation import evaluate_occupational_bias, load_bls_table, select_occupations
from fairalign.eval.occupation.debias import BLSContext, format_fact


@pytest.fixture(scope="module")
def table(shared_data):
    return load_bls_table(shared_data / "bls" / "cpsaat11_2022_clean.csv")


def test_asked_occupation_never_in_its_context(table):
    names = [n.bls for n in select_occupations(table)]
    ctx = BLSContext(table, k=32, holdout="asked", evaluated=tuple(names))
    for occ in names:
        facts = ctx.facts(occ)
        assert len(facts) == 32 and len({f["occupation"] for f in facts}) == 32
        assert occ not in {f["occupation"] for f in facts}
    assert ctx.facts(names[0]) == ctx.facts(names[0])  # deterministic: baseline and debiased stay paired


def test_evaluated_holdout_excludes_every_evaluated_occupation(table):
    names = [n.bls for n in select_occupations(table, max_occupations=100)]
    ctx = BLSContext(table, k=16, holdout="evaluated", evaluated=tuple(names))
    for occ in names + [None]:
        assert not {f["occupation"] for f in ctx.facts(occ)} & set(names)


def test_fact_text(table):
    row = table.row("Chief executives")
    assert format_fact(row, "gender") == "29.2% of chief executives are women."
    assert format_fact(row, "ethnicity") == "6.8% of chief executives are Hispanic or Latino."
    assert "85.9% are White" in format_fact(row, "race")


def test_bad_settings(table):
    with pytest.raises(ValueError, match=r"BLSContext.k=0 is out of range"):
        BLSContext(table, k=0)
    with pytest.raises(ValueError, match="holdout must be one of"):
        BLSContext(table, holdout="none")
    with pytest.raises(ValueError, match="only .* occupations are left"):
        BLSContext(table, k=400)


def test_debiased_prompts_hold_out_and_report_before_after(toy_csv, scripted):
    gen = scripted([("", [" She"])])
    r = evaluate_occupational_bias(gen, toy_csv, templates=["gender_question"], directions=("o2d",), debias="bls-context",
                                   k=2, num_samples=1, num_resamples=100)
    debiased = [p for p in gen.prompts if p.startswith("Facts from the U.S. Bureau of Labor Statistics (2022):")]
    assert len(debiased) == 3
    for p in debiased:
        context, question = p.split("\n\n", 1)
        asked = {"registered nurse": "registered nurses", "software developer": "software developers", "cashier": "cashiers"}
        occ = next(k for k in asked if f" {k} " in question or f" {k}?" in question or f"a {k} in" in question or f"an {k} in" in question)
        assert asked[occ] not in context.lower()  # the asked occupation's fact is never in its context
        assert context.count("\n- ") == 2  # k facts
    assert set(r.conditions) == {"baseline", "bls-context"}
    delta = r.deltas["generate"]["gender"]["woman"]["delta_mae_pp"]
    assert delta.value == pytest.approx(0.0) and delta.n == 3  # same answers before and after
    md = r.to_markdown()
    assert "bls-context" in md and "delta_mae_pp" in md
    with pytest.raises(ValueError, match="only 0 occupations are left"):
        evaluate_occupational_bias(gen, toy_csv, templates=["gender_question"], directions=("o2d",), debias="bls-context",
                                   k=1, holdout="evaluated", num_samples=1)
