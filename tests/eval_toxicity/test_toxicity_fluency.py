"""Dist-n against hand counts; perplexity against HFLM.loglikelihood and a brute-force single-sequence pass."""
import math

import pytest
import torch

from fairalign.eval.lm import HFLM
from fairalign.eval.toxicity import continuation_nll, distinct_n, diversity, evaluate_fluency


def test_distinct_n_hand_counts():
    texts = ["a b a", "a b"]
    assert distinct_n(texts, 1) == pytest.approx(2 / 5)  # a b a a b -> {a, b}
    assert distinct_n(texts, 2) == pytest.approx(2 / 3)  # (a b) (b a) | (a b): no n-gram across samples
    assert distinct_n(texts, 3) == pytest.approx(1 / 1)
    assert distinct_n(["one"], 2) is None
    with pytest.raises(ValueError):
        distinct_n(texts, 0)


def test_diversity_averages_over_prompts():
    records = [{"prompt_id": "p", "continuation": t} for t in ("a b a", "a b")] + \
              [{"prompt_id": "q", "continuation": "x y"}, {"prompt_id": "r", "continuation": ""}]
    d = diversity(records)
    assert d["dist_1"].value == pytest.approx((2 / 5 + 1.0) / 2) and d["dist_1"].n == 2  # r has no unigram
    assert d["dist_2"].value == pytest.approx((2 / 3 + 1.0) / 2)
    assert d["dist_3"].value == pytest.approx(1.0) and d["dist_3"].n == 1


PAIRS = [("The nurse said", " that you are wonderful."), ("Hello", " there"), ("What is the", " capital of France?"),
         ("x", "y"), ("Thank you", " so much for your help!")]


def brute_force(model, tokenizer, context, continuation):
    """Unbatched: one unpadded forward pass, log-probs summed over the continuation's tokens."""
    ctx = tokenizer(context)["input_ids"]
    full = tokenizer(context + continuation)["input_ids"]
    k = next((i for i, (a, b) in enumerate(zip(ctx, full)) if a != b), min(len(ctx), len(full)))
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), -1)
    return -sum(float(logp[t - 1, full[t]]) for t in range(max(k, 1), len(full))), len(full) - max(k, 1)


def test_continuation_nll_matches_brute_force_and_hflm(tiny_gpt2, tokenizer):
    got = continuation_nll(tiny_gpt2, tokenizer, PAIRS, batch_size=2)
    for (nll, n), (ctx, cont) in zip(got, PAIRS):
        ref_nll, ref_n = brute_force(tiny_gpt2, tokenizer, ctx, cont)
        assert n == ref_n and nll == pytest.approx(ref_nll, rel=1e-4)
    hflm = HFLM(tiny_gpt2, tokenizer, batch_size=3).loglikelihood(PAIRS)
    assert [-nll for nll, _ in got] == pytest.approx(hflm, rel=1e-4)


def test_evaluate_fluency_perplexity_formulas(tiny_llama, tokenizer):
    records = [{"prompt_id": str(i // 2), "prompt": c, "continuation": t} for i, (c, t) in enumerate(PAIRS)]
    records.append({"prompt_id": "9", "prompt": "Hi", "continuation": ""})  # no token: excluded, counted
    r = evaluate_fluency(records, (tiny_llama, tokenizer), batch_size=4)
    refs = [brute_force(tiny_llama, tokenizer, c, t) for c, t in PAIRS]
    assert r.perplexity.value == pytest.approx(sum(math.exp(nll / n) for nll, n in refs) / len(refs), rel=1e-4)
    assert r.token_weighted_perplexity.value == pytest.approx(
        math.exp(sum(nll for nll, _ in refs) / sum(n for _, n in refs)), rel=1e-4)
    assert r.num_perplexity_excluded == 1 and r.perplexity.n == 3  # prompts 0, 1, 2; prompt 9 had no token
    assert set(r.to_dict()) >= {"perplexity", "dist_1", "dist_3", "evaluator"}
    assert "perplexity" in r.to_markdown()
    no_lm = evaluate_fluency(records)
    assert no_lm.perplexity is None and no_lm.distinct["dist_1"].value is not None


def test_evaluate_fluency_needs_prompt_text(tiny_llama, tokenizer):
    with pytest.raises(ValueError, match="prompt"):
        evaluate_fluency([{"prompt_id": "a", "continuation": "x"}], (tiny_llama, tokenizer))
