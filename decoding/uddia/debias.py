"""UDDIA's debias term (Yang et al., ICLR 2023, §3.3; gender in the released code), for K >= 2 groups.

Attribute directions. Each group a has an aligned word list (she/he, her/his, ...). Word vectors are mean
input embeddings of the word's tokens; each tuple is centred on its mean, and u_a is the mean centred vector
of group a (for two groups u_female = -u_male, the first supervised-PCA component of the paper's pair data).

Per-token attribute distribution (τ = 0.1):
    p(a | v) = softmax_a( ((1 + cos(E_v, u_a)) / 2) / τ )
and in context, with c the mean input embedding of the L context tokens:
    p(a | v, x) = softmax_a( ((1 + cos((L c + E_v) / (L + 1), u_a)) / 2) / τ )
Biased token distributions (threshold 0.75; unigram frequencies default to uniform, the paper used
OpenWebText counts):
    Q_a(v) ∝ freq(v) · p(a|v) · 1[p(a|v) > 0.75]
Trigger: debias a sequence only when its next-token distribution P is lopsided,
    max_{a,b} |H(P, Q_a) - H(P, Q_b)| > 0.1,   H(P, Q) = sqrt(1 - Σ_v sqrt(P(v) Q(v)))   (Hellinger)
Loss (weighted by `debias_weight` = 0.05 and *added* to the detox loss; the official code overwrote it):
    L_b = E_{v~P}[ KL(p(a|v,x) || p(a|v)) ] + ½ E_{v~P}[ KL(p(a|v) || uniform) ]
The loss depends on the tuned parameters through P = softmax(logits_θ).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def attribute_scores(cos: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax_a(((1 + cos_a) / 2) / τ) over the last dimension."""
    return torch.softmax((1.0 + cos) / 2.0 / temperature, dim=-1)


class DebiasTerm:
    """Attribute tables for one vocabulary and the trigger/loss of the debias term (see module docstring)."""

    def __init__(self, embeddings: torch.Tensor, tokenizer, groups: dict[str, list[str]], temperature: float = 0.1,
                 token_threshold: float = 0.75, trigger: float = 0.1, unigram: torch.Tensor | None = None):
        weight = embeddings.detach()
        vocab = weight.shape[0]
        self.groups = list(groups)
        self.temperature = temperature
        self.trigger_gap = trigger
        self.embeddings = weight  # (V, d), the model's own matrix (not copied)
        e32 = weight.float()
        words = torch.stack([torch.stack([self._word_vector(e32, tokenizer, w) for w in groups[g]]) for g in groups])  # (K, n, d)
        centred = words - words.mean(dim=0, keepdim=True)  # remove each tuple's mean (she/he -> ±half difference)
        directions = centred.mean(dim=1)  # (K, d)
        norms = directions.norm(dim=-1, keepdim=True)
        if (norms == 0).any():
            raise ValueError("debias groups: a group direction is zero (identical word embeddings); use other word lists")
        self.directions = directions / norms  # u_a, unit (K, d)
        self.emb_dot_u = e32 @ self.directions.T  # (V, K): E_v · u_a
        self.emb_sq_norm = (e32 * e32).sum(-1)  # (V,)
        cos = self.emb_dot_u / self.emb_sq_norm.clamp_min(1e-12).sqrt()[:, None]
        self.p_attr = attribute_scores(cos, temperature)  # (V, K): p(a|v)
        k = len(self.groups)
        self.kl_uniform = (self.p_attr * torch.log(k * self.p_attr + 1e-10)).sum(-1)  # (V,): KL(p(a|v) || 1/K)
        freq = torch.ones(vocab, device=weight.device) if unigram is None else unigram.to(weight.device).float()
        biased = freq[:, None] * self.p_attr * (self.p_attr > token_threshold)
        mass = biased.sum(0)
        if (mass == 0).any():
            empty = [g for g, m in zip(self.groups, mass.tolist()) if m == 0]
            raise ValueError(f"debias groups {empty}: no token has p(a|v) > debias_token_threshold={token_threshold}; lower it")
        self.biased = biased / mass  # (V, K): Q_a

    @staticmethod
    def _word_vector(e32: torch.Tensor, tokenizer, word: str) -> torch.Tensor:
        ids = [i for i in tokenizer(" " + word, add_special_tokens=False)["input_ids"] if i < e32.shape[0]]
        if not ids:
            raise ValueError(f"debias word {word!r} has no token in the model's vocabulary")
        return e32[ids].mean(dim=0)

    def hellinger(self, probs: torch.Tensor) -> torch.Tensor:
        """H(P, Q_a) for each row of P (b, V) and group a -> (b, K)."""
        bc = probs.float().clamp_min(0).sqrt() @ self.biased.sqrt()  # Bhattacharyya coefficient Σ_v sqrt(P Q_a)
        return (1.0 - bc).clamp_min(0).sqrt()

    def triggered(self, probs: torch.Tensor) -> torch.Tensor:
        """(b,) bool: max_{a,b} |H(P, Q_a) - H(P, Q_b)| > trigger."""
        h = self.hellinger(probs)
        return (h.max(dim=-1).values - h.min(dim=-1).values) > self.trigger_gap

    def context_attributes(self, context_mean: torch.Tensor, context_len: torch.Tensor) -> torch.Tensor:
        """p(a | v, x) for every candidate v: (b, V, K). Uses inner products only (no (b, V, d) tensor)."""
        c = context_mean.float()
        n = context_len.float()[:, None]  # (b, 1)
        c_dot_e = F.linear(c.to(self.embeddings.dtype), self.embeddings).float()  # (b, V)
        dot_u = (n[..., None] * (c @ self.directions.T)[:, None, :] + self.emb_dot_u[None]) / (n[..., None] + 1)
        sq_norm = (n**2 * (c * c).sum(-1, keepdim=True) + 2 * n * c_dot_e + self.emb_sq_norm[None]) / (n + 1) ** 2
        cos = dot_u / sq_norm.clamp_min(1e-12).sqrt()[..., None]
        return attribute_scores(cos, self.temperature)

    def loss(self, probs: torch.Tensor, context_mean: torch.Tensor, context_len: torch.Tensor) -> torch.Tensor:
        """L_b per row (b,): E_P[KL(p(a|v,x) || p(a|v))] + ½ E_P[KL(p(a|v) || uniform)]."""
        p_ctx = self.context_attributes(context_mean, context_len)  # (b, V, K), no gradient (embeddings only)
        kl = (p_ctx * (torch.log(p_ctx + 1e-10) - torch.log(self.p_attr + 1e-10)[None])).sum(-1)  # (b, V)
        return (probs * kl).sum(-1) + 0.5 * (probs * self.kl_uniform[None]).sum(-1)
