"""One adaptation step against an independent computation.

The reference below re-derives UDDIA's step for one sequence at a time from fresh forwards: the prefix without
offsets, the current token with θ, the look-ahead on the expected embedding, the detox cross-entropy on the mean
final hidden state, Adam's closed-form first step θ1 = -lr · g / (|g| + ε), and the tuned pass. The implementation
batches rows, takes the θ = 0 adapted pass from the main pass's graph (`MainGraph`), forks the cache, skips the
look-ahead's LM head and splits θ across sites: none of which the reference does."""
import inspect

import pytest
import torch
import torch.nn.functional as F
from transformers import DynamicCache

from fairalign.decoding import UDDIAConfig, UDDIAGenerator
from fairalign.decoding.uddia.step import Adaptation

EPS = 1e-8


def _cache_kwarg(model) -> dict:
    """`cache=` (transformers >= 5.x) or `past_key_values=` (earlier), as the model's forward names it."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _final_hidden_and_logits(model, cache, **kwargs):
    """(final hidden states (1, T, d) after the final norm and its offset, logits (1, T, V)) of one forward."""
    out = model.base_model(**kwargs, **{_cache_kwarg(model.base_model): cache}, use_cache=True)
    hidden = out.last_hidden_state
    return hidden, model.lm_head(hidden).float()


def reference_step(gen, ids, mask, lr, lookahead, target=0):
    """UDDIA's adaptation of the last token of ids (1, L) (left-padded by mask), from scratch."""
    model, adapter, head = gen.model, gen.adapter, gen.attribute_head
    emb = model.get_input_embeddings().weight
    pos = (mask.cumsum(-1) - 1).clamp_min(0)

    def prefix_cache():
        cache = DynamicCache(config=model.config)
        adapter.offsets = None
        h, _ = _final_hidden_and_logits(model, input_ids=ids[:, :-1], attention_mask=mask[:, :-1],
                                        position_ids=pos[:, :-1], cache=cache)
        return cache, h

    def current(theta, cache):
        adapter.offsets = theta
        return _final_hidden_and_logits(model, input_ids=ids[:, -1:], attention_mask=mask, position_ids=pos[:, -1:],
                                        cache=cache)

    num_params = sum(adapter.store.sizes)
    theta = torch.zeros(1, num_params, requires_grad=True)
    with torch.enable_grad():
        cache, h_prefix = prefix_cache()
        h_t, logits = current(theta, cache)
        ref_logits = logits[:, -1].detach()
        valid = mask[:, :-1].float()
        pooled_sum, count = (h_prefix * valid[..., None]).sum(1) + h_t[:, -1], valid.sum() + 1
        m, p = mask, torch.softmax(logits[:, -1], -1)
        for k in range(lookahead):
            m = torch.cat([m, m.new_ones(1, 1)], dim=1)
            h_la, la_logits = _final_hidden_and_logits(model, inputs_embeds=(p @ emb)[:, None], attention_mask=m,
                                                       position_ids=pos[:, -1:] + k + 1, cache=cache)
            pooled_sum, count = pooled_sum + h_la[:, -1], count + 1
            p = torch.softmax(la_logits[:, -1], -1)
        loss = F.cross_entropy(head(pooled_sum / count).float(), torch.tensor([target]))
        (grad,) = torch.autograd.grad(loss, theta)
    theta1 = -lr * grad / (grad.abs() + EPS)  # Adam's first step from a fresh state
    with torch.no_grad():
        cache, _ = prefix_cache()
        _, tuned = current(theta1, cache)
    adapter.offsets = None
    return torch.log_softmax(tuned[:, -1], -1) - torch.log_softmax(ref_logits, -1), theta1, loss.detach(), grad


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
@pytest.mark.parametrize("rows", [[0, 1, 2, 3], [0, 2]], ids=["all-rows", "sub-batch"])
@pytest.mark.parametrize("from_main_graph", [True, False], ids=["main-pass-graph", "separate-pass"])
@pytest.mark.parametrize("lookahead", [1, 2, 0])
def test_adaptation_matches_per_sequence_reference(model_name, rows, from_main_graph, lookahead, request,
                                                   left_tokenizer, head, prompts):
    model = request.getfixturevalue(model_name)
    lr, tuned_layers = 0.05, 1
    gen = UDDIAGenerator(model, left_tokenizer, UDDIAConfig(lr=lr, debias_weight=0.0, lookahead_steps=lookahead,
                                                             redo_ppl_threshold=None), attribute_head=head)
    enc = left_tokenizer(prompts, return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    rows_t = torch.tensor(rows)
    with gen._frozen(), torch.no_grad(), gen.adapter.attached(tuned_layers) as num_params, gen.runner.capturing():
        step = Adaptation(gen.runner, gen.adapter, num_params, lr, 1, lookahead, head, 0, None, 0.0)
        state = gen._prefill(ids, mask)
        if from_main_graph:  # one more token: the main pass runs with θ = 0 attached and its graph is reused
            nxt = torch.tensor([5, 7, 9, 11])
            gen._advance(state, nxt, num_params)
            assert state.graph is not None
            ids, mask = torch.cat([ids, nxt[:, None]], 1), torch.cat([mask, mask.new_ones(4, 1)], 1)
        else:
            assert state.graph is None
        ones = torch.ones(len(rows), dtype=torch.bool)
        log_ratio, theta, first_loss = step.run(state, rows_t, ones, ~ones)
        assert state.graph is None  # used once
        for j, r in enumerate(rows):
            ref_ratio, ref_theta, ref_loss, ref_grad = reference_step(gen, ids[r : r + 1], mask[r : r + 1], lr, lookahead)
            torch.testing.assert_close(first_loss[j], ref_loss[()], rtol=1e-5, atol=1e-6)
            # θ1 = -lr·g/(|g|+ε) is ±lr wherever g is not ~0; where g is rounding noise (e.g. GPT-2's key biases,
            # whose true gradient is 0: softmax ignores a constant shift) its sign is arbitrary
            real = ref_grad[0].abs() > 1e-5 * ref_grad.abs().max()
            close = (theta[j] - ref_theta[0]).abs() <= 1e-4 * lr
            assert bool(close[real].all()), f"row {r}: {int((~close[real]).sum())} of {int(real.sum())} tuned numbers differ"
            assert (theta[j].abs() > 0.9 * lr).float().mean() > 0.5  # a real step was taken
            torch.testing.assert_close(log_ratio[j], ref_ratio[0], rtol=1e-3, atol=1e-4)


def test_replay_runs_only_the_tuned_layers_and_restores_them(tiny_llama):
    """Replaying the untuned layers gives the same logits bit for bit, runs none of them, and puts the very
    same modules back, also when the pass raises."""
    from fairalign.decoding.uddia.replay import LowerLayerReplay

    model, layers = tiny_llama.eval(), tiny_llama.model.layers
    originals = list(layers)
    replay = LowerLayerReplay(layers)
    ids = torch.tensor([[3, 8, 5, 9]])
    kw = _cache_kwarg(model)
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
