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
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fairalign.decoding.uddia.adapter import OffsetAdapter, adam_step
from fairalign.decoding.uddia.cache import fork_prefix


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
        params = inspect.signature(base.forward).parameters
        self.cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self.keep_last = "logits_to_keep" in params
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

    def __call__(self, cache, mask, positions, input_ids=None, inputs_embeds=None):
        """-> (next-token logits (B, V) float32 copy, final hidden states (B, T, d))."""
        kwargs = {self.cache_kwarg: cache, "attention_mask": mask, "position_ids": positions, "use_cache": True,
                  "output_hidden_states": not self._capturing, "return_dict": True}
        if self.keep_last:
            kwargs["logits_to_keep"] = 1
        out = self.model(input_ids=input_ids, inputs_embeds=inputs_embeds, **kwargs)
        hidden = self._captured if self._capturing else out.hidden_states[-1]
        self._captured = None
        return out.logits[:, -1].to(dtype=torch.float32, copy=True), hidden

    def expected_embedding(self, probs: torch.Tensor) -> torch.Tensor:
        """softmax(logits) @ E: (b, V) -> (b, 1, d), differentiable in probs."""
        emb = probs.to(self.embeddings.dtype) @ self.embeddings
        if self.embed_scale is not None:
            emb = emb * self.embed_scale
        return emb[:, None, :]


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

    def pooled(self, scope: str = "context") -> torch.Tensor:
        """Mean final hidden state up to the current token (the trigger's input): over the whole context, or
        over the generated tokens only ('continuation'; at the first step, the last prompt token alone)."""
        if scope == "continuation":
            return (self.generated_sum + self.hidden.float()) / (self.generated_count + 1)[:, None]
        return (self.context_sum + self.hidden.float()) / (self.context_count + 1)[:, None]


@dataclass
class Adaptation:
    """Runs the per-token optimisation for a subset of rows and returns log P_tuned - log P_ref."""

    runner: ModelRunner
    adapter: OffsetAdapter
    num_params: int
    lr: float
    steps: int
    lookahead: int
    head: torch.nn.Module | None
    target_class: int
    debias: object | None
    debias_weight: float

    def _row_mask(self, state: DecodeState, rows: torch.Tensor) -> torch.Tensor | None:
        return None if state.mask is None else state.mask[rows]

    def _forward_current(self, state: DecodeState, rows: torch.Tensor, full: bool):
        cache = fork_prefix(state.cache, None if full else rows)
        logits, hidden = self.runner(cache, self._row_mask(state, rows), state.positions[rows],
                                     input_ids=state.current[rows, None])
        return cache, logits, hidden[:, -1]

    def losses(self, state: DecodeState, rows: torch.Tensor, full: bool, detox_rows: torch.Tensor,
               debias_rows: torch.Tensor):
        """Forward the adapted current token and the look-ahead; per-row loss (b,) and the adapted logits."""
        cache, logits, h_cur = self._forward_current(state, rows, full)
        pooled_sum = state.context_sum[rows] + h_cur.float()
        count = state.context_count[rows] + 1
        mask, positions, probs = self._row_mask(state, rows), state.positions[rows], torch.softmax(logits, dim=-1)
        for _ in range(self.lookahead):
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            positions = positions + 1
            la_logits, la_hidden = self.runner(cache, mask, positions, inputs_embeds=self.runner.expected_embedding(probs))
            pooled_sum = pooled_sum + la_hidden[:, -1].float()
            count = count + 1
            probs = torch.softmax(la_logits, dim=-1)
        loss = logits.new_zeros(len(rows))
        if self.head is not None:
            ce = F.cross_entropy(self.head(pooled_sum / count[:, None]).float(),
                                 torch.full((len(rows),), self.target_class, device=logits.device), reduction="none")
            loss = loss + ce * detox_rows
        if self.debias is not None and self.debias_weight > 0:
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
        self.adapter.offsets = theta
        try:
            with torch.enable_grad():
                for step in range(1, self.steps + 1):
                    loss, logits = self.losses(state, rows, full, detox_rows, debias_rows)
                    if ref_logprobs is None:
                        ref_logprobs, first_loss = torch.log_softmax(logits.detach(), dim=-1), loss.detach()
                    # Σ over rows: each row's gradient is its own loss's gradient (no 1/b coupling)
                    (grad,) = torch.autograd.grad(loss.sum(), theta, allow_unused=True)
                    if grad is None:
                        grad = torch.zeros_like(theta)
                    adam_step(theta, grad, exp_avg, exp_avg_sq, step, self.lr)
                # same autograd mode as the reference pass, so θ = 0 reproduces it bit for bit
                _, tuned_logits, _ = self._forward_current(state, rows, full)
        finally:
            self.adapter.offsets = None
        return torch.log_softmax(tuned_logits.detach(), dim=-1) - ref_logprobs, theta.detach(), first_loss
