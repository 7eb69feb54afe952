"""The tuner layer of UDDIA's offset adapter (`OffsetLayer`) and the per-sequence offsets all its layers share
(`OffsetStore`)."""
from __future__ import annotations

import itertools

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn


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
