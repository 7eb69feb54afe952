"""One adaptation step against the per-sequence reference (`fairalign.decoding.uddia.reference`).

The reference re-derives UDDIA's step for one sequence at a time from fresh forwards: the prefix without
offsets, the current token with θ, the look-ahead on the expected embedding, the detox cross-entropy on the mean
final hidden state, torch.optim.Adam, and the tuned pass through every layer. The implementation batches rows,
takes the θ = 0 adapted pass from the main pass's graph (`MainGraph`), forks the cache, skips the look-ahead's
LM head, splits θ across sites and replays the untuned layers in the tuned pass: none of which the reference does."""
import pytest
import torch
from transformers import DynamicCache

from fairalign.decoding import UDDIAConfig, UDDIAGenerator
from fairalign.decoding.uddia.reference import reference_step
from fairalign.decoding.uddia.step import Adaptation, cache_kwarg

ALL, SUB = [0, 1, 2, 3], [0, 2]
# (rows, from the main pass's graph, look-ahead): every pair of values of any two of them, in 6 cases of 12
CASES = [(ALL, True, 1, 1, False), (SUB, False, 1, 1, False), (ALL, False, 2, 1, False), (SUB, True, 2, 1, False),
         (ALL, True, 0, 1, False), (SUB, False, 0, 1, False),
         (SUB, True, 1, 2, False),  # two Adam steps: a second adapted pass of its own, Adam's bias correction
         (SUB, True, 1, 1, True)]  # detox + debias terms


def _case_id(rows, graph, lookahead, steps, debias):
    return (f"{'all-rows' if len(rows) == 4 else 'sub-batch'}-{'main-pass-graph' if graph else 'separate-pass'}"
            f"-lookahead{lookahead}" + (f"-{steps}-steps" if steps > 1 else "") + ("-debias" if debias else ""))


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
@pytest.mark.parametrize("rows, from_main_graph, lookahead, steps, debias", CASES, ids=[_case_id(*c) for c in CASES])
def test_adaptation_matches_per_sequence_reference(model_name, rows, from_main_graph, lookahead, steps, debias,
                                                   request, left_tokenizer, head, prompts):
    model = request.getfixturevalue(model_name)
    lr, tuned_layers = 0.05, 1
    config = UDDIAConfig(lr=lr, debias_weight=0.05 if debias else 0.0, debias_token_threshold=0.55,
                         lookahead_steps=lookahead, steps_per_token=steps, redo_ppl_threshold=None)
    gen = UDDIAGenerator(model, left_tokenizer, config, attribute_head=head)
    enc = left_tokenizer(prompts, return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    rows_t = torch.tensor(rows)
    with gen._frozen(), torch.no_grad(), gen.adapter.attached(tuned_layers) as num_params, gen.runner.capturing(), \
            gen.replay.active(gen.adapter.num_layers - tuned_layers):
        step = Adaptation(runner=gen.runner, adapter=gen.adapter, num_params=num_params, lr=lr, steps=steps,
                          lookahead=lookahead, head=head, debias=gen.debias, debias_weight=config.debias_weight,
                          replay=gen.replay)
        state = gen._prefill(ids, mask)
        if from_main_graph:  # one more token: the main pass runs with θ = 0 attached and its graph is reused
            nxt = torch.tensor([5, 7, 9, 11])
            gen._advance(state, nxt, num_params)
            assert state.graph is not None
            ids, mask = torch.cat([ids, nxt[:, None]], 1), torch.cat([mask, mask.new_ones(4, 1)], 1)
        else:
            assert state.graph is None
        ones = torch.ones(len(rows), dtype=torch.bool)
        log_ratio, theta, first_loss = step.run(state, rows_t, ones, ones if debias else ~ones)
        assert state.graph is None  # used once
    references = reference_step(gen, ids[rows_t], mask[rows_t], tuned_layers)
    for j, (r, ref) in enumerate(zip(rows, references)):
        torch.testing.assert_close(first_loss[j], ref.loss, rtol=1e-5, atol=1e-6)
        # θ1 = -lr·g/(|g|+ε) is ±lr wherever g is not ~0; where g is rounding noise (e.g. GPT-2's key biases,
        # whose true gradient is 0: softmax ignores a constant shift) its sign is arbitrary
        real = ref.grad.abs() > 1e-5 * ref.grad.abs().max()
        close = (theta[j] - ref.theta).abs() <= 1e-4 * lr
        assert bool(close[real].all()), f"row {r}: {int((~close[real]).sum())} of {int(real.sum())} tuned numbers differ"
        assert (theta[j].abs() > 0.9 * lr).float().mean() > 0.5  # a real step was taken
        torch.testing.assert_close(log_ratio[j], ref.log_ratio, rtol=1e-3, atol=1e-4)


def test_replay_runs_only_the_tuned_layers_and_restores_them(tiny_llama):
    """Replaying the untuned layers gives the same logits bit for bit, runs none of them, and puts the very
    same modules back, also when the pass raises."""
    from fairalign.decoding.uddia.replay import LowerLayerReplay

    model, layers = tiny_llama.eval(), tiny_llama.model.layers
    originals = list(layers)
    replay = LowerLayerReplay(layers)
    ids = torch.tensor([[3, 8, 5, 9]])
    kw = cache_kwarg(model)
    calls = []
    hook = layers[0].register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad(), replay.active(1):
        cache = DynamicCache(config=model.config)
        model(ids[:, :-1], **{kw: cache}, use_cache=True)
        with replay.recording():
            main = model(ids[:, -1:], **{kw: cache}, use_cache=True).logits
        from fairalign.decoding.uddia.cache import fork_prefix

        calls.clear()
        with replay.replaying(None):
            assert layers[0].self_attn is originals[0].self_attn  # attributes read through to the replaced layer
            replayed = model(ids[:, -1:], **{kw: fork_prefix(cache)}, use_cache=True).logits
        assert calls == []  # the untuned layer did not run
        assert torch.equal(replayed, main)
        with pytest.raises(RuntimeError, match="boom"), replay.replaying(None):
            raise RuntimeError("boom")
    hook.remove()
    assert list(layers) == originals and all(a is b for a, b in zip(layers, originals))
    assert not any(m._forward_hooks for m in model.modules())
