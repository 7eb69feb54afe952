"""Skip the frozen lower layers in UDDIA's tuned pass by replaying their output from the main pass.

θ lives in the upper T layers only, so for the current token x_t the layers below them compute the same
numbers in the tuned pass as in the main (unadapted) pass: same token, same prefix cache, same positions. The
main pass records the output of the last untuned layer at x_t; during the tuned pass every untuned layer is
swapped for a `_Replay` that returns that recording (its rows), so only the upper T layers, the final norm and
the LM head run: about half a forward for T = L/2.

Only the tuned pass replays: it is the last use of its cache fork, whose untuned layers therefore never need
x_t's keys/values. The swapped-in modules are put back in `finally`, object for object.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


class _Replay(nn.Module):
    """Stands in for a decoder layer: returns a fixed output, whatever it is given. Attributes the model reads
    off its layers (e.g. `attention_type`) are looked up on the layer it replaces."""

    def __init__(self, layer: nn.Module, output):
        super().__init__()
        self.__dict__["_layer"] = layer  # not a submodule: the replay holds no parameters
        self.__dict__["_output"] = output

    def forward(self, *args, **kwargs):
        return self._output

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["_layer"], name)


def _last_position(output):
    """A decoder layer's output (a hidden-state tensor (B, T, d), or a tuple starting with one) at the last
    position, detached; None when the format is not one of these."""
    if isinstance(output, torch.Tensor) and output.dim() == 3:
        return output[:, -1:].detach()
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor) and output[0].dim() == 3:
        return (output[0][:, -1:].detach(),) + (None,) * (len(output) - 1)
    return None


def _rows(output, rows: torch.Tensor | None):
    if rows is None:
        return output
    if isinstance(output, tuple):
        return (output[0][rows],) + output[1:]
    return output[rows]


class LowerLayerReplay:
    """Records the last untuned layer's output in main passes (`recording`) and replays it in tuned passes
    (`replaying`). Inactive (both no-ops) outside `active(first_tuned)` or when every layer is tuned."""

    def __init__(self, layers: nn.ModuleList):
        self.layers = layers
        self.first_tuned = 0
        self._output = None
        self._recording = False

    @contextlib.contextmanager
    def active(self, first_tuned: int):
        """Enable for one decoding attempt whose tuned layers start at index `first_tuned`."""
        if first_tuned <= 0:
            yield
            return

        def record(module, args, output):
            if self._recording:
                self._output = _last_position(output)

        handle = self.layers[first_tuned - 1].register_forward_hook(record)
        self.first_tuned, self._output = first_tuned, None
        try:
            yield
        finally:
            handle.remove()
            self.first_tuned, self._output = 0, None

    @contextlib.contextmanager
    def recording(self):
        """Mark a main pass: the last untuned layer's output at the last position is kept for replay."""
        self._recording, self._output = True, None
        try:
            yield
        finally:
            self._recording = False

    @contextlib.contextmanager
    def replaying(self, rows: torch.Tensor | None):
        """Swap the untuned layers for replays of the latest main pass (its `rows`, or all) for the block."""
        if self.first_tuned <= 0 or self._output is None:
            yield
            return
        output = _rows(self._output, rows)
        originals = [self.layers[i] for i in range(self.first_tuned)]
        try:
            for i, layer in enumerate(originals):
                self.layers[i] = _Replay(layer, output)
            yield
        finally:
            for i, layer in enumerate(originals):
                self.layers[i] = layer
