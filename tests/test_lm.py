"""eval.lm.HFLM: batched log-likelihoods equal one-at-a-time full-vocabulary computations."""
import pytest
import torch

from fairalign.align.testing import tiny_gpt2, tiny_llama, tiny_tokenizer
from fairalign.eval.lm import HFLM

REQUESTS = [("The nurse said", " that she"), ("A", " very long continuation with many words in it"),
            ("Question: is it true? Answer:", " yes"), ("Question: is it true? Answer:", " no"),
            ("x", "y"), ("Some context that is much longer than the others, to force padding", " ok"),
            ("Answer:", "a"), ("Answer:", "b"), ("Answer:", "ab")]  # shared prefixes, one- and two-token answers


def _reference(model, tokenizer, context, continuation):
    ctx = tokenizer(context)["input_ids"]
    full = tokenizer(context + continuation)["input_ids"]
    k = 0
    while k < min(len(ctx), len(full)) and ctx[k] == full[k]:
        k += 1
    ids = torch.tensor([full])
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=ids).logits.double(), dim=-1)[0]
    return sum(float(logps[t - 1, full[t]]) for t in range(max(k, 1), len(full)))


@pytest.mark.parametrize("make_model", [tiny_llama, tiny_gpt2], ids=["llama", "gpt2"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_batched_loglikelihood_equals_unbatched_reference(make_model, batch_size):
    tokenizer = tiny_tokenizer()
    model = make_model(vocab_size=len(tokenizer)).eval()
    got = HFLM(model, tokenizer, batch_size=batch_size).loglikelihood(REQUESTS)
    want = [_reference(model, tokenizer, c, x) for c, x in REQUESTS]
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_peft_model_scores_like_its_merged_weights():
    from peft import LoraConfig, get_peft_model

    tokenizer = tiny_tokenizer()
    model = get_peft_model(tiny_llama(vocab_size=len(tokenizer)), LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)).eval()
    got = HFLM(model, tokenizer, batch_size=3).loglikelihood(REQUESTS)
    want = [_reference(model, tokenizer, c, x) for c, x in REQUESTS]
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_empty_continuation_is_an_error():
    tokenizer = tiny_tokenizer()
    with pytest.raises(ValueError, match="empty continuation"):
        HFLM(tiny_llama(vocab_size=len(tokenizer)), tokenizer).loglikelihood([("abc", "")])


def test_requests_with_the_same_prefix_share_one_forward():
    tokenizer = tiny_tokenizer()
    model = tiny_llama(vocab_size=len(tokenizer)).eval()
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(1))
    lm = HFLM(model, tokenizer, batch_size=1)
    got = lm.loglikelihood([("Answer:", "a"), ("Answer:", "b"), ("Answer:", "c")])
    assert len(calls) == 1  # one row: the prefix "Answer:" predicts each one-token answer
    assert got == pytest.approx([_reference(model, tokenizer, "Answer:", x) for x in "abc"], rel=1e-4, abs=1e-4)
