"""The model level of UDDIA's offset adapter: the PEFT tuner that injects and unloads the offset layers
(`OffsetTuner`), and `OffsetAdapter`, which picks the tuned modules of the upper T layers and attaches the
tuner for the duration of a `with` block."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from peft.tuners.tuners_utils import BaseTuner
from torch import nn

from fairalign.decoding.uddia.offset.config import OffsetConfig
from fairalign.decoding.uddia.offset.layer import OffsetLayer, OffsetStore
from fairalign.decoding.uddia.offset.targets import find_targets, has_bias, output_dim, peft_base

ADAPTER_NAME = "uddia"


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


@dataclass
class Site:
    """One tuned module: offsets[:, start:stop] are added to its output (..., dim)."""

    name: str
    module: nn.Module
    start: int
    stop: int


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
        self.targets = find_targets(model)
        self.layers_name, self.layers = self.targets.layers_name, self.targets.layers
        self.final_norm = self.targets.final_norm
        if tuned_params == "auto":
            # LayerNorm-with-β families (GPT-2, OPT, NeoX, Phi) carry biases; RMSNorm families (Llama, Qwen,
            # Mistral, Gemma) do not, whatever their attention projections have.
            has_beta = self.final_norm is not None and has_bias(self.final_norm[1])
            tuned_params = "bias" if has_beta else "offsets"
        self.tuned_params = tuned_params
        self.bias_only = tuned_params == "bias"
        self.per_layer = [self.targets.block_sites(i, self.bias_only) for i in range(len(self.layers))]
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
        if self.final_norm is not None and (not self.bias_only or has_bias(self.final_norm[1])):
            dim = output_dim(self.final_norm[1])
            if dim is not None:
                chosen.append((self.final_norm[0], self.final_norm[1], dim))
        return chosen

    @contextlib.contextmanager
    def attached(self, num_tuned_layers: int):
        """The offset adapter injected for the duration of the block; yields P, the tuned numbers per sequence."""
        if not 1 <= num_tuned_layers <= self.num_layers:
            raise ValueError(f"num_tuned_layers={num_tuned_layers} must be in [1, {self.num_layers}]")
        if self.tuner is not None:
            raise RuntimeError("OffsetAdapter is already attached")
        prefix, inner = peft_base(self.model)
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
