"""Prefix-shared packing and the completion-only LM head against plain per-sequence log-softmax."""
import pytest
import torch

from fairalign.align.logprobs import _CompletionLogProbs, add_completion_logps_forward, completion_logps, pack_examples


@torch.no_grad()
def _reference_logp(model, prompt, completion):
    logits = model(input_ids=torch.tensor([prompt + completion])).logits[0].double().log_softmax(-1)
    return sum(float(logits[len(prompt) - 1 + j, completion[j]]) for j in range(len(completion)))


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_gpt2"])
@pytest.mark.parametrize("shared", [True, False])
def test_packed_logps_equal_separate_sequences(arch, shared, request):
    model = request.getfixturevalue(arch)
    add_completion_logps_forward(model)
    prompts = [[5, 6, 7, 8], [9, 10], [11]]
    # token id 0 inside a completion is a real token and must count
    branches = [[[11, 0, 13], [14]], [[15, 16], [17, 18, 19, 20]], [[0], [21, 22, 23]]]
    rows = pack_examples(prompts, branches, pad_token_id=3, shared_prefix=shared)
    inputs = dict(input_ids=rows.input_ids, attention_mask=rows.attention_mask(shared), position_ids=rows.position_ids,
                  completion_targets=rows.targets, branch_index=rows.branch_index)
    logps, lengths = completion_logps(model, inputs, 3, 2)
    expected = torch.tensor([[_reference_logp(model, p, c) for c in b] for p, b in zip(prompts, branches)], dtype=torch.float64)
    assert torch.allclose(logps.double(), expected, atol=1e-4)
    assert lengths.tolist() == [[3, 1], [2, 4], [1, 3]]
    # one row per example when shared; the prompt appears once
    assert rows.input_ids.shape[0] == (3 if shared else 6)


def test_prompt_and_padding_never_count():
    rows = pack_examples([[1, 2, 3]], [[[4, 5], [6]]], pad_token_id=0, shared_prefix=True, pad_to_multiple_of=16)
    targets = rows.targets[0].tolist()
    # only completion tokens are targets: 4,5 (chosen) and 6 (rejected)
    assert sorted(t for t in targets if t != -100) == [4, 5, 6]
    assert rows.input_ids.shape[1] == 16


def test_completion_logprob_function_gradcheck():
    torch.manual_seed(0)
    h = torch.randn(9, 16, dtype=torch.float64, requires_grad=True)
    head = torch.nn.Linear(16, 40, bias=True).double()
    t = torch.randint(0, 40, (9,))
    assert torch.autograd.gradcheck(lambda h, w, b: _CompletionLogProbs.apply(h, w, b, t, 4), (h, head.weight, head.bias))


def test_generation_is_unchanged_by_the_patch(tiny_llama):
    ids = torch.tensor([[5, 6, 7]])
    before = tiny_llama.generate(ids, max_new_tokens=5, do_sample=False)
    add_completion_logps_forward(tiny_llama)
    add_completion_logps_forward(tiny_llama)  # idempotent
    assert torch.equal(tiny_llama.generate(ids, max_new_tokens=5, do_sample=False), before)


def test_lm_head_runs_inside_its_own_module_call(tiny_llama):
    """FSDP2 / ZeRO-3 gather the head's weight in its module hooks: the completion-only head must go through
    lm_head(...), never read lm_head.weight from outside (the weight is a shard there), forward and backward."""
    add_completion_logps_forward(tiny_llama)
    calls = []
    head = tiny_llama.get_output_embeddings()
    head.register_forward_pre_hook(lambda module, args, kwargs: calls.append(sorted(kwargs)), with_kwargs=True)
    rows = pack_examples([[5, 6, 7]], [[[8, 9], [10]]], pad_token_id=3)
    inputs = dict(input_ids=rows.input_ids, attention_mask=rows.attention_mask(True), position_ids=rows.position_ids,
                  completion_targets=rows.targets, branch_index=rows.branch_index)
    logps, _ = completion_logps(tiny_llama, inputs, 1, 2)
    assert calls == [["logps_targets"]]
    logps.sum().backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
