"""Target discovery: every TARGETS entry against a model of that architecture built from its config (on the meta
device: no weights, milliseconds), equal to the generic rules; unmapped architectures fall back with one
warning whose printed entry, once added, gives the same sites; a wrong entry is a clear error."""
import dataclasses
import warnings

import pytest
import torch

from fairalign.decoding.uddia.offset import TARGETS, OffsetAdapter
from fairalign.decoding.uddia.offset.targets import (find_decoder_layers, find_final_norm, generic_block_sites,
                                                     guess_targets, has_bias)

# config overrides that switch on a mapped module some configs leave out
VARIANTS = [(t, {}) for t in TARGETS] + [("phi", {"qk_layernorm": True}), ("opt", {"do_layer_norm_before": False})]


def _meta_model(model_type, **overrides):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, **overrides)
    config.get_text_config().num_hidden_layers = 2
    with torch.device("meta"):
        if model_type == "gemma3":  # the multimodal model; its text decoder sits under model.language_model
            from transformers import Gemma3ForConditionalGeneration

            return Gemma3ForConditionalGeneration(config)
        return AutoModelForCausalLM.from_config(config)


def _sites(adapter):
    return [[(name, dim) for name, _, dim in sites] for sites in adapter.per_layer]


@pytest.mark.parametrize("model_type, overrides", VARIANTS, ids=[f"{t}-{'-'.join(o) or 'default'}" for t, o in VARIANTS])
def test_mapping_matches_the_model_and_the_generic_rules(model_type, overrides):
    model = _meta_model(model_type, **overrides)
    assert model.config.model_type == model_type
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a mapped architecture does not warn
        adapter = OffsetAdapter(model, "offsets")
    layers_name, layers = find_decoder_layers(model)
    assert (adapter.layers_name, adapter.layers) == (layers_name, layers)
    assert adapter.final_norm == find_final_norm(model, layers_name)
    generic = [[(n, d) for n, _, d in generic_block_sites(f"{layers_name}.{i}", b)] for i, b in enumerate(layers)]
    assert _sites(adapter) == generic and all(generic)
    if OffsetAdapter(model, "auto").tuned_params == "bias":  # the LayerNorm-with-β families
        bias_only = [[(n, d) for n, m, d in generic_block_sites(f"{layers_name}.{i}", b) if has_bias(m)]
                     for i, b in enumerate(layers)]
        assert _sites(OffsetAdapter(model, "bias")) == bias_only


def test_unmapped_architecture_warns_once_and_its_printed_entry_gives_the_same_sites(monkeypatch):
    model = _meta_model("starcoder2")
    assert "starcoder2" not in TARGETS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapter = OffsetAdapter(model, "auto")
    assert len(caught) == 1
    message, guess = str(caught[0].message), guess_targets(model)
    for part in ("model_type='starcoder2'", "'model.layers'", "'model.norm'", "8 tuned modules per block",
                 f"TARGETS['starcoder2'] = {guess!r}"):
        assert part in message
    assert guess.block == ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                           "mlp.c_fc", "mlp.c_proj", "input_layernorm", "post_attention_layernorm")
    monkeypatch.setitem(TARGETS, "starcoder2", guess)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mapped = OffsetAdapter(model, "auto")
    assert _sites(mapped) == _sites(adapter) and mapped.final_norm == adapter.final_norm
    assert mapped.tuned_params == adapter.tuned_params == "bias"


@pytest.mark.parametrize("change, message", [
    ({"layers": "model.blocks"}, r"TARGETS\['llama'\]\.layers='model\.blocks' is not a module of LlamaForCausalLM"),
    ({"final_norm": "model.final_norm"}, r"TARGETS\['llama'\]\.final_norm='model\.final_norm' is not a module"),
    ({"layers": "model.norm"}, r"is a LlamaRMSNorm, not a ModuleList"),
    ({"block": ("mlp.gate", "input_layernorm")}, r"TARGETS\['llama'\]\.block names \['mlp\.gate'\], which model\.layers\.0"),
    ({"block": ("mlp",)}, r"tunes model\.layers\.0\.mlp, a LlamaMLP whose output size is unknown"),
], ids=["layers-missing", "final-norm-missing", "layers-not-a-modulelist", "block-name-missing", "block-name-untunable"])
def test_a_wrong_entry_is_an_error_naming_it(change, message, monkeypatch):
    model = _meta_model("llama")
    monkeypatch.setitem(TARGETS, "llama", dataclasses.replace(TARGETS["llama"], **change))
    with pytest.raises(ValueError, match=message):
        OffsetAdapter(model, "auto")


def test_a_model_without_the_mapped_path_is_an_error():
    """The base model (no LM head) has `layers`, not `model.layers`: an error, not a silent guess."""
    from transformers import LlamaConfig, LlamaModel

    with torch.device("meta"):
        model = LlamaModel(LlamaConfig(num_hidden_layers=2))
    with pytest.raises(ValueError, match=r"TARGETS\['llama'\]\.layers='model\.layers' is not a module of LlamaModel"):
        OffsetAdapter(model, "auto")
