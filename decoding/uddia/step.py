"""One UDDIA decoding step: the state of the decoding loop and the per-token adaptation (UDDIA §3.2).

At step t the main cache holds the context x_{<t} and the current token x_t (computed by the unadapted
model, exactly as `generate` computes it), and `logits` are P_base(· | x_{≤t}). For the sequences chosen by the
trigger, with per-sequence parameters θ (B, P) starting at 0 and a fresh Adam state:

    h_t(θ), P_θ  = model_θ(x_t | prefix cache)                     # adapted pass of the current token
    h_{t+1}(θ)   = model_θ(e = P_θ @ E | prefix + x_t)               # look-ahead on the expected embedding
    pooled(θ)    = (Σ_{s<t} h_s + h_t(θ) + h_{t+1}(θ)) / (t + 2)     # mean of final hidden states (no double count)
    L(θ)         = CE(head(pooled(θ)), target) · [detox]  +  λ_b · L_b(P_θ) · [debias trigger]
    θ           <- Adam_1(θ, ∇_θ Σ_rows L)                           # rows independent: θ is (B, P)
    P_tuned      = model_θ(x_t | prefix cache)                       # tuned pass, fused with P_base

Every extra pass runs on a fork of the cache (`fork_prefix`): the main cache is never lengthened or changed.

Cost. The adapted pass at θ = 0 computes exactly what the main (unadapted) pass computes, so the main pass
runs with a zero θ attached and autograd on (`MainGraph`): it is the first Adam step's adapted pass for free,
and backpropagation through it reaches only the upper T layers. The look-ahead's logits are not computed when
nothing reads them (the last look-ahead step). A 135M-parameter model decodes a small batch at the speed it
reads its weights, whatever the number of rows, so what counts is passes over the weights: per adapted step,
look-ahead + backward + tuned pass instead of adapted pass + look-ahead + backward + tuned pass, and the tuned
pass runs only the tuned layers (`replay.py`: the untuned ones replay the main pass's output).
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fairalign.decoding.uddia.cache import fork_prefix, fork_with_graph
from fairalign.decoding.uddia.offset import OffsetAdapter
from fairalign.decoding.uddia.optim import adam_step
from fairalign.decoding.uddia.replay import LowerLayerReplay


def cache_kwarg(model) -> str:
    """`cache` (transformers >= 5.x) or `past_key_values` (earlier), as the model's forward names it."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


class ModelRunner:
    """Calls a causal LM the way `generate` does: explicit positions, the cache, logits of the last position only.

    Final hidden states: inside `capturing()`, a forward hook on the final norm records its output (what
    `outputs.hidden_states[-1]` holds) instead of asking the model for every layer's hidden states. The norm is
    given by name and looked up on entry, so while the offset adapter is attached the hook sits on the PEFT
    layer that wraps the norm and records its offset output."""

    def __init__(self, model, final_norm: str | None = None):
        self.model = model
        self.final_norm = final_norm  # module name in `model`
        self._captured: torch.Tensor | None = None
        self._capturing = False
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.cache_kwarg = cache_kwarg(model)
        self.keep_last = "logits_to_keep" in inspect.signature(base.forward).parameters
        emb = model.get_input_embeddings()
        self.embeddings = emb.weight  # (V, d)
        self.embed_scale = getattr(emb, "embed_scale", None)  # Gemma-3-style scaled embedding modules

    @contextlib.contextmanager
    def capturing(self):
        """Record the final norm's output during the block (enter after the adapter is attached, so the
        recorded state includes the final norm's offset)."""
        if self.final_norm is None:
            yield
            return

        def record(module, args, output):
            self._captured = output

        handle = self.model.get_submodule(self.final_norm).register_forward_hook(record)
        self._capturing = True
        try:
            yield
        finally:
            handle.remove()
            self._capturing, self._captured = False, None

    def __call__(self, cache, mask, positions, input_ids=None, inputs_embeds=None, logits: bool = True):
        """-> (next-token logits (B, V) float32 copy, or None when `logits=False` and the model can skip its LM
        head; final hidden states (B, T, d))."""
        kwargs = {self.cache_kwarg: cache, "attention_mask": mask, "position_ids": positions, "use_cache": True,
                  "output_hidden_states": not self._capturing, "return_dict": True}
        if self.keep_last:  # an empty index tensor keeps no position: the LM head runs on nothing
            kwargs["logits_to_keep"] = 1 if logits else torch.empty(0, dtype=torch.long, device=positions.device)
        out = self.model(input_ids=input_ids, inputs_embeds=inputs_embeds, **kwargs)
        hidden = self._captured if self._capturing else out.hidden_states[-1]
        self._captured = None
        if not logits and self.keep_last:
            return None, hidden
        return out.logits[:, -1].to(dtype=torch.float32, copy=True), hidden

    def expected_embedding(self, probs: torch.Tensor) -> torch.Tensor:
        """softmax(logits) @ E: (b, V) -> (b, 1, d), differentiable in probs."""
        emb = probs.to(self.embeddings.dtype) @ self.embeddings
        if self.embed_scale is not None:
            emb = emb * self.embed_scale
        return emb[:, None, :]


@dataclass
class MainGraph:
    """The main pass of the current token run with θ = 0 (B, P) attached and autograd on: the adapted pass of
    the first Adam step, for every row. `kv` holds the graph-carrying keys/values per layer (None for layers
    below the tuned ones); the main cache itself holds detached tensors."""

    theta: torch.Tensor  # (B, P) zeros, requires_grad
    logits: torch.Tensor  # (B, V) float32, differentiable in theta
    hidden: torch.Tensor  # (B, d), differentiable in theta
    kv: list


@dataclass
class DecodeState:
    """The decoding loop's state; all tensors have the batch first. `mask` is None when there is no padding."""

    cache: object
    mask: torch.Tensor | None  # (B, S) over cache positions (incl. the current token)
    positions: torch.Tensor  # (B, 1): position id of the current token
    current: torch.Tensor  # (B,): the current token x_t (already in the cache)
    logits: torch.Tensor  # (B, V) float32: unadapted next-token logits
    hidden: torch.Tensor  # (B, d): final hidden state of the current token (unadapted)
    context_sum: torch.Tensor  # (B, d) float32: Σ of final hidden states of valid tokens before x_t
    context_count: torch.Tensor  # (B,) float32
    embed_sum: torch.Tensor  # (B, d) float32: Σ of input embeddings of valid tokens up to x_t (debias context)
    embed_count: torch.Tensor  # (B,) float32
    generated_sum: torch.Tensor  # (B, d) float32: Σ of final hidden states of generated tokens before x_t
    generated_count: torch.Tensor  # (B,) float32
    steps: int = 0  # tokens generated and fed back so far
    graph: MainGraph | None = None  # when the main pass of the current token ran with θ = 0 attached

    def pooled(self, scope: str = "context") -> torch.Tensor:
        """Mean final hidden state up to the current token (the trigger's input): over the whole context, or
        over the generated tokens only ('continuation'; at the first step, the last prompt token alone)."""
        if scope == "continuation":
            return (self.generated_sum + self.hidden.float()) / (self.generated_count + 1)[:, None]
        return (self.context_sum + self.hidden.float()) / (self.context_count + 1)[:, None]


@dataclass(kw_only=True)
class Adaptation:
    """Runs the per-token optimisation for a subset of rows and returns log P_tuned - log P_ref. Built with
    keyword arguments only (`Adaptation(runner=..., adapter=..., ...)`)."""

    runner: ModelRunner
    adapter: OffsetAdapter  # attached: θ's columns are its sites
    num_params: int  # P, the tuned numbers per sequence (what `adapter.attached()` yielded)
    lr: float
    steps: int  # Adam steps per token
    lookahead: int  # look-ahead positions fed the expected embedding
    head: torch.nn.Module | None = None  # attribute head of the detox term; None = no detox term
    target_class: int = 0
    debias: object | None = None  # DebiasTerm of the debias term; None = no debias term
    debias_weight: float = 0.0
    replay: LowerLayerReplay | None = None  # skips the untuned layers in the tuned pass

    def _row_mask(self, state: DecodeState, rows: torch.Tensor) -> torch.Tensor | None:
        return None if state.mask is None else state.mask[rows]

    def _forward_current(self, state: DecodeState, rows: torch.Tensor, full: bool):
        cache = fork_prefix(state.cache, None if full else rows)
        logits, hidden = self.runner(cache, self._row_mask(state, rows), state.positions[rows],
                                     input_ids=state.current[rows, None])
        return cache, logits, hidden[:, -1]

    def _current_from_graph(self, state: DecodeState, graph: MainGraph, rows: torch.Tensor, full: bool):
        """The adapted pass of the current token at θ = 0, taken from the main pass (`MainGraph`)."""
        cache = fork_with_graph(state.cache, graph.kv, None if full else rows)
        if full:
            return cache, graph.logits, graph.hidden
        return cache, graph.logits[rows], graph.hidden[rows]

    def losses(self, state: DecodeState, rows: torch.Tensor, full: bool, detox_rows: torch.Tensor,
               debias_rows: torch.Tensor, graph: MainGraph | None = None):
        """Forward the adapted current token (or take it from the main pass's `graph`) and the look-ahead;
        per-row loss (b,) and the adapted logits."""
        if graph is not None:
            cache, logits, h_cur = self._current_from_graph(state, graph, rows, full)
        else:
            cache, logits, h_cur = self._forward_current(state, rows, full)
        pooled_sum = state.context_sum[rows] + h_cur.float()
        count = state.context_count[rows] + 1
        detox = self.head is not None and bool(detox_rows.any())  # the look-ahead feeds only the detox term
        mask, positions, probs = self._row_mask(state, rows), state.positions[rows], torch.softmax(logits, dim=-1)
        for k in range(self.lookahead if detox else 0):
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            positions = positions + 1
            last = k == self.lookahead - 1  # its logits feed nothing: skip the LM head
            la_logits, la_hidden = self.runner(cache, mask, positions, inputs_embeds=self.runner.expected_embedding(probs),
                                               logits=not last)
            pooled_sum = pooled_sum + la_hidden[:, -1].float()
            count = count + 1
            if not last:
                probs = torch.softmax(la_logits, dim=-1)
        loss = logits.new_zeros(len(rows))
        if detox:
            ce = F.cross_entropy(self.head(pooled_sum / count[:, None]).float(),
                                 torch.full((len(rows),), self.target_class, device=logits.device), reduction="none")
            loss = loss + ce * detox_rows
        # rows whose trigger did not fire get weight 0: skip the term (and its backward) when none did
        if self.debias is not None and self.debias_weight > 0 and bool(debias_rows.any()):
            context_mean = state.embed_sum[rows] / state.embed_count[rows, None]
            lb = self.debias.loss(torch.softmax(logits, dim=-1), context_mean, state.embed_count[rows])
            loss = loss + self.debias_weight * lb * debias_rows
        return loss, logits

    def run(self, state: DecodeState, rows: torch.Tensor, detox_rows: torch.Tensor, debias_rows: torch.Tensor):
        """-> (log P_tuned - log P_ref (b, V), θ (b, P), initial losses (b,)). θ never touches model weights."""
        full = len(rows) == state.current.shape[0]
        device = state.logits.device
        theta = torch.zeros(len(rows), self.num_params, device=device, requires_grad=True)
        exp_avg, exp_avg_sq = torch.zeros_like(theta), torch.zeros_like(theta)
        detox_rows, debias_rows = detox_rows.float(), debias_rows.float()
        ref_logprobs = first_loss = None
        graph, state.graph = state.graph, None  # a graph is used once (the backward frees it)
        try:
            with torch.enable_grad():
                for step in range(1, self.steps + 1):
                    from_graph = step == 1 and graph is not None
                    # θ = 0 for every row at step 1: the main pass was the adapted pass; the look-ahead runs with
                    # the chosen rows of the main pass's (B, P) zeros, so both passes reach the same leaf
                    leaf = graph.theta if from_graph else theta
                    self.adapter.offsets = leaf if full or not from_graph else leaf[rows]
                    loss, logits = self.losses(state, rows, full, detox_rows, debias_rows, graph if from_graph else None)
                    if ref_logprobs is None:
                        ref_logprobs, first_loss = torch.log_softmax(logits.detach(), dim=-1), loss.detach()
                    # Σ over rows: each row's gradient is its own loss's gradient (no 1/b coupling)
                    (grad,) = torch.autograd.grad(loss.sum(), leaf, allow_unused=True) if loss.requires_grad else (None,)
                    if grad is None:
                        grad = torch.zeros_like(theta)
                    elif from_graph and not full:
                        grad = grad[rows]  # the other rows' gradients are zero: their losses are not in the sum
                    adam_step(theta, grad, exp_avg, exp_avg_sq, step, self.lr)
                # same autograd mode as the reference pass, so θ = 0 reproduces it bit for bit
                self.adapter.offsets = theta
                with self.replay.replaying(None if full else rows) if self.replay else contextlib.nullcontext():
                    _, tuned_logits, _ = self._forward_current(state, rows, full)
        finally:
            self.adapter.offsets = None
        return torch.log_softmax(tuned_logits.detach(), dim=-1) - ref_logprobs, theta.detach(), first_loss
