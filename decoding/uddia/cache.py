"""KV-cache forks for UDDIA's extra forward passes.

Current transformers caches grow in place: every forward appends its keys/values to the cache it is given.
UDDIA runs extra forwards at each step (the adapted pass of the current token, the look-ahead, the tuned
pass for fusion) on the *same* past, and none of them may lengthen or alter the cache of the main decoding
loop. A fork is a new cache object whose layers *view* the main cache's tensors up to, but excluding, the
current token. `DynamicLayer.update` concatenates into a new tensor instead of writing in place, so a fork's
appends never reach the main cache, and a fork costs no copy (except `rows=`, which gathers a sub-batch).

When the main pass itself runs with θ = 0 attached (it then *is* the adapted pass of step 1, see step.py), its
upper layers' keys/values carry an autograd graph: `detach_in_place` takes the graph off the main cache and
hands it to `fork_with_graph`, whose fork (the whole cache, current token included) feeds the look-ahead.
"""
from __future__ import annotations

import copy

import torch


def _layers(cache) -> list:
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise TypeError(f"UDDIA needs a layered transformers Cache (DynamicCache); got {type(cache).__name__}")
    return layers


def check_forkable(cache) -> None:
    """Sliding-window layers drop their oldest token once full, so the prefix cannot be recovered by a view."""
    for layer in _layers(cache):
        if getattr(layer, "is_sliding", False):
            raise ValueError(
                "UDDIA does not support sliding-window attention caches yet (Mistral/Gemma-2/3 local layers); "
                "load the model with a full-attention config or open an issue"
            )
        if type(layer).__name__ not in ("DynamicLayer",):
            raise ValueError(f"UDDIA supports DynamicLayer caches only, got {type(layer).__name__}")


def _fork(cache, tensors, rows: torch.Tensor | None):
    """A new cache whose layer i holds `tensors(i, layer)` = (keys, values), gathered to `rows` if given;
    uninitialised or empty layers are copied as they are."""
    fork = copy.copy(cache)
    fork.layers = []
    for i, layer in enumerate(_layers(cache)):
        clone = copy.copy(layer)
        if layer.is_initialized and layer.keys is not None and layer.keys.numel():
            keys, values = tensors(i, layer)
            if rows is not None:
                keys, values = keys[rows], values[rows]
            clone.keys, clone.values = keys, values
        fork.layers.append(clone)
    return fork


def fork_prefix(cache, rows: torch.Tensor | None = None):
    """A new cache holding the main cache minus its last token (the current one), optionally only `rows`.

    Its layers are views (or row gathers) of the main cache's tensors; forwards on the fork append to the
    fork alone."""
    return _fork(cache, lambda i, layer: (layer.keys[..., :-1, :], layer.values[..., :-1, :]), rows)


def detach_in_place(cache) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """Detach every layer's keys/values from autograd (no copy) and return the graph-carrying tensors of the
    layers that had any (the upper, offset-tuned layers after a main pass run with θ = 0 attached); None for
    the others. The main cache must not carry a graph into later steps."""
    carried = []
    for layer in _layers(cache):
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if isinstance(keys, torch.Tensor) and (keys.requires_grad or values.requires_grad):
            carried.append((keys, values))
            layer.keys, layer.values = keys.detach(), values.detach()
        else:
            carried.append(None)
    return carried


def fork_with_graph(cache, carried: list, rows: torch.Tensor | None = None):
    """A new cache holding the whole main cache (the current token included), optionally only `rows`, where the
    layers listed in `carried` hold the graph-carrying tensors of `detach_in_place`, so a forward on the fork
    (the look-ahead) backpropagates into the current token's keys/values as computed by the main pass."""
    return _fork(cache, lambda i, layer: carried[i] if carried[i] is not None else (layer.keys, layer.values), rows)


def seq_length(cache) -> int:
    return max((layer.get_seq_length() for layer in _layers(cache)), default=0)
