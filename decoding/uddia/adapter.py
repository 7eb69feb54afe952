"""The parameters UDDIA tunes, held per sequence in a transient PEFT adapter on the upper T layers.

UDDIA (Yang et al., ICLR 2023, §3.2) tunes only the *bias terms* of the upper T0 layers (attention and MLP
projections, LayerNorm β) plus the final LayerNorm β. Tuning a bias b -> b + δ is exactly adding δ to the
module's output, y = xW + (b + δ) = (xW + b) + δ, so every tuned bias is represented by an offset δ added to
the output of its module by a PEFT tuner layer (`OffsetLayer`, injected by the PEFT tuner `OffsetTuner`, a
`peft.tuners.tuners_utils.BaseTuner`). That gives three properties the official code lacks:

- **Per sequence.** The offsets have a batch dimension, shape (B, P) for P tuned numbers (one tensor for all
  layers; each `OffsetLayer` adds its columns [start, stop) to its base layer's output), so in a batch each
  sequence owns its parameters and its gradient moves nothing else (Adam is elementwise, so one batched Adam
  step on (B, P) is B independent Adam steps). B changes with every adapted sub-batch.
- **Bit-exact restore.** The model's parameters are never written, and the adapter lives only inside
  `attached()`: it is injected on entry and unloaded on exit (each `OffsetLayer` replaced by the very module it
  wrapped), so the module tree and the state dict are exactly as before. With no offsets set (or δ = 0) the
  adapted model computes exactly what the base model computes.
- **Any decoder.** Models without biases (Llama, Qwen, Mistral, Gemma: no linear biases, RMSNorm without β)
  get zero-initialised bias-like offsets on every linear and norm output of the upper layers instead
  (`tuned_params="offsets"`), so an untouched adapter is exactly the base model. PEFT-wrapped models (e.g. a
  LoRA fine-tune) work too: the offset adapter is injected into the PeftModel's base model, a LoRA layer is
  treated as one module (wrapped whole, its combined output offset), and unloading removes only the offset
  layers, so the LoRA layers and the model's `peft_config` are left as they were.

PEFT specifics: the tuner is used directly (`OffsetTuner(model, OffsetConfig(...), "uddia")`, as one would use
`LoraModel`), not registered with `peft.utils.register_peft_method`, which only accepts names already in the
closed `PeftType` enum; it is never saved or loaded, so `get_peft_model` / `PeftModel` support is not needed.
The offsets are not `nn.Parameter`s of the layers: they are per-sequence tensors set for each sub-batch
(`adapter.offsets = θ`), held in one (B, P) tensor that all layers of the adapter share.
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field

import torch
from peft.config import PeftConfig
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from torch import nn

NORM_SUFFIXES = ("ln_f", "norm", "final_layernorm", "final_layer_norm", "norm_f")


@dataclass
class Site:
    """One tuned module: offsets[:, start:stop] are added to its output (..., dim)."""

    name: str
    module: nn.Module
    start: int
    stop: int


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"  # transformers' GPT-2 Conv1D


def _is_norm(module: nn.Module) -> bool:
    return "norm" in type(module).__name__.lower()


def _base(module: nn.Module) -> nn.Module:
    """The wrapped layer of a PEFT tuner layer (LoRA etc.), else the module itself."""
    return module.base_layer if hasattr(module, "base_layer") else module


def _output_dim(module: nn.Module) -> int | None:
    base = _base(module)
    bias = getattr(base, "bias", None)
    if isinstance(bias, torch.Tensor):
        return bias.shape[-1]
    if isinstance(base, nn.Linear):
        return base.out_features
    if type(base).__name__ == "Conv1D":
        return base.nf
    weight = getattr(base, "weight", None)
    if _is_norm(base) and isinstance(weight, torch.Tensor):
        return weight.shape[-1]
    return None


def _has_bias(module: nn.Module) -> bool:
    return isinstance(getattr(_base(module), "bias", None), torch.Tensor)


def find_decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The ModuleList of decoder blocks: the outermost ModuleList with num_hidden_layers entries."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    n = config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return name, module
    raise ValueError(
        f"could not find the decoder layers of {type(model).__name__}: no ModuleList with num_hidden_layers={n} entries"
    )


def find_final_norm(model: nn.Module, layers_name: str) -> tuple[str, nn.Module] | None:
    """The norm applied after the last block: a norm-type child of the module that holds the layers."""
    parent_name = layers_name.rsplit(".", 1)[0] if "." in layers_name else ""
    parent = model.get_submodule(parent_name)
    for child_name, child in parent.named_children():
        if _is_norm(child) and child_name.lower().endswith(NORM_SUFFIXES):
            return (f"{parent_name}.{child_name}" if parent_name else child_name), child
    return None


def _layer_sites(prefix: str, block: nn.Module, bias_only: bool) -> list[tuple[str, nn.Module, int]]:
    """(name, module, output dim) of the tunable modules inside one block, outermost first; PEFT tuner layers
    count as one module (their lora_A/lora_B internals are not tuned)."""
    found, skip = [], []
    for name, module in block.named_modules():
        if any(name.startswith(s + ".") for s in skip):
            continue
        wrapped = hasattr(module, "base_layer")
        if not (wrapped or _is_linear(module) or _is_norm(module)):
            continue
        if wrapped:
            skip.append(name)
        if bias_only and not _has_bias(module):
            continue
        dim = _output_dim(module)
        if dim is not None:
            found.append((f"{prefix}.{name}", module, dim))
    return found


ADAPTER_NAME = "uddia"


class OffsetStore:
    """The (B, P) offsets shared by all layers of one adapter; None = base model."""

    def __init__(self):
        self.offsets: torch.Tensor | None = None
        self.sizes: list[int] = []  # the sites' column counts, in column order (set on attach)
        self._pieces: tuple | None = None  # (key, {start column: (B, dim) piece in the model's dtype})

    def piece(self, start: int, dtype: torch.dtype) -> torch.Tensor:
        """The columns of the site that starts at `start`, in the model's dtype. All pieces come from one
        cast and one `split` per pass (θ is updated in place between passes, which bumps its version counter
        and invalidates them): the backward of a split concatenates the sites' gradients once, where
        slicing each site out of θ would materialise a zero-filled (B, P) gradient per site."""
        key = (id(self.offsets), self.offsets._version, dtype)
        if self._pieces is None or self._pieces[0] != key:
            parts = torch.split_with_sizes(self.offsets.to(dtype), self.sizes, dim=1)
            starts = itertools.accumulate(self.sizes[:-1], initial=0)
            self._pieces = (key, dict(zip(starts, parts)))
        return self._pieces[1][start]

    def set(self, offsets: torch.Tensor | None) -> None:
        self.offsets, self._pieces = offsets, None


@dataclass
class OffsetConfig(PeftConfig):
    """PEFT config of the UDDIA offset adapter: the exact names of the wrapped modules and the columns of the
    (B, P) offsets each one adds to its output."""

    target_modules: frozenset = field(default_factory=frozenset)
    spans: dict = field(default_factory=dict)  # module name -> (start, stop)
    modules_to_save: None = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = "UDDIA_OFFSET"  # not a PeftType member: the tuner is not registered (module docstring)


class OffsetLayer(nn.Module, BaseTunerLayer):
    """PEFT tuner layer: base_layer(x) + offsets[:, start:stop] (broadcast over positions). Zero or no offsets
    = the base layer, bit for bit. Cannot be merged: the offsets differ per sequence."""

    adapter_layer_names = ()  # no nn.Parameters: the offsets are per-sequence tensors held by the OffsetStore
    other_param_names = ("uddia_offset_span",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, store: OffsetStore, span: tuple[int, int], name: str):
        super().__init__()
        self.base_layer = base_layer
        self.uddia_offset_span = {adapter_name: span}  # one adapter per layer (one OffsetTuner at a time)
        self._start, self._stop = span
        self._store = store
        self._name = name
        self._active_adapter = adapter_name
        self.merged_adapters = []

    def merge(self, safe_merge: bool = False, adapter_names=None) -> None:
        raise NotImplementedError("UDDIA offsets are per sequence and cannot be merged into the base layer")

    def unmerge(self) -> None:
        pass

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        output = self.base_layer(x, *args, **kwargs)
        if self._store.offsets is None or self._disable_adapters:
            return output  # base model, bit for bit
        delta = self._store.piece(self._start, output.dtype)
        if delta.shape[0] != output.shape[0]:
            raise RuntimeError(f"offsets for {delta.shape[0]} sequences, module {self._name} saw {output.shape[0]}")
        shape = (delta.shape[0],) + (1,) * (output.dim() - 2) + (delta.shape[1],)
        return output + delta.view(shape)

    def __repr__(self) -> str:
        return "uddia_offset." + super().__repr__()


class OffsetTuner(BaseTuner):
    """PEFT tuner that wraps the modules named in an `OffsetConfig` in `OffsetLayer`s. Parameters' requires_grad
    flags are left alone (gradients go to the offsets only), and `unload()` removes exactly the offset layers,
    restoring the modules they wrapped (LoRA layers of a PeftModel stay) and the model's previous `peft_config`."""

    prefix = "uddia_offset_"
    tuner_layer_cls = OffsetLayer
    target_module_mapping: dict = {}

    def __init__(self, model: nn.Module, config: OffsetConfig, adapter_name: str, store: OffsetStore):
        self.__dict__["_store"] = store  # set before BaseTuner.__init__, which injects the layers
        # A PeftModel's base model carries its tuner's `peft_config` dict; BaseTuner.__init__ would find it (its
        # __getattr__ reads through to the model), add this adapter to that dict and warn. Take it off for the
        # time the offset adapter is attached; unload() puts the same object back.
        self.__dict__["_had_peft_config"] = "peft_config" in model.__dict__
        self.__dict__["_saved_peft_config"] = model.__dict__.pop("peft_config", None)
        try:
            super().__init__(model, config, adapter_name)
        except BaseException:
            self._restore_peft_config()
            raise

    def _restore_peft_config(self) -> None:
        self.model.__dict__.pop("peft_config", None)
        if self._had_peft_config:
            self.model.__dict__["peft_config"] = self._saved_peft_config

    def _prepare_adapter_config(self, peft_config, model_config):
        return peft_config

    @staticmethod
    def _check_target_module_exists(peft_config, key):
        return key in peft_config.target_modules

    def _create_and_replace(self, peft_config, adapter_name, target, target_name, parent, current_key):
        layer = OffsetLayer(target, adapter_name, self._store, peft_config.spans[current_key], current_key)
        setattr(parent, target_name, layer)

    def _mark_only_adapters_as_trainable(self, model: nn.Module) -> None:
        pass  # the caller freezes the base parameters for the call; nothing here to train but the offsets

    def _cast_adapter_dtype(self, adapter_name: str, autocast_adapter_dtype: bool = True) -> None:
        pass  # no adapter weights: the offsets are cast to the output dtype in the forward

    def set_adapter(self, adapter_name, inference_mode: bool = False) -> None:
        for module in self.model.modules():  # only our layers (BaseTuner's would also touch auxiliary wrappers)
            if isinstance(module, OffsetLayer):
                module.set_adapter(adapter_name, inference_mode=inference_mode)
        self.active_adapter = adapter_name

    def _unload_and_optionally_merge(self, merge=True, progressbar=False, safe_merge=False, adapter_names=None):
        if merge:
            raise NotImplementedError("UDDIA offsets are per sequence and cannot be merged")
        unwrap_offset_layers(self.model)
        self._restore_peft_config()
        return self.model


def unwrap_offset_layers(model: nn.Module) -> None:
    """Put back, in `model`, the module each `OffsetLayer` wraps (object for object)."""
    wrapped = [(name, m) for name, m in model.named_modules() if isinstance(m, OffsetLayer)]
    for name, layer in wrapped:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, layer.base_layer)


def _inner_model(model: nn.Module) -> tuple[str, nn.Module]:
    """(name, module) of the model the offset adapter is injected into: a PeftModel's base model (so the
    PeftModel's own adapters and config are not touched), else the model itself."""
    from peft import PeftMixedModel, PeftModel

    if isinstance(model, (PeftModel, PeftMixedModel)):
        inner = model.get_base_model()
        for name, module in model.named_modules():
            if module is inner:
                return name, inner
    return "", model


class OffsetAdapter:
    """Per-sequence additive offsets on the outputs of the tuned modules of the upper T layers, held in a
    transient PEFT adapter (`OffsetTuner`).

    adapter = OffsetAdapter(model, tuned_params="auto")
    with adapter.attached(num_tuned_layers=15) as num_params:   # adapter injected; offsets None = base model
        adapter.offsets = torch.zeros(batch, num_params, requires_grad=True)
        model(...)                                               # outputs shifted by the offsets
    # adapter unloaded: the module tree is the original one, the model's parameters were never touched
    """

    def __init__(self, model: nn.Module, tuned_params: str = "auto"):
        self.model = model
        self.layers_name, self.layers = find_decoder_layers(model)
        self.final_norm = find_final_norm(model, self.layers_name)
        if tuned_params == "auto":
            # LayerNorm-with-β families (GPT-2, OPT, NeoX, Phi) carry biases; RMSNorm families (Llama, Qwen,
            # Mistral, Gemma) do not, whatever their attention projections have.
            has_beta = self.final_norm is not None and _has_bias(self.final_norm[1])
            tuned_params = "bias" if has_beta else "offsets"
        self.tuned_params = tuned_params
        self.bias_only = tuned_params == "bias"
        self.per_layer = [
            _layer_sites(f"{self.layers_name}.{i}", block, self.bias_only) for i, block in enumerate(self.layers)
        ]
        if self.bias_only and not any(self.per_layer):
            raise ValueError(
                f"UDDIAConfig.tuned_params='bias' but {type(model).__name__} has no bias terms in its layers; "
                "use tuned_params='offsets' (or 'auto')"
            )
        self.sites: list[Site] = []
        self.store = OffsetStore()
        self.tuner: OffsetTuner | None = None

    @property
    def offsets(self) -> torch.Tensor | None:
        """(B, P) when set; None = base model. Set it for each (sub-)batch: row i adapts sequence i."""
        return self.store.offsets

    @offsets.setter
    def offsets(self, value: torch.Tensor | None) -> None:
        if value is not None and value.shape[-1] != sum(self.store.sizes):
            raise ValueError(f"offsets have {value.shape[-1]} columns, the attached adapter tunes {sum(self.store.sizes)}")
        self.store.set(value)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def select(self, num_tuned_layers: int) -> list[tuple[str, nn.Module, int]]:
        """(name, module, dim) of every tuned module for the upper `num_tuned_layers` layers + the final norm."""
        chosen = [s for sites in self.per_layer[self.num_layers - num_tuned_layers :] for s in sites]
        if self.final_norm is not None and (not self.bias_only or _has_bias(self.final_norm[1])):
            dim = _output_dim(self.final_norm[1])
            if dim is not None:
                chosen.append((self.final_norm[0], self.final_norm[1], dim))
        return chosen

    def module(self, name: str) -> nn.Module:
        """The module now at `name` in the model (the `OffsetLayer` wrapping the original while attached)."""
        return self.model.get_submodule(name)

    @contextlib.contextmanager
    def attached(self, num_tuned_layers: int):
        """The offset adapter injected for the duration of the block; yields P, the tuned numbers per sequence."""
        if not 1 <= num_tuned_layers <= self.num_layers:
            raise ValueError(f"num_tuned_layers={num_tuned_layers} must be in [1, {self.num_layers}]")
        if self.tuner is not None:
            raise RuntimeError("OffsetAdapter is already attached")
        prefix, inner = _inner_model(self.model)
        start, self.sites, spans = 0, [], {}
        for name, module, dim in self.select(num_tuned_layers):
            self.sites.append(Site(name, module, start, start + dim))
            spans[name[len(prefix) + 1 :] if prefix else name] = (start, start + dim)
            start += dim
        config = OffsetConfig(target_modules=frozenset(spans), spans=spans, inference_mode=True)
        self.store.set(None)
        self.store.sizes = [site.stop - site.start for site in self.sites]
        try:
            if spans:  # PEFT refuses an adapter that targets nothing
                self.tuner = OffsetTuner(inner, config, ADAPTER_NAME, self.store)
            yield start
        finally:
            if self.tuner is not None:
                self.tuner.unload()
            else:  # no targets, or injection failed part-way: put back whatever was wrapped
                unwrap_offset_layers(inner)
            self.tuner, self.sites = None, []
            self.store.set(None)
            self.store.sizes = []


@torch.no_grad()
def adam_step(theta: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, step: int,
              lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One in-place Adam step (Kingma & Ba 2015, Alg. 1), elementwise, so rows of (B, P) stay independent:
        m <- β1 m + (1-β1) g;  v <- β2 v + (1-β2) g²;  θ <- θ - lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + ε)
    From a fresh state (t = 1) the update is lr · g / (|g| + ε): about ±lr for every tuned number (UDDIA's
    sign-like first step)."""
    beta1, beta2 = betas
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
    theta.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))
