"""A slow, readable UDDIA adaptation step, one sequence at a time: the specification that every optimised path
(the batched step, the main pass's graph, the look-ahead, the replayed tuned pass) is tested equal to.

For the last token x_t of one sequence (Yang et al., ICLR 2023, §3.2-3.3), with θ = 0 and a fresh Adam:

    prefix        h_s = model(x_<t), s < t                    (no offsets)
    adapted pass  h_t(θ), P_θ = model_θ(x_t | x_<t)
    look-ahead    e = Σ_v P_θ(v) · embed(v);  h_{t+1}(θ) = model_θ(e | x_≤t)     (lookahead_steps times)
    loss          L(θ) = CE(head(mean(h_<t, h_t(θ), h_{t+1}(θ), ...)), target_class) + debias_weight · L_b(P_θ)
    update        θ <- θ - Adam(∇_θ L(θ))                      (steps_per_token times, torch.optim.Adam, lr)
    tuned pass    P_tuned = model_θ(x_t | x_<t);  result: log P_tuned - log P_{θ=0}

Each pass recomputes the prefix from the tokens (the look-ahead continues the adapted pass's cache, so it
attends to x_t's adapted keys/values): no cache forks, no reuse of the main pass, no replay of the untuned
layers, every row on its own, torch.optim.Adam rather than `optim.adam_step`, and final hidden states read from
`output_hidden_states` rather than a hook. L_b is `DebiasTerm.loss` (tested on its own formula).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from fairalign.decoding.uddia.step import cache_kwarg


@dataclass
class ReferenceStep:
    """The adaptation of one sequence's last token."""

    log_ratio: torch.Tensor  # (V,) log P_tuned - log P_{θ=0}: what fusion adds, times the fusion weight
    theta: torch.Tensor  # (P,) the offsets after the Adam steps
    loss: torch.Tensor  # () L(0)
    grad: torch.Tensor  # (P,) ∇_θ L at θ = 0


def reference_step(generator, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   num_tuned_layers: int) -> list[ReferenceStep]:
    """UDDIA's adaptation of the last token of each row of input_ids (B, L) (left-padded by attention_mask),
    with `generator`'s model, attribute head, debias term and config, tuning the upper `num_tuned_layers`
    layers. Both terms apply to every row (as if both triggers fired); a term is absent when the generator has
    none (no head; no debias term or debias_weight = 0)."""
    model = generator.model
    was_training = model.training
    model.eval()
    try:
        with generator.adapter.attached(num_tuned_layers) as num_params:
            return [_one_sequence(generator, input_ids[row : row + 1], attention_mask[row : row + 1], num_params)
                    for row in range(input_ids.shape[0])]
    finally:
        model.train(was_training)


def _final_hidden_and_logits(model, cache, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(final hidden states (1, T, d) float32, after the final norm and its offset; logits (1, T, V) float32) of
    one forward, which appends to `cache`."""
    out = model(**inputs, **{cache_kwarg(model): cache}, use_cache=True, output_hidden_states=True)
    return out.hidden_states[-1].float(), out.logits.float()


def _one_sequence(generator, ids: torch.Tensor, mask: torch.Tensor, num_params: int) -> ReferenceStep:
    model, adapter, head, config = generator.model, generator.adapter, generator.attribute_head, generator.config
    debias = generator.debias if config.debias_weight > 0 else None
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    embedding = model.get_input_embeddings()
    with torch.no_grad():  # embed(v) for every token v, the model's embedding scale included
        vocab_embeddings = embedding(torch.arange(embedding.num_embeddings, device=ids.device))

    def prefix():
        """A cache holding x_<t, and Σ of its final hidden states over valid tokens (1, d)."""
        cache = DynamicCache(config=model.config)
        if ids.shape[1] == 1:
            return cache, 0.0
        adapter.offsets = None
        hidden, _ = _final_hidden_and_logits(model, cache, input_ids=ids[:, :-1], attention_mask=mask[:, :-1],
                                             position_ids=positions[:, :-1])
        return cache, (hidden * mask[:, :-1, None]).sum(1)

    def current(theta, cache):
        """Final hidden state (1, d) and logits (1, V) of x_t with offsets θ."""
        adapter.offsets = theta
        hidden, logits = _final_hidden_and_logits(model, cache, input_ids=ids[:, -1:], attention_mask=mask,
                                                  position_ids=positions[:, -1:])
        return hidden[:, -1], logits[:, -1]

    def loss_and_logits(theta):
        cache, hidden_sum = prefix()
        hidden, logits = current(theta, cache)
        probs = torch.softmax(logits, -1)
        loss = logits.new_zeros(())
        if head is not None:
            hidden_sum, count = hidden_sum + hidden, mask.sum().float()  # valid tokens of x_≤t
            la_mask, la_probs = mask, probs
            for k in range(config.lookahead_steps):
                la_mask = torch.cat([la_mask, la_mask.new_ones(1, 1)], dim=1)
                adapter.offsets = theta
                expected = la_probs.to(vocab_embeddings.dtype) @ vocab_embeddings  # e = Σ_v P(v) embed(v)
                la_hidden, la_logits = _final_hidden_and_logits(
                    model, cache, inputs_embeds=expected[:, None], attention_mask=la_mask,
                    position_ids=positions[:, -1:] + k + 1)
                hidden_sum, count = hidden_sum + la_hidden[:, -1], count + 1
                la_probs = torch.softmax(la_logits[:, -1], -1)
            target = torch.tensor([config.target_class], device=ids.device)
            loss = loss + F.cross_entropy(head(hidden_sum / count).float(), target)
        if debias is not None:
            valid = mask[0].bool()
            context = embedding.weight[ids[0, valid]].float()  # input embeddings of x_≤t (the paper's E, unscaled)
            lb = debias.loss(probs, context.mean(0, keepdim=True), valid.sum()[None].float())
            loss = loss + config.debias_weight * lb[0]
        return loss, logits

    theta = torch.zeros(1, num_params, device=ids.device, requires_grad=True)
    optimizer = torch.optim.Adam([theta], lr=config.lr)
    try:
        with torch.enable_grad():
            for step in range(config.steps_per_token):
                loss, logits = loss_and_logits(theta)
                (grad,) = torch.autograd.grad(loss, theta, allow_unused=True) if loss.requires_grad else (None,)
                grad = torch.zeros_like(theta) if grad is None else grad  # no term reaches θ
                if step == 0:
                    first_loss, first_grad, base_logprobs = loss.detach(), grad, torch.log_softmax(logits.detach(), -1)
                theta.grad = grad
                optimizer.step()
        with torch.no_grad():
            _, tuned_logits = current(theta, prefix()[0])
    finally:
        adapter.offsets = None
    return ReferenceStep(log_ratio=(torch.log_softmax(tuned_logits, -1) - base_logprobs)[0], theta=theta.detach()[0],
                         loss=first_loss, grad=first_grad[0])
