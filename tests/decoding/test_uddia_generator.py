"""UDDIAGenerator: equals model.generate when nothing is adapted, leaves the model bit-identical (redos, odd
T0/ΔT, exceptions), adapts each sequence on its own, keeps the KV cache intact; API types and helpers."""
import pytest
import torch

from fairalign.decoding import UDDIAConfig, UDDIAGenerateOutput, UDDIAGenerator

MODELS = ["tiny_gpt2", "tiny_llama"]


def _enc(tokenizer, prompts):
    return tokenizer(prompts, return_tensors="pt", padding=True)


def _snapshot(model):
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "modules": [(name, module) for name, module in model.named_modules()]}


def _assert_untouched(model, snapshot):
    from fairalign.decoding.uddia.offset import OffsetLayer

    state = model.state_dict()
    assert state.keys() == snapshot["state"].keys()
    for k, v in state.items():
        assert torch.equal(v, snapshot["state"][k]), k
    # the module tree is the original one, object for object (the offset adapter is unloaded)
    modules = list(model.named_modules())
    assert [n for n, _ in modules] == [n for n, _ in snapshot["modules"]]
    assert all(m is m0 for (_, m), (_, m0) in zip(modules, snapshot["modules"]))
    assert not any(isinstance(m, OffsetLayer) for m in model.modules())
    assert not any(m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("config", [UDDIAConfig(lr=0.0, redo_ppl_threshold=None),
                                    UDDIAConfig(trigger_threshold=1.0, debias_weight=0.0, redo_ppl_threshold=None)],
                         ids=["lr0", "never-triggers"])
@pytest.mark.parametrize("do_sample", [False, True])
def test_equals_plain_generate_when_nothing_is_adapted(model_name, config, do_sample, request, left_tokenizer, head, prompts):
    model = request.getfixturevalue(model_name)
    enc = _enc(left_tokenizer, prompts)
    kwargs = dict(max_new_tokens=10, do_sample=do_sample, pad_token_id=left_tokenizer.pad_token_id)
    if do_sample:
        kwargs.update(top_p=0.9, temperature=0.8)
    torch.manual_seed(123)
    expected = model.generate(**enc, **kwargs)
    gen = UDDIAGenerator(model, left_tokenizer, config, attribute_head=head)
    torch.manual_seed(123)
    out = gen.generate(**enc, **kwargs, return_dict_in_generate=True)
    assert torch.equal(out.sequences, expected)
    if config.lr == 0:
        assert (out.adapted_steps > 0).all()  # the machinery ran, and changed nothing


@pytest.mark.parametrize("model_name", MODELS)
def test_adaptation_changes_output_and_leaves_model_bit_identical(model_name, request, left_tokenizer, head, prompts):
    model = request.getfixturevalue(model_name)
    snapshot = _snapshot(model)
    enc = _enc(left_tokenizer, prompts)
    plain = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=left_tokenizer.pad_token_id)
    gen = UDDIAGenerator(model, left_tokenizer, UDDIAConfig(lr=0.3, redo_ppl_threshold=None), attribute_head=head)
    out = gen.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=left_tokenizer.pad_token_id)
    assert out.shape == plain.shape and not torch.equal(out, plain)
    _assert_untouched(model, snapshot)


@pytest.mark.parametrize("layers, t0, dt", [(2, 2, 1), (5, 5, 2), (5, 4, 3)])
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_forced_redos_with_odd_t0_and_dt_restore_everything(layers, t0, dt, family, left_tokenizer, head, prompts):
    from fairalign.align import testing

    model = getattr(testing, f"tiny_{family}")(num_layers=layers)
    snapshot = _snapshot(model)
    # threshold barely above 1: every continuation is "too perplexing", so every T in the schedule runs
    config = UDDIAConfig(num_tuned_layers=t0, redo_layer_step=dt, redo_ppl_threshold=1.0001)
    gen = UDDIAGenerator(model, left_tokenizer, config, attribute_head=head)
    out = gen.generate(**_enc(left_tokenizer, prompts[:2]), max_new_tokens=5, do_sample=True,
                       pad_token_id=left_tokenizer.pad_token_id, return_dict_in_generate=True)
    schedule = list(range(t0, 0, -dt))
    assert out.attempts.tolist() == [len(schedule)] * 2
    assert set(out.tuned_layers.tolist()) <= set(schedule)
    _assert_untouched(model, snapshot)
    # and the model still generates exactly what it generated before
    torch.manual_seed(0)
    a = model.generate(**_enc(left_tokenizer, prompts), max_new_tokens=6, do_sample=False)
    fresh = getattr(testing, f"tiny_{family}")(num_layers=layers)
    b = fresh.generate(**_enc(left_tokenizer, prompts), max_new_tokens=6, do_sample=False)
    assert torch.equal(a, b)


def test_redo_returns_the_lowest_perplexity_attempt(tiny_gpt2, left_tokenizer, head, prompts):
    gen = UDDIAGenerator(tiny_gpt2, left_tokenizer, UDDIAConfig(num_tuned_layers=2, redo_layer_step=1,
                                                                redo_ppl_threshold=1.0001), attribute_head=head)
    out = gen.generate(**_enc(left_tokenizer, prompts), max_new_tokens=6, do_sample=True,
                       pad_token_id=left_tokenizer.pad_token_id, return_dict_in_generate=True)
    # recompute each returned continuation's perplexity under the unadapted model, independently
    seqs, width = out.sequences, _enc(left_tokenizer, prompts)["input_ids"].shape[1]
    mask = _enc(left_tokenizer, prompts)["attention_mask"]
    for row in range(len(prompts)):
        n = int(out.generated_tokens[row])
        ids = seqs[row : row + 1, : width + n]
        m = torch.cat([mask[row : row + 1], torch.ones(1, n, dtype=torch.long)], dim=1)
        pos = (m.cumsum(-1) - 1).clamp_min(0)
        with torch.no_grad():
            logp = torch.log_softmax(tiny_gpt2(ids, attention_mask=m, position_ids=pos).logits[0, width - 1 : -1], -1)
        nll = -logp.gather(1, ids[0, width:, None]).mean()
        assert abs(float(torch.exp(nll)) - float(out.perplexity[row])) < 1e-3 * float(out.perplexity[row])


@pytest.mark.parametrize("model_name", MODELS)
def test_exception_mid_generation_restores_the_model(model_name, request, left_tokenizer, head, prompts, monkeypatch):
    from fairalign.decoding.uddia.step import Adaptation

    model = request.getfixturevalue(model_name)
    snapshot = _snapshot(model)
    gen = UDDIAGenerator(model, left_tokenizer, UDDIAConfig(), attribute_head=head)
    calls = {"n": 0}
    original = Adaptation.losses

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Adaptation, "losses", failing)
    with pytest.raises(RuntimeError, match="boom"):
        gen.generate(**_enc(left_tokenizer, prompts), max_new_tokens=6, do_sample=True)
    assert gen.adapter.offsets is None
    _assert_untouched(model, snapshot)
    monkeypatch.setattr(Adaptation, "losses", original)
    assert gen.generate(**_enc(left_tokenizer, prompts), max_new_tokens=3).shape[0] == len(prompts)


@pytest.mark.parametrize("model_name", MODELS)
def test_batch_rows_are_adapted_independently(model_name, request, left_tokenizer, head, prompts):
    """Greedy: a prompt's UDDIA output alone equals its output in a left-padded batch."""
    model = request.getfixturevalue(model_name)
    gen = UDDIAGenerator(model, left_tokenizer, UDDIAConfig(lr=0.2, redo_ppl_threshold=None), attribute_head=head)
    kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=left_tokenizer.pad_token_id)
    enc = _enc(left_tokenizer, prompts)
    batch = gen.generate(**enc, **kwargs, return_dict_in_generate=True)
    assert (batch.adapted_steps > 0).all()
    width = enc["input_ids"].shape[1]
    for row, prompt in enumerate(prompts):
        alone = gen.generate(**_enc(left_tokenizer, [prompt]), **kwargs)
        n = alone.shape[1] - _enc(left_tokenizer, [prompt])["input_ids"].shape[1]
        assert torch.equal(batch.sequences[row, width : width + n], alone[0, -n:]), prompt


@pytest.mark.parametrize("model_name", MODELS)
def test_kv_cache_is_not_lengthened_or_corrupted(model_name, request, left_tokenizer, head, prompts, monkeypatch):
    """After every adapted step the main cache holds exactly the unadapted model's keys/values of the tokens
    so far: same length as the sequence, same numbers as a fresh forward."""
    from fairalign.decoding.uddia import generator as gmod

    model = request.getfixturevalue(model_name)
    gen = UDDIAGenerator(model, left_tokenizer, UDDIAConfig(lr=0.3, redo_ppl_threshold=None), attribute_head=head)
    seen = []
    original = gmod.UDDIAGenerator._advance

    def spy(self, state, tokens, *args):
        original(self, state, tokens, *args)
        # the main pass runs with θ = 0 attached (it doubles as the adapted pass): its graph must not stay in the cache
        assert not any(layer.keys.requires_grad or layer.values.requires_grad for layer in state.cache.layers)
        seen.append((state.cache, state.cache.get_seq_length(), state.mask))

    monkeypatch.setattr(gmod.UDDIAGenerator, "_advance", spy)
    enc = _enc(left_tokenizer, prompts)
    out = gen.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=left_tokenizer.pad_token_id)
    width = enc["input_ids"].shape[1]
    assert [length for _, length, _ in seen] == list(range(width + 1, width + len(seen) + 1))
    cache, length, mask = seen[-1]
    from transformers import DynamicCache

    fresh = DynamicCache(config=model.config)
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    with torch.no_grad():
        model(out[:, :length], attention_mask=mask, position_ids=pos, **{gen.runner.cache_kwarg: fresh})
    for ours, ref in zip(cache.layers, fresh.layers):
        valid = mask.bool()[:, None, :, None]
        torch.testing.assert_close(ours.keys * valid, ref.keys * valid, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours.values * valid, ref.values * valid, rtol=1e-4, atol=1e-5)


def test_num_return_sequences_and_output_types(tiny_llama, left_tokenizer, head, prompts):
    gen = UDDIAGenerator(tiny_llama, left_tokenizer, UDDIAConfig(redo_ppl_threshold=None), attribute_head=head)
    enc = _enc(left_tokenizer, prompts[:2])
    seqs = gen.generate(**enc, max_new_tokens=4, do_sample=True, num_return_sequences=3)
    assert isinstance(seqs, torch.Tensor) and seqs.shape[0] == 6
    assert torch.equal(seqs[:3, : enc["input_ids"].shape[1]], enc["input_ids"][[0, 0, 0]])  # prompt kept, left pads too
    out = gen.generate(**enc, max_new_tokens=4, return_dict_in_generate=True, output_scores=True, output_logits=True)
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    assert isinstance(out, UDDIAGenerateOutput) and isinstance(out, GenerateDecoderOnlyOutput)
    assert len(out.scores) == out.sequences.shape[1] - enc["input_ids"].shape[1] == len(out.logits)
    assert out.scores[0].shape == (2, len(left_tokenizer))
    g = torch.Generator().manual_seed(5)
    a = gen.generate(**enc, max_new_tokens=5, do_sample=True, generator=g)
    b = gen.generate(**enc, max_new_tokens=5, do_sample=True, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_pipeline_helper_context_manager_and_hflm(tiny_gpt2, left_tokenizer, head):
    from fairalign.eval.lm import as_lm

    with UDDIAGenerator(tiny_gpt2, left_tokenizer, UDDIAConfig(redo_ppl_threshold=None), attribute_head=head) as gen:
        one = gen("Hello world", max_new_tokens=4, do_sample=False)
        assert isinstance(one, list) and one[0]["generated_text"].startswith("Hello world")
        many = gen(["The man", "What is"], max_new_tokens=4, num_return_sequences=2, return_full_text=False, do_sample=True)
        assert len(many) == 2 and len(many[0]) == 2 and isinstance(many[1][1]["generated_text"], str)
        lm = as_lm(gen)
        outs = lm.generate(["The man", "What is", "Hello"], num_samples=2, max_new_tokens=4, top_p=0.9, seed=0)
        assert [len(o) for o in outs] == [2, 2, 2]
        assert lm.scoring_model is tiny_gpt2
        assert len(lm.loglikelihood([("The man", " works")])) == 1


def test_bad_inputs_are_clear_errors(tiny_llama, left_tokenizer, head):
    enc = _enc(left_tokenizer, ["Hello"])
    gen = UDDIAGenerator(tiny_llama, left_tokenizer, UDDIAConfig(), attribute_head=head)
    with pytest.raises(ValueError, match="num_beams"):
        gen.generate(**enc, num_beams=2)
    with pytest.raises(ValueError, match="does not support"):
        gen.generate(**enc, streamer=object())
    with pytest.raises(ValueError, match="redo"):
        gen.generate(**enc, return_dict_in_generate=True, output_scores=True)
    with pytest.raises(ValueError, match="target_class"):
        UDDIAGenerator(tiny_llama, left_tokenizer, UDDIAConfig(target_class=5), attribute_head=head)
    with pytest.raises(ValueError, match="attribute_head"):
        UDDIAGenerator(tiny_llama, left_tokenizer, UDDIAConfig(debias_weight=0.0))
    from fairalign.decoding.heads import random_head

    with pytest.raises(ValueError, match="hidden size"):
        UDDIAGenerator(tiny_llama, left_tokenizer, UDDIAConfig(), attribute_head=random_head(64))


def test_trigger_pooling_and_threshold(tiny_llama, left_tokenizer, head, prompts):
    from fairalign.decoding.uddia.step import DecodeState

    z = torch.zeros(1, 2)
    state = DecodeState(cache=None, mask=None, positions=None, current=None, logits=None, hidden=torch.tensor([[4.0, 0.0]]),
                        context_sum=torch.tensor([[2.0, 6.0]]), context_count=torch.tensor([2.0]), embed_sum=z,
                        embed_count=torch.tensor([1.0]), generated_sum=torch.tensor([[2.0, 2.0]]),
                        generated_count=torch.tensor([1.0]))
    torch.testing.assert_close(state.pooled("context"), torch.tensor([[2.0, 2.0]]))  # (2+4, 6+0) / 3
    torch.testing.assert_close(state.pooled("continuation"), torch.tensor([[3.0, 1.0]]))  # (2+4, 2+0) / 2
    enc = _enc(left_tokenizer, prompts)
    kwargs = dict(max_new_tokens=5, do_sample=False, pad_token_id=left_tokenizer.pad_token_id, return_dict_in_generate=True)
    always = UDDIAGenerator(tiny_llama, left_tokenizer, UDDIAConfig(trigger_threshold=0.0, redo_ppl_threshold=None,
                                                                   debias_weight=0.0), attribute_head=head).generate(**enc, **kwargs)
    every = UDDIAGenerator(tiny_llama, left_tokenizer, UDDIAConfig(redo_ppl_threshold=None, debias_weight=0.0),
                           attribute_head=head).generate(**enc, **kwargs)
    assert torch.equal(always.adapted_steps, always.generated_tokens)  # p(unwanted) > 0 always
    assert torch.equal(always.sequences, every.sequences)


def test_lora_peft_model_generates_and_is_left_as_it_was(tiny_llama, left_tokenizer, head, prompts):
    """Nested PEFT: the offset adapter goes into a LoRA PeftModel's base model and comes out again, leaving the
    LoRA layers, the PeftModel's adapters/config and every weight as they were."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(tiny_llama, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    with torch.no_grad():  # a LoRA that does something (lora_B starts at zero)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.5)
    peft_model.eval()
    for p in peft_model.parameters():  # get_peft_model froze the base weights; _assert_untouched wants all on
        p.requires_grad_(True)
    configs = peft_model.peft_config
    snapshot = _snapshot(peft_model)
    enc = _enc(left_tokenizer, prompts)
    kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=left_tokenizer.pad_token_id)
    plain = peft_model.generate(**enc, **kwargs)
    gen = UDDIAGenerator(peft_model, left_tokenizer, UDDIAConfig(lr=0.0, redo_ppl_threshold=None), attribute_head=head)
    assert torch.equal(gen.generate(**enc, **kwargs), plain)  # lr = 0 through LoRA + offsets: bit for bit
    gen = UDDIAGenerator(peft_model, left_tokenizer, UDDIAConfig(lr=0.3, redo_ppl_threshold=None), attribute_head=head)
    assert not torch.equal(gen.generate(**enc, **kwargs), plain)
    _assert_untouched(peft_model, snapshot)
    assert peft_model.peft_config is configs and list(configs) == ["default"]
    assert peft_model.get_base_model().peft_config is configs
    assert torch.equal(peft_model.generate(**enc, **kwargs), plain)
