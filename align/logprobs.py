"""Sequence log-probabilities of completions, computed lean.

Two ideas make a preference step cheaper than scoring [prompt+chosen] and [prompt+rejected] as two padded
rows and projecting every position through the LM head:

1. **Prefix sharing.** One row per example holds the prompt once and each completion as a branch:

       row       = prompt[:-1] | prompt[-1] chosen | prompt[-1] rejected [| prompt[-1] baseline]
       positions = 0..P-2     | P-1, P, ...       | P-1, P, ...         (each branch restarts after the prompt)

   A 4-D attention mask lets every token see the shared prefix and earlier tokens of its own branch only,
   so each branch's log-probs equal those of the separate sequence (tests check this to float tolerance).
   The prompt is encoded once instead of twice. The last prompt token is repeated at the head of each
   branch because its hidden state predicts each branch's first token.
2. **Completion-only LM head.** Only hidden states that predict a completion token go through the LM head,
   in chunks, with a custom backward that recomputes each chunk's logits: the (tokens x vocab) logits and
   their float32 softmax are never stored.

`PackedBatch` is what the collator builds; `completion_logps(model, batch)` runs the model and returns
per-branch summed log-probs and token counts.
"""
from __future__ import annotations

import functools
import types
from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class PackedRows:
    """Row layout of a batch of examples, each with a prompt and K completions (branches)."""

    input_ids: torch.Tensor  # (R, L)
    position_ids: torch.Tensor  # (R, L)
    segment_ids: torch.Tensor  # (R, L): 0 shared prefix, k >= 1 branch k, -1 padding
    targets: torch.Tensor  # (R, L): token predicted by the hidden state at this position, IGNORE elsewhere
    branch_index: torch.Tensor  # (R, L): example * K + branch for target positions, -1 elsewhere
    num_branches: int

    def attention_mask(self, shared_prefix: bool) -> torch.Tensor:
        """2-D padding mask for one-branch rows, or the 4-D (R, 1, L, L) boolean prefix-sharing mask."""
        valid = self.segment_ids >= 0
        if not shared_prefix:
            return valid.long()
        seg = self.segment_ids
        L = seg.shape[1]
        causal = torch.ones(L, L, dtype=torch.bool, device=seg.device).tril()
        same_branch = seg[:, :, None] == seg[:, None, :]  # (R, L, L): query i, key j
        key_shared = (seg == 0)[:, None, :]
        allow = causal & valid[:, :, None] & valid[:, None, :] & (same_branch | key_shared)
        # Padding queries attend to themselves so no softmax row is empty (which would give NaN).
        allow |= torch.eye(L, dtype=torch.bool, device=seg.device)
        return allow[:, None]


def pack_examples(
    prompts: list[list[int]],
    branches: list[list[list[int]]],
    pad_token_id: int,
    shared_prefix: bool = True,
    pad_to_multiple_of: int | None = None,
) -> PackedRows:
    """Lay out examples as rows. branches[i] = [chosen_ids, rejected_ids, (baseline_ids)] of example i.

    shared_prefix=True: one row per example (prompt once). False: one row per (example, branch), the layout
    of ordinary padded batches (needed by attention kernels without arbitrary masks, e.g. flash-attention).
    """
    K = len(branches[0])
    rows = []  # (tokens, positions, segments, targets, branch_idx)
    for i, (prompt, comps) in enumerate(zip(prompts, branches)):
        if len(comps) != K:
            raise ValueError("every example in a batch must have the same number of completions")
        head, tail = prompt[:-1], prompt[-1:]
        if shared_prefix:
            tok, pos, seg, tgt, bix = list(head), list(range(len(head))), [0] * len(head), [IGNORE] * len(head), [-1] * len(head)
        for k, comp in enumerate(comps):
            if not shared_prefix:
                tok, pos, seg, tgt, bix = list(head), list(range(len(head))), [0] * len(head), [IGNORE] * len(head), [-1] * len(head)
            seq = tail + list(comp)
            n = len(seq)
            tok += seq
            pos += list(range(len(head), len(head) + n))
            seg += [k + 1] * n
            # hidden state at seq[j] predicts seq[j+1]; the last has nothing to predict
            tgt += seq[1:] + [IGNORE]
            bix += [i * K + k] * (n - 1) + [-1]
            if not shared_prefix:
                rows.append((tok, pos, seg, tgt, bix))
        if shared_prefix:
            rows.append((tok, pos, seg, tgt, bix))
    width = max(len(r[0]) for r in rows)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    fill = (pad_token_id, 0, -1, IGNORE, -1)
    cols = [[r[c] + [fill[c]] * (width - len(r[c])) for r in rows] for c in range(5)]
    t = [torch.tensor(c, dtype=torch.long) for c in cols]
    return PackedRows(t[0], t[1], t[2], t[3], t[4], K)


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are reduced in float32; float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class _CompletionLogProbs(torch.autograd.Function):
    """log softmax(h W^T + b)[target] over chunks of tokens; backward recomputes each chunk's logits."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_size):
        out, lses = [], []
        for h, t in zip(hidden.split(chunk_size), targets.split(chunk_size)):
            logits = _upcast(torch.nn.functional.linear(h, weight, bias))
            lse = torch.logsumexp(logits, dim=-1)
            out.append(logits.gather(-1, t[:, None]).squeeze(-1) - lse)
            lses.append(lse)
        ctx.save_for_backward(hidden, weight, bias, targets, torch.cat(lses))
        ctx.chunk_size = chunk_size
        return torch.cat(out)

    @staticmethod
    def backward(ctx, grad_out):
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        n = ctx.chunk_size
        grad_h = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        acc = torch.float64 if weight.dtype == torch.float64 else torch.float32
        grad_w = torch.zeros_like(weight, dtype=acc) if ctx.needs_input_grad[1] else None
        grad_b = torch.zeros_like(bias, dtype=acc) if bias is not None and ctx.needs_input_grad[2] else None
        for s in range(0, hidden.shape[0], n):
            h, t, g = hidden[s : s + n], targets[s : s + n], _upcast(grad_out[s : s + n])
            probs = (_upcast(torch.nn.functional.linear(h, weight, bias)) - lse[s : s + n, None]).exp_()
            # d logp[t] / d logits = onehot(t) - softmax; times the incoming gradient
            dlogits = probs.mul_(-g[:, None])
            dlogits.scatter_add_(1, t[:, None], g[:, None])
            if grad_h is not None:
                grad_h[s : s + n] = (dlogits.to(weight.dtype) @ weight).to(hidden.dtype)
            if grad_w is not None:
                grad_w += dlogits.t() @ h.to(acc)
            if grad_b is not None:
                grad_b += dlogits.sum(0)
        return (
            grad_h,
            None if grad_w is None else grad_w.to(weight.dtype),
            None if grad_b is None else grad_b.to(bias.dtype),
            None,
            None,
        )


def token_logps(hidden: torch.Tensor, lm_head: torch.nn.Module, targets: torch.Tensor, chunk_size: int = 1024):
    """Log-probs of `targets` (N,) under lm_head applied to `hidden` (N, d), without storing logits.
    Reads lm_head's weight directly: call it where the weight is whole (see `add_logps_head`)."""
    return _CompletionLogProbs.apply(hidden, lm_head.weight, lm_head.bias, targets, chunk_size)


def add_logps_head(lm_head: torch.nn.Linear) -> None:
    """Patch `lm_head.forward` so that `lm_head(hidden, logps_targets=T)` returns `token_logps(hidden, lm_head, T)`.

    The head then runs inside the module's own call: the hooks FSDP2 and ZeRO-3 put on the module (or on the
    group it is sharded with) gather its weight before and reshard / reduce its gradient after, so the weight is
    never read while sharded. Without the keyword it is the original forward. Idempotent."""
    if getattr(lm_head, "_fairalign_logps_head", False):
        return
    inner = lm_head.forward

    def forward(self, hidden, logps_targets=None, chunk_size=1024):
        if logps_targets is None:
            return inner(hidden)
        return token_logps(hidden.to(self.weight.device), self, logps_targets.to(self.weight.device), chunk_size)

    lm_head.forward = types.MethodType(forward, lm_head)
    lm_head._fairalign_logps_head = True


def _plain_head_config(model) -> bool:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    special = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier", "lm_head_multiplier")
    return all(getattr(cfg, k, None) in (None, 1.0) for k in special)


def add_completion_logps_forward(model) -> None:
    """Patch `model.forward` so that `model(..., completion_targets=T)` returns per-position log-probs of T
    (IGNORE positions -> 0) through the backbone and a completion-only LM head. The patched forward is still
    the module's forward, so DDP / FSDP / DeepSpeed wrappers and PEFT adapters apply as usual, and the head runs
    inside the LM head module's own call (`add_logps_head`), so FSDP / ZeRO-3 gather its weight; without the
    keyword it is the original forward (generation is unchanged). Idempotent."""
    if getattr(model, "_fairalign_logps_patched", False):
        return
    inner = model.forward
    plain_config = _plain_head_config(model)
    head = model.get_output_embeddings()
    if plain_config and isinstance(head, torch.nn.Linear):
        add_logps_head(head)

    @functools.wraps(type(model).forward)
    def forward(self, *args, completion_targets=None, **kwargs):
        if completion_targets is None:
            return inner(*args, **kwargs)
        kwargs["use_cache"] = False
        mask = completion_targets != IGNORE
        lm_head = self.get_output_embeddings()  # looked up per call: PEFT may have replaced it (then: logits path)
        if plain_config and getattr(lm_head, "_fairalign_logps_head", False):
            hidden = getattr(self, self.base_model_prefix)(*args, **kwargs).last_hidden_state
            lp = lm_head(hidden[mask], logps_targets=completion_targets[mask])
        else:  # unusual heads (soft-capping, scaled logits, adapted): let the model build its logits
            logits = inner(*args, **kwargs).logits
            lp = torch.log_softmax(logits[mask].float(), dim=-1).gather(-1, completion_targets[mask][:, None]).squeeze(-1)
        # float32 for float32/bf16/fp16 models (half precision is reduced in float32), float64 for float64 ones
        out = torch.zeros(mask.shape, dtype=lp.dtype, device=completion_targets.device)
        return out.masked_scatter(mask, lp.to(out.device))

    model.forward = types.MethodType(forward, model)
    model._fairalign_logps_patched = True


def completion_logps(model, inputs: dict, num_examples: int, num_branches: int):
    """Run `model` (patched by add_completion_logps_forward, possibly wrapped) on a collated batch.

    Returns (logps, lengths), each (num_examples, num_branches): summed log-probs and token counts of each
    completion. `inputs` holds input_ids, attention_mask, position_ids, completion_targets, branch_index.
    """
    per_pos = model(
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        position_ids=inputs["position_ids"],
        completion_targets=inputs["completion_targets"],
    )
    bix = inputs["branch_index"]
    mask = bix >= 0
    flat = bix[mask]
    logps = torch.zeros(num_examples * num_branches, dtype=per_pos.dtype, device=per_pos.device)
    logps = logps.index_add(0, flat, per_pos[mask])
    lengths = torch.zeros_like(logps).index_add_(0, flat, torch.ones_like(flat, dtype=logps.dtype))
    return logps.view(num_examples, num_branches), lengths.view(num_examples, num_branches)
