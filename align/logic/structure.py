"""Compile a preference structure (P, P_C, P_A) into a differentiable, batched, exact loss.

Richardson, Srikumar, Sabharwal (ICML 2025), "Understanding the Logic of Direct Preference Alignment through
Logic": the probability of a formula is its weighted model count over the worlds of the atoms,

    WMC(Q) = sum_{worlds |= Q} prod_{v true} p_v * prod_{v false} (1 - p_v),

with p_Mw = pi_theta(y_w|x), p_Ml = pi_theta(y_l|x), p_Rw = pi_ref(y_w|x), p_Rl = pi_ref(y_l|x). A structure
compiles to

    rho = log WMC(P & P_C) - log WMC((~P & P_C) | P_A)          (the "check" side over the "cross" side)
    loss = -log sigma(beta*rho)     logistic  (DPO, CPO, ORPO, ...)
           max(0, 1 - beta*rho)      hinge     (SLiC)
           (rho - 1/(2 beta))^2      squared   (IPO)

Computation. Each side is a Boolean function; atoms it does not depend on marginalise out exactly
(p + (1-p) = 1), so each side only enumerates the worlds of its own relevant atoms (CPO: one world per
side, rho = lw - ll with no rounding at all). The worlds are fixed at construction as constant literal
masks; per batch, a world's log-weight is the sum of its literals' log-weights, where log p_v is the
given log-prob a_v and log(1 - p_v) = log1mexp(a_v), and each side is a logsumexp over its worlds.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from fairalign.align.logic.formula import ATOMS, REFERENCE_ATOMS, Binary, Formula, Not, parse, truth_table

LINKS = ("logistic", "hinge", "squared")
NORMALISATIONS = ("sum", "mean")


def log1mexp(a: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """log(1 - exp(a)) for a <= 0, stable (Maechler 2012): log(-expm1(a)) near 0, log1p(-exp(a)) below -ln 2.

    a is clamped to <= -eps first: a mean token log-prob can round to exactly 0, where log(1 - p) = -inf and
    the gradient -1/a explodes. eps = 1e-6 caps log(1 - p) at about -13.8."""
    a = a.clamp(max=-eps)
    return torch.where(a > -math.log(2.0), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def depends_on(table: np.ndarray, atoms: tuple[str, ...] = ATOMS) -> tuple[str, ...]:
    """Atoms a Boolean function (a truth table over `atoms`) actually depends on."""
    n = len(atoms)
    k = np.arange(2**n)
    out = []
    for i, a in enumerate(atoms):
        flipped = k ^ (1 << (n - 1 - i))
        if np.any(table != table[flipped]):
            out.append(a)
    return tuple(out)


class _Side:
    """One side of rho: log WMC of a Boolean function, enumerated over its relevant atoms only.

    A single-world side (DPO, CPO: every side) is a plain sum of literal log-weights; a side with K > 1
    worlds gathers its (K, n) literals from one (B, 2n) stack and takes a logsumexp over the K worlds."""

    def __init__(self, table: np.ndarray):
        self.atoms = depends_on(table)
        n = len(self.atoms)
        idx = [ATOMS.index(a) for a in self.atoms]
        # Project the table onto the relevant atoms: take the worlds where every other atom is false.
        rows = []
        for k in range(2**n):
            full = sum(((k >> (n - 1 - j)) & 1) << (len(ATOMS) - 1 - idx[j]) for j in range(n))
            if table[full]:
                rows.append([(k >> (n - 1 - j)) & 1 for j in range(n)])
        self.worlds = [tuple((a, bool(bit)) for a, bit in zip(self.atoms, row)) for row in rows]
        self.negated = {a for world in self.worlds for a, positive in world if not positive}
        # column j of the literal stack is atom j's log p, column n + j its log(1 - p)
        self.index = torch.tensor([j if bit else n + j for row in rows for j, bit in enumerate(row)], dtype=torch.long)
        self._index_on: dict = {}

    def log_wmc(self, pos: Mapping[str, torch.Tensor], neg: Mapping[str, torch.Tensor],
                like: torch.Tensor) -> torch.Tensor:
        if not self.atoms:  # the side is T (an empty side is rejected at construction): WMC = 1
            return torch.zeros_like(like)
        if len(self.worlds) == 1:
            terms = [pos[a] if positive else neg[a] for a, positive in self.worlds[0]]
            out = terms[0]
            for t in terms[1:]:
                out = out + t
            return out
        n, k = len(self.atoms), len(self.worlds)
        lits = torch.stack([pos[a] for a in self.atoms] + [neg.get(a, pos[a]) for a in self.atoms], dim=-1)
        index = self._index_on.get(lits.device)
        if index is None:
            index = self._index_on[lits.device] = self.index.to(lits.device)
        world_logw = lits.index_select(-1, index).unflatten(-1, (k, n)).sum(-1)  # (B, K)
        return torch.logsumexp(world_logw, dim=-1)


class PreferenceStructure:
    """A preference structure (P, P_C, P_A) compiled into a loss (Richardson et al., ICML 2025):

        rho = log WMC(P & P_C) - log WMC((~P & P_C) | P_A)

    core: P, the formula the preference should satisfy; condition: P_C, the worlds that count at all
    (default T); additional: P_A, worlds added to the losing side (default F). Strings or parsed formulas.
    Raises ValueError at construction when a side is empty (rho would be -inf or +inf for every input).
    `uses_reference` says whether rho depends on Rw/Rl (then rho() needs the reference log-probs).
    """

    def __init__(self, core: str | Formula, condition: str | Formula = "T", additional: str | Formula = "F",
                 *, name: str | None = None, doc: str | None = None, recommended: Mapping | None = None):
        self.core = parse(core, "core")
        self.condition = parse(condition, "condition")
        self.additional = parse(additional, "additional")
        self.name, self.doc = name, doc
        self.recommended = dict(recommended or {})  # training settings of the original method (link, ...)
        self.check = Binary("&", self.core, self.condition)  # P & P_C
        self.cross = Binary("|", Binary("&", Not(self.core), self.condition), self.additional)
        self.check_table = truth_table(self.check)  # (16,) over ATOMS
        self.cross_table = truth_table(self.cross)
        label = f"structure {name!r}" if name else f"structure ({self.core}, {self.condition}, {self.additional})"
        if not self.check_table.any():
            raise ValueError(
                f"core/condition: {label} has an empty check side: P & P_C = {self.check} is unsatisfiable, so "
                "rho = -inf for every input. Weaken the condition or the core."
            )
        if not self.cross_table.any():
            raise ValueError(
                f"core/condition/additional: {label} has an empty cross side: (~P & P_C) | P_A is unsatisfiable, "
                "so rho = +inf for every input and the loss is constant. Widen the condition or add P_A."
            )
        self._check, self._cross = _Side(self.check_table), _Side(self.cross_table)
        self.atoms = tuple(a for a in ATOMS if a in set(self._check.atoms) | set(self._cross.atoms))
        self._negated = tuple(a for a in self.atoms if a in self._check.negated | self._cross.negated)
        self.uses_reference = any(a in REFERENCE_ATOMS for a in self.atoms)
        # Swapping chosen and rejected maps world (Mw, Ml, Rw, Rl) to (Ml, Mw, Rl, Rw). If that maps the
        # check side onto the cross side, rho(l, w) = -rho(w, l) exactly and the flip correction is free.
        perm = _swap_permutation()
        self.antisymmetric = bool(np.array_equal(self.check_table[perm], self.cross_table))
        self.__doc__ = doc or self.__class__.__doc__

    def __repr__(self) -> str:
        name = f"name={self.name!r}, " if self.name else ""
        return f"PreferenceStructure({name}core={str(self.core)!r}, condition={str(self.condition)!r}, " \
               f"additional={str(self.additional)!r})"

    # ------------------------------------------------------------------------------------ rho and loss
    def rho(self, policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
            ref_chosen_logps: torch.Tensor | None = None, ref_rejected_logps: torch.Tensor | None = None,
            *, eps: float = 1e-6) -> torch.Tensor:
        """Per-example rho = log WMC(check) - log WMC(cross), in float32 or wider (bf16 inputs are upcast).

        The arguments are atom log-weights: sequence log-probs, summed or length-normalised (your choice,
        per atom; see `atom_logps`). All broadcast to one shape. eps: see `log1mexp`."""
        logps = {"Mw": policy_chosen_logps, "Ml": policy_rejected_logps}
        if self.uses_reference:
            if ref_chosen_logps is None or ref_rejected_logps is None:
                raise ValueError(
                    f"ref_chosen_logps/ref_rejected_logps: {self!r} depends on {list(self.atoms)}, which include "
                    "the reference atoms Rw/Rl; pass the reference model's log-probs."
                )
            logps.update(Rw=ref_chosen_logps, Rl=ref_rejected_logps)
        logps = {a: torch.as_tensor(logps[a]) for a in self.atoms} or {"Mw": torch.as_tensor(policy_chosen_logps)}
        if len({t.shape for t in logps.values()}) > 1:
            logps = dict(zip(logps, torch.broadcast_tensors(*logps.values())))
        dtype = torch.float32  # at least: bf16/fp16 log-probs lose log(1 - p) and the logsumexp
        for t in logps.values():
            dtype = torch.promote_types(dtype, t.dtype)
        logps = {a: t.to(dtype) for a, t in logps.items()}
        negs = {a: log1mexp(logps[a], eps) for a in self._negated}  # only atoms that occur negated
        like = next(iter(logps.values()))
        return self._check.log_wmc(logps, negs, like) - self._cross.log_wmc(logps, negs, like)

    def loss(self, policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor | None = None, ref_rejected_logps: torch.Tensor | None = None,
             *, beta: float = 1.0, link: str = "logistic", margin: float = 0.0,
             flip_rate: float | torch.Tensor = 0.0, eps: float = 1e-6) -> torch.Tensor:
        """Per-example loss f(beta*rho - margin) for link f in LINKS (margin = SimPO's gamma; 0 elsewhere).

        flip_rate eps in [0, 1/2) applies the rDPO correction (Chowdhury et al., ICML 2024) to any structure:
            L_eps = [(1 - eps) * f(z(w, l)) - eps * f(z(l, w))] / (1 - 2 eps),
        where z(l, w) swaps chosen and rejected (for antisymmetric structures such as DPO/CPO/ORPO this is
        -z(w, l); for others, e.g. unCPO, it is computed). Unbiased: under flips with rate eps its expectation
        is the clean loss. For DPO it is rDPO exactly. A float or a (B,) tensor of per-example rates."""
        _check_link(link, beta)
        args = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
        rho = self.rho(*args, eps=eps)
        out = _apply_link(link, beta * rho - margin, beta)
        if not torch.is_tensor(flip_rate) and float(flip_rate) == 0.0:
            return out
        from fairalign.align.losses import validate_flip_rate

        validate_flip_rate(flip_rate)
        if self.antisymmetric:
            rho_swapped = -rho
        else:
            rho_swapped = self.rho(policy_rejected_logps, policy_chosen_logps, ref_rejected_logps, ref_chosen_logps,
                                   eps=eps)
        flipped = _apply_link(link, beta * rho_swapped - margin, beta)
        e = torch.as_tensor(flip_rate, dtype=out.dtype, device=out.device)
        return ((1 - e) * out - e * flipped) / (1 - 2 * e)  # Eq. (8), Chowdhury et al. 2024, for any f


def _swap_permutation() -> np.ndarray:
    """Index map over the 16 worlds: world k -> the world with Mw<->Ml and Rw<->Rl exchanged."""
    k = np.arange(16)
    bit = lambda i: (k >> (3 - i)) & 1  # noqa: E731  (ATOMS order: Mw, Ml, Rw, Rl)
    return (bit(1) << 3) | (bit(0) << 2) | (bit(3) << 1) | bit(2)


def _check_link(link: str, beta: float) -> None:
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}; got {link!r}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0; got {beta}")


def _apply_link(link: str, z: torch.Tensor, beta: float) -> torch.Tensor:
    if link == "logistic":
        return F.softplus(-z)  # = -log sigma(z)
    if link == "hinge":
        return F.relu(1 - z)
    return ((z - 0.5) / beta) ** 2  # = (rho - 1/(2 beta))^2 at margin 0 (IPO, Azar et al. 2024)


# ---------------------------------------------------------------------------------- atom log-weights
def parse_normalisation(spec: str, field: str = "logp_normalisation") -> dict[str, str]:
    """'sum' | 'mean' for every atom, or per atom: 'Mw=mean,Ml=mean' (unnamed atoms stay 'sum')."""
    spec = (spec or "").strip()
    if spec in NORMALISATIONS:
        return dict.fromkeys(ATOMS, spec)
    out = dict.fromkeys(ATOMS, "sum")
    for part in spec.split(","):
        atom, _, mode = (s.strip() for s in part.partition("="))
        if atom not in ATOMS or mode not in NORMALISATIONS:
            raise ValueError(
                f"{field}: expected 'sum', 'mean' or a list like 'Mw=mean,Ml=mean' with atoms {ATOMS} and modes "
                f"{NORMALISATIONS}; got {spec!r}"
            )
        out[atom] = mode
    return out


def atom_logps(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
               chosen_lengths, rejected_lengths, normalisation: Mapping[str, str]) -> tuple:
    """Apply the per-atom choice: 'sum' keeps the summed sequence log-prob, 'mean' divides by the number of
    completion tokens (mean token log-prob). Returns the four atom log-weights (refs may be None).

    Why it matters: a summed log-prob of a whole answer is about -50 to -500, so 1 - p = 1 to float
    precision and every (1 - p) factor vanishes; ORPO then equals CPO and unCPO equals cross-entropy on
    y_w. Mean token log-probs (about -0.5 to -3) keep the negated atoms informative."""
    def norm(atom, logps, lengths):
        if logps is None or normalisation[atom] == "sum":
            return logps
        return logps / lengths.to(logps.dtype).clamp(min=1)

    return (norm("Mw", policy_chosen_logps, chosen_lengths), norm("Ml", policy_rejected_logps, rejected_lengths),
            norm("Rw", ref_chosen_logps, chosen_lengths), norm("Rl", ref_rejected_logps, rejected_lengths))
