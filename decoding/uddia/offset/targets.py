"""Where UDDIA's tuned modules are: the decoder blocks, the final norm and the tuned modules inside a block.

Known architectures are looked up in `TARGETS`, keyed by `config.model_type`, with paths relative to the
causal LM (e.g. `LlamaForCausalLM`; for a PeftModel, its base model). A mapped path the model lacks is an
error. Other architectures fall back to a generic guess (the outermost ModuleList with `num_hidden_layers`
entries, a norm beside it, every linear and norm module of a block), with one warning that prints the guessed
entry so that it can be checked and added to `TARGETS`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ArchitectureTargets:
    """One architecture's entry: paths from the causal LM, and the module names tuned inside each block."""

    layers: str  # the ModuleList of decoder blocks
    final_norm: str | None  # the norm after the last block (None: the architecture has none)
    block: tuple[str, ...]  # linear projections and norms inside a block, relative to the block
    optional: tuple[str, ...] = ()  # names in `block` or `final_norm` that some configs leave out


_LLAMA = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm")
_QK_NORM = ("self_attn.q_norm", "self_attn.k_norm")
_GEMMA2 = _LLAMA + ("pre_feedforward_layernorm", "post_feedforward_layernorm")
_GEMMA3 = _GEMMA2 + _QK_NORM

TARGETS: dict[str, ArchitectureTargets] = {
    "llama": ArchitectureTargets("model.layers", "model.norm", _LLAMA),  # SmolLM / SmolLM2 too
    "smollm3": ArchitectureTargets("model.layers", "model.norm", _LLAMA),
    "mistral": ArchitectureTargets("model.layers", "model.norm", _LLAMA),
    "qwen2": ArchitectureTargets("model.layers", "model.norm", _LLAMA),
    "qwen3": ArchitectureTargets("model.layers", "model.norm", _LLAMA + _QK_NORM),
    "gemma": ArchitectureTargets("model.layers", "model.norm", _LLAMA),
    "gemma2": ArchitectureTargets("model.layers", "model.norm", _GEMMA2),
    "gemma3_text": ArchitectureTargets("model.layers", "model.norm", _GEMMA3),
    "gemma3": ArchitectureTargets("model.language_model.layers", "model.language_model.norm", _GEMMA3),
    "olmo2": ArchitectureTargets("model.layers", "model.norm",
                                 tuple(n for n in _LLAMA if n != "input_layernorm") + _QK_NORM
                                 + ("post_feedforward_layernorm",)),
    "phi": ArchitectureTargets("model.layers", "model.final_layernorm",
                               ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.dense",
                                "self_attn.q_layernorm", "self_attn.k_layernorm", "mlp.fc1", "mlp.fc2",
                                "input_layernorm"),
                               optional=("self_attn.q_layernorm", "self_attn.k_layernorm")),  # qk_layernorm=True
    "phi3": ArchitectureTargets("model.layers", "model.norm",
                                ("self_attn.o_proj", "self_attn.qkv_proj", "mlp.gate_up_proj", "mlp.down_proj",
                                 "input_layernorm", "post_attention_layernorm")),
    "gpt2": ArchitectureTargets("transformer.h", "transformer.ln_f",
                                ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj")),
    "opt": ArchitectureTargets("model.decoder.layers", "model.decoder.final_layer_norm",
                               ("self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj", "self_attn.out_proj",
                                "self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"),
                               optional=("model.decoder.final_layer_norm",)),  # none with do_layer_norm_before=False
    "gpt_neox": ArchitectureTargets("gpt_neox.layers", "gpt_neox.final_layer_norm",
                                    ("input_layernorm", "post_attention_layernorm", "attention.query_key_value",
                                     "attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h")),
}


# ------------------------------------------------------------------ module kinds
def is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"  # transformers' GPT-2 Conv1D


def is_norm(module: nn.Module) -> bool:
    return "norm" in type(module).__name__.lower()


def _base(module: nn.Module) -> nn.Module:
    """The wrapped layer of a PEFT tuner layer (LoRA etc.), else the module itself."""
    return module.base_layer if hasattr(module, "base_layer") else module


def output_dim(module: nn.Module) -> int | None:
    base = _base(module)
    bias = getattr(base, "bias", None)
    if isinstance(bias, torch.Tensor):
        return bias.shape[-1]
    if isinstance(base, nn.Linear):
        return base.out_features
    if type(base).__name__ == "Conv1D":
        return base.nf
    weight = getattr(base, "weight", None)
    if is_norm(base) and isinstance(weight, torch.Tensor):
        return weight.shape[-1]
    return None


def has_bias(module: nn.Module) -> bool:
    return isinstance(getattr(_base(module), "bias", None), torch.Tensor)


# ------------------------------------------------------------------ resolution
def peft_base(model: nn.Module) -> tuple[str, nn.Module]:
    """(name, module) of the causal LM inside a PeftModel (so its own adapters and config are not touched),
    else ("", model)."""
    from peft import PeftMixedModel, PeftModel

    if isinstance(model, (PeftModel, PeftMixedModel)):
        inner = model.get_base_model()
        for name, module in model.named_modules():
            if module is inner:
                return name, inner
    return "", model


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@dataclass
class DecoderTargets:
    """The resolved targets of one model; names are full module names in the model given."""

    model_type: str | None
    entry: ArchitectureTargets
    guessed: bool  # no TARGETS entry: `entry` is the generic guess, and every block follows the generic rule
    layers_name: str
    layers: nn.ModuleList
    final_norm: tuple[str, nn.Module] | None

    def block_sites(self, index: int, bias_only: bool) -> list[tuple[str, nn.Module, int]]:
        """(full name, module, output dim) of the tuned modules of block `index`, in the block's module order;
        with `bias_only`, only those with a bias term."""
        prefix, block = f"{self.layers_name}.{index}", self.layers[index]
        # a guess is read off block 0; the generic rule, applied to each block, also fits blocks that differ
        sites = generic_block_sites(prefix, block) if self.guessed else self._mapped_block_sites(prefix, block)
        return [site for site in sites if not bias_only or has_bias(site[1])]

    def _mapped_block_sites(self, prefix: str, block: nn.Module) -> list[tuple[str, nn.Module, int]]:
        entry, modules = self.entry, dict(block.named_modules())
        missing = [n for n in entry.block if n not in modules and n not in entry.optional]
        if missing:
            raise ValueError(f"TARGETS[{self.model_type!r}].block names {missing}, which {prefix} "
                             f"({type(block).__name__}) does not have; correct the entry in "
                             "fairalign/decoding/uddia/offset/targets.py")
        found = []
        for name, module in modules.items():  # the block's order, as the generic rule
            if name in entry.block:
                dim = output_dim(module)
                if dim is None:
                    raise ValueError(f"TARGETS[{self.model_type!r}] tunes {prefix}.{name}, a {type(module).__name__} "
                                     "whose output size is unknown: only linear projections and norms can be tuned")
                found.append((f"{prefix}.{name}", module, dim))
        return found


def find_targets(model: nn.Module) -> DecoderTargets:
    """The targets of `model` from its `TARGETS` entry, or from the generic guess (with one warning)."""
    prefix, inner = peft_base(model)
    model_type = getattr(getattr(inner, "config", None), "model_type", None)
    entry, guessed = TARGETS.get(model_type), model_type not in TARGETS
    if guessed:
        entry = guess_targets(inner)
        warnings.warn(
            f"UDDIA has no target mapping for model_type={model_type!r} ({type(inner).__name__}); it guessed the "
            f"decoder layers at {entry.layers!r}, the final norm {entry.final_norm!r} and {len(entry.block)} tuned "
            f"modules per block {list(entry.block)}. If that is right, add the entry to TARGETS in "
            f"fairalign/decoding/uddia/offset/targets.py (or at run time, before building the generator):\n"
            f"    TARGETS[{model_type!r}] = {entry!r}",
            stacklevel=3,  # at the line that builds the OffsetAdapter: shown once per model_type and process
        )
    layers = _submodule(inner, model_type, entry.layers, "layers")
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"TARGETS[{model_type!r}].layers={entry.layers!r} is a {type(layers).__name__}, "
                         "not a ModuleList")
    final_norm = None
    if entry.final_norm is not None:
        norm = _submodule(inner, model_type, entry.final_norm, "final_norm", entry.final_norm in entry.optional)
        final_norm = None if norm is None else (_join(prefix, entry.final_norm), norm)
    return DecoderTargets(model_type, entry, guessed, _join(prefix, entry.layers), layers, final_norm)


def _submodule(model: nn.Module, model_type: str | None, path: str, field: str, optional: bool = False):
    try:
        return model.get_submodule(path)
    except AttributeError:
        if optional:
            return None
        raise ValueError(
            f"TARGETS[{model_type!r}].{field}={path!r} is not a module of {type(model).__name__}; pass the causal LM "
            "(a ...ForCausalLM model), or correct the entry in fairalign/decoding/uddia/offset/targets.py"
        ) from None


# ------------------------------------------------------------------ the generic guess
def guess_targets(model: nn.Module) -> ArchitectureTargets:
    """The entry the generic rules give for an unmapped causal LM."""
    layers_name, layers = find_decoder_layers(model)
    norm = find_final_norm(model, layers_name)
    names = tuple(name[len(layers_name) + 3 :] for name, _, _ in generic_block_sites(f"{layers_name}.0", layers[0]))
    return ArchitectureTargets(layers_name, norm[0] if norm else None, names)


def generic_block_sites(prefix: str, block: nn.Module) -> list[tuple[str, nn.Module, int]]:
    """Every linear and norm module of a block with a known output size, outermost first; PEFT tuner layers
    count as one module (their lora_A / lora_B internals are not tuned)."""
    found, skip = [], []
    for name, module in block.named_modules():
        if any(name.startswith(s + ".") for s in skip):
            continue
        wrapped = hasattr(module, "base_layer")
        if not (wrapped or is_linear(module) or is_norm(module)):
            continue
        if wrapped:
            skip.append(name)
        dim = output_dim(module)
        if dim is not None:
            found.append((f"{prefix}.{name}", module, dim))
    return found


def find_decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The ModuleList of decoder blocks: the outermost ModuleList with num_hidden_layers entries."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    n = config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return name, module
    raise ValueError(
        f"could not find the decoder layers of {type(model).__name__}: no ModuleList with num_hidden_layers={n} "
        "entries; add its model_type to TARGETS in fairalign/decoding/uddia/offset/targets.py"
    )


NORM_SUFFIXES = ("ln_f", "norm", "final_layernorm", "final_layer_norm", "norm_f")


def find_final_norm(model: nn.Module, layers_name: str) -> tuple[str, nn.Module] | None:
    """The norm applied after the last block: a norm-type child of the module that holds the layers."""
    parent_name = layers_name.rsplit(".", 1)[0] if "." in layers_name else ""
    parent = model.get_submodule(parent_name)
    for child_name, child in parent.named_children():
        if is_norm(child) and child_name.lower().endswith(NORM_SUFFIXES):
            return _join(parent_name, child_name), child
    return None
