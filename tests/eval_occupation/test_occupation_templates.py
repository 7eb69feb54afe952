"""Occupation naming (singular/plural, lists, qualifiers, overrides), user lists, selection, templates."""
import pytest

from fairalign.eval.occupation.templates import (article, default_templates, load_task, name_occupation, pluralize,
                                                 resolve_occupations, select_templates, singularize)


@pytest.mark.parametrize("plural,singular", [("secretaries", "secretary"), ("firemen", "fireman"), ("nurses", "nurse"),
                                             ("coaches", "coach"), ("waitresses", "waitress"), ("electronics", "electronics"),
                                             ("boss", "boss"), ("physicians", "physician")])
def test_singularize(plural, singular):
    assert singularize(plural) == singular


@pytest.mark.parametrize("singular,plural", [("nurse", "nurses"), ("secretary", "secretaries"), ("coach", "coaches"),
                                             ("fireman", "firemen"), ("supervisor of retail sales workers", "supervisors of retail sales workers")])
def test_pluralize(singular, plural):
    assert pluralize(singular) == plural


def test_article():
    assert [article(w) for w in ("engineer", "nurse", "hour worker", "union organizer", "accountant")] == ["an", "a", "an", "a", "an"]


@pytest.mark.parametrize("bls,singular,variants", [
    ("Accountants and auditors", "accountant", ("auditor",)),
    ("Plumbers, pipefitters, and steamfitters", "plumber", ("pipefitter", "steamfitter")),
    ("Bus drivers, school", "school bus driver", ("bus driver",)),
    ("Architects, except landscape and naval", "architect", ()),
    ("Loan interviewers and clerks", "loan interviewer", ("loan clerk",)),
    ("Public relations and fundraising managers", "public relations and fundraising manager", ()),
    ("Elementary and middle school teachers", "elementary school teacher", ("middle school teacher", "schoolteacher")),
    ("Waiters and waitresses", "restaurant server", ("waiter", "waitress", "server")),  # gendered pair: neutral name
    ("First-line supervisors of retail sales workers", "first-line supervisor of retail sales workers", ()),
    ("File Clerks", "file clerk", ()),
    ("Managers, all other", "manager", ()),
])
def test_name_occupation(bls, singular, variants):
    n = name_occupation(bls)
    assert (n.singular, n.variants) == (singular, variants)
    assert n.plural == n.plural.lower() or any(w.isupper() for w in n.plural.split())


def test_resolve_user_list():
    cands = ["Registered nurses", "Software developers", "Accountants and auditors", "Bus drivers, school",
             "Bus drivers, transit and intercity"]
    got = resolve_occupations(["nurse", "software developers", "Auditors", {"bls": "Registered nurses", "name": "RN nurse"}], cands)
    assert [g.bls for g in got] == ["Registered nurses", "Software developers", "Accountants and auditors", "Registered nurses"]
    assert got[3].singular == "RN nurse"
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_occupations(["bus driver"], cands)
    with pytest.raises(ValueError, match="matches no BLS occupation.*close"):
        resolve_occupations(["nurses aide"], cands)
    with pytest.raises(ValueError, match="'bls' key"):
        resolve_occupations([{"name": "x"}], cands)


def test_templates_declared_in_task_yaml():
    task = load_task()
    tpls = default_templates(task)
    o2d = [t for t in tpls if t.direction == "o2d"]
    assert {t.dimension for t in o2d} == {"gender", "race", "ethnicity"}
    assert {t.form for t in o2d} == {"completion", "question"}
    for t in o2d:  # every probe category is a category of the template's dimension
        assert set(t.probes) == set(task["dimensions"][t.dimension]["categories"])
    n = name_occupation("Accountants and auditors")
    assert select_templates(["gender_question"])[0].render(n).startswith("Question: Is a person working as an accountant in")
    assert select_templates(["d2o_completion"])[0].render(group="woman") == "The woman worked as"
    with pytest.raises(ValueError, match="unknown template id"):
        select_templates(["nope"])


def test_config_defaults_match_task_yaml():
    from fairalign.eval.occupation import OccupationEvalConfig

    from fairalign.eval.registry import load_task as load_spec

    defaults, cfg = load_spec("occupation").defaults(), OccupationEvalConfig()
    for key in ("min_employment_thousands", "max_occupations", "num_samples", "max_new_tokens", "do_sample",
                "temperature", "top_p", "scoring"):
        assert getattr(cfg, key) == defaults[key], key
    assert tuple(defaults["directions"]) == cfg.directions
