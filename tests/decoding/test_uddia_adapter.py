"""OffsetAdapter: the tuned set (hand-counted), offsets == bias tuning, zero offsets == base model bit for bit,
per-row independence, the PEFT adapter unloaded afterwards (module tree object for object, LoRA PeftModels
included); adam_step == torch.optim.Adam."""
import pytest
import torch

from fairalign.decoding.uddia.offset import OffsetAdapter
from fairalign.decoding.uddia.optim import adam_step


def _ids(n=2, length=5, vocab=300, seed=0):
    return torch.randint(3, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def test_gpt2_tunes_bias_terms_of_upper_layers(tiny_gpt2):
    adapter = OffsetAdapter(tiny_gpt2, "auto")
    assert adapter.tuned_params == "bias"
    names = [name for name, _, _ in adapter.select(1)]
    # upper layer only: c_attn (3d) + attn.c_proj (d) + c_fc (4d) + mlp.c_proj (d) + ln_1 β (d) + ln_2 β (d), + ln_f β
    assert all(".h.1." in n for n in names[:-1]) and names[-1] == "transformer.ln_f"
    with adapter.attached(1) as p:
        assert p == 3 * 32 + 32 + 4 * 32 + 32 + 32 + 32 + 32
    with adapter.attached(2) as p2:
        assert p2 == 2 * (3 * 32 + 32 + 4 * 32 + 32 + 32 + 32) + 32


def test_llama_gets_offsets_on_every_linear_and_norm(tiny_llama):
    adapter = OffsetAdapter(tiny_llama, "auto")
    assert adapter.tuned_params == "offsets"
    # q 32 + k 16 + v 16 (2 kv heads x 8) + o 32 + gate 64 + up 64 + down 32 + 2 RMSNorms 32 each, + final norm 32
    with adapter.attached(1) as p:
        assert p == 32 + 16 + 16 + 32 + 64 + 64 + 32 + 32 + 32 + 32
    with pytest.raises(ValueError, match="tuned_params='bias'"):
        OffsetAdapter(tiny_llama, "bias")


def test_offset_equals_bias_shift(tiny_gpt2):
    """Adding δ to c_fc's output is tuning c_fc.bias by δ (the paper's parameterisation)."""
    ids = _ids()
    adapter = OffsetAdapter(tiny_gpt2, "bias")
    with torch.no_grad(), adapter.attached(1) as num_params:
        site = next(s for s in adapter.sites if s.name.endswith("h.1.mlp.c_fc"))
        offsets = torch.zeros(2, num_params)
        delta = torch.randn(2, site.stop - site.start, generator=torch.Generator().manual_seed(3))
        offsets[:, site.start : site.stop] = delta
        adapter.offsets = offsets
        hooked = tiny_gpt2(ids).logits
    expected = []
    with torch.no_grad():
        bias = tiny_gpt2.transformer.h[1].mlp.c_fc.bias
        original = bias.clone()
        for row in range(2):
            bias.copy_(original + delta[row])
            expected.append(tiny_gpt2(ids[row : row + 1]).logits)
        bias.copy_(original)
    torch.testing.assert_close(hooked, torch.cat(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
def test_zero_offsets_are_the_base_model_and_rows_are_independent(model_name, request):
    model = request.getfixturevalue(model_name)
    ids = _ids(3)
    with torch.no_grad():
        base = model(ids).logits
        adapter = OffsetAdapter(model, "auto")
        with adapter.attached(2) as p:
            adapter.offsets = torch.zeros(3, p)
            assert torch.equal(model(ids).logits, base)  # bit for bit
            offsets = torch.zeros(3, p)
            offsets[1] = 0.5
            adapter.offsets = offsets
            moved = model(ids).logits
        assert torch.equal(moved[0], base[0]) and torch.equal(moved[2], base[2])
        assert not torch.allclose(moved[1], base[1])
        assert torch.equal(model(ids).logits, base)


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
def test_adapter_is_a_peft_tuner_injected_and_unloaded(model_name, request):
    """While attached, every tuned module is wrapped in a PEFT tuner layer (OffsetLayer); on exit, normal or by an
    exception, the module tree is the original one, object for object, and no peft_config is left behind."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    from fairalign.decoding.uddia.offset import OffsetLayer

    model = request.getfixturevalue(model_name)
    before = list(model.named_modules())
    adapter = OffsetAdapter(model, "auto")
    with adapter.attached(2):
        for site in adapter.sites:
            layer = model.get_submodule(site.name)
            assert isinstance(layer, OffsetLayer) and isinstance(layer, BaseTunerLayer)
            assert layer.base_layer is site.module
    with pytest.raises(RuntimeError, match="boom"), adapter.attached(1):
        raise RuntimeError("boom")
    after = list(model.named_modules())
    assert [n for n, _ in after] == [n for n, _ in before]
    assert all(m is m0 for (_, m), (_, m0) in zip(after, before))
    assert "peft_config" not in model.__dict__ and adapter.offsets is None


def test_lora_wrapped_model_is_one_site(tiny_llama):
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(tiny_llama, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    adapter = OffsetAdapter(peft_model, "auto")
    names = [name for name, _, _ in adapter.select(1)]
    assert not any("lora_" in n or n.endswith("base_layer") for n in names)
    assert any(n.endswith("self_attn.q_proj") for n in names)
    configs, before = peft_model.peft_config, list(peft_model.named_modules())
    with adapter.attached(1) as p:
        assert p == 32 + 16 + 16 + 32 + 64 + 64 + 32 + 32 + 32 + 32
        q_proj = next(s for s in adapter.sites if s.name.endswith("self_attn.q_proj"))
        assert peft_model.get_submodule(q_proj.name).base_layer is q_proj.module  # the LoRA layer, whole
        assert list(peft_model.peft_config) == ["default"]
    after = list(peft_model.named_modules())
    assert [n for n, _ in after] == [n for n, _ in before] and all(m is m0 for (_, m), (_, m0) in zip(after, before))
    assert peft_model.peft_config is configs and list(configs) == ["default"]
    assert peft_model.get_base_model().peft_config is configs


def test_adam_step_matches_torch_adam():
    g = torch.Generator().manual_seed(0)
    theta = torch.zeros(3, 7)
    ref = torch.zeros(3, 7, requires_grad=True)
    opt = torch.optim.Adam([ref], lr=0.06)
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    for step in range(1, 4):
        grad = torch.randn(3, 7, generator=g)
        adam_step(theta, grad, m, v, step, lr=0.06)
        ref.grad = grad.clone()
        opt.step()
        torch.testing.assert_close(theta, ref.detach(), rtol=1e-6, atol=1e-7)
    # a fresh first step moves every number by lr · g / (|g| + ε) ≈ ±lr
    theta, m, v = torch.zeros(4), torch.zeros(4), torch.zeros(4)
    adam_step(theta, torch.tensor([2.0, -0.5, 1e-3, -7.0]), m, v, 1, lr=0.06)
    torch.testing.assert_close(theta, torch.tensor([-0.06, 0.06, -0.06, 0.06]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
def test_captured_final_hidden_state_is_hidden_states_last(model_name, request):
    """The runner's final-norm capture equals outputs.hidden_states[-1], offsets included (heads read both)."""
    from transformers import DynamicCache

    from fairalign.decoding.uddia.step import ModelRunner

    model = request.getfixturevalue(model_name)
    ids = _ids(2)
    pos = torch.arange(ids.shape[1]).expand_as(ids)
    adapter = OffsetAdapter(model, "auto")
    runner = ModelRunner(model, adapter.final_norm[0])
    with torch.no_grad(), adapter.attached(2) as p:
        adapter.offsets = torch.randn(2, p, generator=torch.Generator().manual_seed(0)) * 0.1
        ref = model(ids, output_hidden_states=True)
        with runner.capturing():
            logits, hidden = runner(DynamicCache(config=model.config), None, pos, input_ids=ids)
    torch.testing.assert_close(hidden, ref.hidden_states[-1])
    torch.testing.assert_close(logits, ref.logits[:, -1])
