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

Layout, as PEFT lays out a tuner:

    config.py   OffsetConfig: which modules are wrapped, which columns of the offsets each one adds
    layer.py    OffsetLayer (the tuner layer) and OffsetStore (the (B, P) offsets all layers share)
    model.py    OffsetTuner (inject / unload) and OffsetAdapter (pick the upper T layers' sites, attach)
    targets.py  where the tuned modules are: TARGETS, one entry per model_type, and the generic fallback

PEFT specifics: the tuner is used directly (`OffsetTuner(model, OffsetConfig(...), "uddia")`, as one would use
`LoraModel`), not registered with `peft.utils.register_peft_method`, which only accepts names already in the
closed `PeftType` enum; it is never saved or loaded, so `get_peft_model` / `PeftModel` support is not needed.
The offsets are not `nn.Parameter`s of the layers: they are per-sequence tensors set for each sub-batch
(`adapter.offsets = θ`), held in one (B, P) tensor that all layers of the adapter share.
"""
from fairalign.decoding.uddia.offset.config import OffsetConfig
from fairalign.decoding.uddia.offset.layer import OffsetLayer, OffsetStore
from fairalign.decoding.uddia.offset.model import OffsetAdapter, OffsetTuner, Site, unwrap_offset_layers
from fairalign.decoding.uddia.offset.targets import TARGETS, ArchitectureTargets, find_targets

__all__ = ["TARGETS", "ArchitectureTargets", "OffsetAdapter", "OffsetConfig", "OffsetLayer", "OffsetStore",
           "OffsetTuner", "Site", "find_targets", "unwrap_offset_layers"]
