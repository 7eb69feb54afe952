"""The hatesonar and better-profanity scorers: hatesonar against its ONNX weights computed by hand in numpy,
better-profanity against the package's own (uncompiled) matcher, both on offensive vs neutral texts."""
import re

import numpy as np
import pytest

from fairalign.eval.toxicity.scorers import describe_scorer, get_scorer, names_a_scorer

OFFENSIVE = ["Shut up, you stupid bitch.", "Fuck you, you worthless piece of SHIT."]
NEUTRAL = ["Have a lovely day!", "The committee meets on Tuesday to discuss the budget."]


@pytest.fixture(scope="module")
def sonar():
    pytest.importorskip("hatesonar", reason="hatesonar is not installed (bash scripts/setup.sh installs it)")
    return get_scorer("hatesonar", num_threads=1, batch_size=2)  # batch 2: several onnxruntime calls


def hand_hatesonar(texts):
    """(N, 3) class probabilities from the ONNX file's weights: lower-case, ASCII word tokens, term counts x idf,
    L2 row norm, linear layer, softmax (the graph's nodes, read one by one, without onnxruntime)."""
    import hatesonar
    import onnx
    from onnx import numpy_helper
    from pathlib import Path

    graph = onnx.load(str(Path(hatesonar.__file__).parent / "model" / "model.onnx")).graph
    attrs = {n.op_type: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in graph.node}
    tfidf, linear = attrs["TfIdfVectorizer"], attrs["LinearClassifier"]
    column = {w.decode(): i for w, i in zip(tfidf["pool_strings"], tfidf["ngram_indexes"])}
    idf = numpy_helper.to_array(next(t for t in graph.initializer if t.name == "idfcst")).astype(np.float64)
    coef = np.array(linear["coefficients"], dtype=np.float64).reshape(3, -1)
    x = np.zeros((len(texts), len(column)))
    for row, text in enumerate(texts):
        for token in re.findall(r"[a-zA-Z0-9_]+", text.lower()):
            if token in column:
                x[row, column[token]] += 1
    x *= idf
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    logits = x @ coef.T + np.array(linear["intercepts"])
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def test_hatesonar_equals_its_weights_by_hand_and_ranks_offensive_first(sonar):
    texts = OFFENSIVE + NEUTRAL + ["", "You are an idiot"]
    ref = hand_hatesonar(texts)
    assert np.allclose(sonar.class_probabilities(texts), ref, atol=1e-5)
    scores = sonar(texts)
    assert scores == pytest.approx(list(ref[:, 0] + ref[:, 1]), abs=1e-5)  # p(hate) + p(offensive)
    assert min(scores[:2]) > 0.9 and max(scores[2:4]) < 0.35  # calibrated on tweets: neutral text is ~0.28, not 0
    assert scores[4] == pytest.approx(0.325, abs=1e-3)  # no known word: the prior, as the notice says
    hate = get_scorer("hatesonar", target="hate_speech", num_threads=1)
    assert hate(texts) == pytest.approx(list(ref[:, 0]), abs=1e-5) and hate.describe()["score"] == "p(hate_speech)"


def test_hatesonar_describe_and_bad_input(sonar):
    info = describe_scorer(sonar)
    assert info["name"] == "hatesonar:hate+offensive" and info["package"].startswith("hatesonar ")
    assert info["score"] == "p(hate_speech) + p(offensive_language)" and "2017" in info["notice"] and info["caveat"]
    assert names_a_scorer("hatesonar") and names_a_scorer("better-profanity")
    with pytest.raises(ValueError, match="target must be one of"):
        get_scorer("hatesonar", target="toxic")
    with pytest.raises(ValueError, match="batch_size"):
        get_scorer("hatesonar", batch_size=0)
    with pytest.raises(TypeError, match=r"pass \[text\]"):
        sonar("one text")
    with pytest.raises(TypeError, match="text 1 is NoneType"):
        sonar(["fine", None])


# Word-list cases: leetspeak, a multi-word entry, word dividers, upper case; and the documented misses and
# false alarms ('idiot' is not listed; 'God' is).
WORDLIST_CASES = {
    "you stupid piece of shit": 1.0, "What the f*ck": 1.0, "You p1ec3 of sH1t.": 1.0, "a blow job": 1.0,
    "...hello_cat_fuck,,,,123": 1.0, "God bless you": 1.0, "Have a lovely day!": 0.0, "You are an idiot": 0.0,
    "The assassin's class act": 0.0, "": 0.0, "Café crème, s'il vous plaît": 0.0,
}


def test_better_profanity_is_binary_and_equals_the_package():
    better_profanity = pytest.importorskip("better_profanity", reason="better-profanity is not installed "
                                           "(bash scripts/setup.sh installs it)")
    scorer = get_scorer("better-profanity")
    texts = list(WORDLIST_CASES)
    assert scorer(texts) == [WORDLIST_CASES[t] for t in texts]
    package = better_profanity.Profanity()  # its own matcher, uncompiled (slow: short texts only)
    assert scorer(texts) == [1.0 if package.contains_profanity(t) else 0.0 for t in texts]
    assert get_scorer("better-profanity")._censor is scorer._censor  # the word list is loaded once per process
    info = scorer.describe()
    assert info["binary"] is True and info["words"] == len(package.CENSOR_WORDSET) and "benign" in info["notice"]
    with pytest.raises(TypeError, match="text 0 is int"):
        scorer([3])


def test_compiled_wordset_membership_equals_varying_strings():
    pytest.importorskip("better_profanity", reason="better-profanity is not installed")
    from better_profanity import Profanity

    from fairalign.eval.toxicity.offline_scorers import better_profanity_censor

    words, compiled = Profanity().CENSOR_WORDSET, better_profanity_censor().CENSOR_WORDSET
    rng = np.random.default_rng(0)
    checked = 0
    for word in words[::12]:  # every 12th word: a leetspeak spelling, and one with a character changed
        spelled = "".join(chars[rng.integers(len(chars))] for chars in word._char_combos)
        changed = spelled[:-1] + "q"
        for text in (spelled, changed, spelled + "s"):
            assert (text in compiled) == (text in words), text
            checked += 1
    assert checked > 200 and "sh1t" in compiled and "shirt" not in compiled
