"""The parameters UDDIA tunes, held per sequence: additive offsets on module outputs of the upper T layers.

UDDIA (Yang et al., ICLR 2023, §3.2) tunes only the *bias terms* of the upper T0 layers (attention and MLP
projections, LayerNorm β) plus the final LayerNorm β. Tuning a bias b -> b + δ is exactly adding δ to the
module's output, y = xW + (b + δ) = (xW + b) + δ, so every tuned bias is represented by an offset δ added by a
forward hook. That gives three properties the official code lacks:

- **Per sequence.** δ has a batch dimension, shape (B, P) for P tuned numbers, so in a batch each sequence owns
  its parameters and its gradient moves nothing else (Adam is elementwise, so one batched Adam step on (B, P)
  is B independent Adam steps).
- **Bit-exact restore for free.** The model's parameters are never written: with the hooks off (or δ = 0) the
  model computes exactly what it computed before.
- **Any decoder.** Models without biases (Llama, Qwen, Mistral, Gemma: no linear biases, RMSNorm without β)
  get zero-initialised bias-like offsets on every linear and norm output of the upper layers instead
  (`tuned_params="offsets"`), so an untouched adapter is exactly the base model. PEFT-wrapped models (e.g. a
  LoRA fine-tune) work too: a PEFT tuner layer is treated as one module and its combined output is offset.

Why hooks rather than a PEFT tuner: a PEFT adapter holds one parameter set shared by the batch, while UDDIA
needs (B, P) parameters whose batch size changes with every sub-batch that gets adapted.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
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


class OffsetAdapter:
    """Per-sequence additive offsets on the outputs of the tuned modules of the upper T layers.

    adapter = OffsetAdapter(model, tuned_params="auto")
    with adapter.attached(num_tuned_layers=15) as num_params:   # hooks on; offsets None = base model
        adapter.offsets = torch.zeros(batch, num_params, requires_grad=True)
        model(...)                                               # outputs shifted by the offsets
    # hooks removed; the model's parameters were never touched
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
        self.offsets: torch.Tensor | None = None  # (B, P) when active; None = base model
        self._handles: list = []
        self._cast: tuple | None = None  # (key, offsets in the model's dtype)

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

    def _offsets_as(self, dtype: torch.dtype) -> torch.Tensor:
        """The offsets in the model's dtype, cast once per pass rather than once per module (θ is updated in
        place between passes, which bumps its version counter and invalidates the cast)."""
        key = (id(self.offsets), self.offsets._version, dtype)
        if self._cast is None or self._cast[0] != key:
            self._cast = (key, self.offsets.to(dtype))
        return self._cast[1]

    def _hook(self, site: Site):
        def add_offset(module, args, output):
            if self.offsets is None:
                return None  # base model, bit for bit
            delta = self._offsets_as(output.dtype)[:, site.start : site.stop]
            if delta.shape[0] != output.shape[0]:
                raise RuntimeError(f"offsets for {delta.shape[0]} sequences, module {site.name} saw {output.shape[0]}")
            shape = (delta.shape[0],) + (1,) * (output.dim() - 2) + (delta.shape[1],)
            return output + delta.view(shape)

        return add_offset

    @contextlib.contextmanager
    def attached(self, num_tuned_layers: int):
        """Hooks on the tuned modules for the duration of the block; yields P, the tuned numbers per sequence."""
        if not 1 <= num_tuned_layers <= self.num_layers:
            raise ValueError(f"num_tuned_layers={num_tuned_layers} must be in [1, {self.num_layers}]")
        if self._handles:
            raise RuntimeError("OffsetAdapter is already attached")
        start, self.sites = 0, []
        for name, module, dim in self.select(num_tuned_layers):
            self.sites.append(Site(name, module, start, start + dim))
            start += dim
        try:
            self._handles = [s.module.register_forward_hook(self._hook(s)) for s in self.sites]
            yield start
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles, self.sites, self.offsets, self._cast = [], [], None, None


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
