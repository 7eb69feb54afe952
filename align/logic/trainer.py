"""LogicDPAConfig / LogicDPATrainer: train with a loss compiled from a preference structure.

Richardson, Srikumar, Sabharwal (ICML 2025): rho = log WMC(P & P_C) - log WMC((~P & P_C) | P_A),
loss = f(beta * rho - margin) with f in {logistic, hinge, squared}; optionally the rDPO flip-rate correction.

    fairalign train --config configs/recipes/logic/smollm2-135m_cpo.yaml
    fairalign train --config configs/recipes/logic/smollm2-135m_cpo.yaml --structure orpo
    fairalign train --config ... --structure "" --core "Ml -> Mw" --condition "Mw ^ Ml" --logp_normalisation mean

The reference model is loaded and run only when the structure depends on Rw/Rl (dpo, ipo, novel_ref, or
your own formulas); cpo, orpo, uncpo, ... train the policy alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from fairalign.align.logic.structure import LINKS, PreferenceStructure, atom_logps, parse_normalisation
from fairalign.align.logic.structures import STRUCTURES, get_structure
from fairalign.align.preference import PairLogps, PreferenceConfig, PreferenceTrainer


@dataclass
class LogicDPAConfig(PreferenceConfig):
    """Config for `LogicDPATrainer`. Give a structure by name or by formulas (not both):

    structure (str, e.g. "cpo"; names in STRUCTURES) or core / condition / additional (formula strings over
    Mw, Ml, Rw, Rl; condition defaults to "T", additional to "F").
    link ("logistic" | "hinge" | "squared"), logp_normalisation ("sum" | "mean" | per atom "Mw=mean,Ml=mean")
    and margin (float, SimPO's gamma): left unset (None), they take the named structure's recommended values
    (e.g. ORPO: mean), else logistic / sum / 0.
    flip_rate (eps in [0, 0.5), default 0): rDPO-style correction for label noise, any structure; a dataset
    column `flip_rate` overrides it per example. beta (default 0.1, DPOConfig's): the scale of rho.
    """

    FIELD_RANGES: ClassVar[dict[str, str]] = {"margin": "(-inf, inf)", "flip_rate": "[0, 0.5)", "log1mexp_eps": "(0, 1)"}

    structure: str | None = field(
        default=None, metadata={"help": f"Named structure: one of {', '.join(STRUCTURES)}. Or give `core`."}
    )
    core: str | None = field(
        default=None, metadata={"help": "Core formula P, e.g. 'Ml -> Mw' (instead of `structure`)."}
    )
    condition: str | None = field(default=None, metadata={"help": "Conditioning constraint P_C (default T)."})
    additional: str | None = field(default=None, metadata={"help": "Additional constraint P_A (default F)."})
    link: str | None = field(
        default=None, metadata={"help": f"f in loss = f(beta*rho - margin): {' | '.join(LINKS)}; None = recommended."}
    )
    logp_normalisation: str | None = field(
        default=None,
        metadata={"help": "Atom log-weights: 'sum' (sequence log-prob), 'mean' (per-token mean), or per atom "
                          "'Mw=mean,Ml=mean'; None = the structure's recommendation, else 'sum'."},
    )
    margin: float | None = field(
        default=None, metadata={"help": "gamma subtracted from beta*rho (SimPO); None = recommended."}
    )
    flip_rate: float = field(default=0.0, metadata={"help": "Label flip rate eps in [0, 0.5) for the rDPO correction."})
    log1mexp_eps: float = field(
        default=1e-6, metadata={"help": "Log-probs are clamped to <= -eps inside log(1 - p) (finite at p = 1)."}
    )

    def __post_init__(self):
        self.structure = self.structure or None  # "" from a command line means unset
        if self.structure is not None and self.core is not None:
            raise ValueError("structure/core: give a named structure or a core formula, not both "
                             f"(structure={self.structure!r}, core={self.core!r})")
        if self.structure is None and self.core is None:
            raise ValueError(f"structure: set structure (one of {', '.join(STRUCTURES)}) or a core formula")
        if self.structure is not None and (self.condition is not None or self.additional is not None):
            raise ValueError("condition/additional: only with core; a named structure fixes its own constraints")
        built = self.build_structure()  # parses and checks the formulas before any model loads
        rec = built.recommended
        self.link = self.link or rec.get("link", "logistic")
        self.logp_normalisation = self.logp_normalisation or rec.get("logp_normalisation", "sum")
        self.margin = rec.get("margin", 0.0) if self.margin is None else float(self.margin)
        if self.link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}; got {self.link!r}")
        parse_normalisation(self.logp_normalisation)
        super().__post_init__()

    def build_structure(self) -> PreferenceStructure:
        """The PreferenceStructure this config names (ValueError naming the field if malformed)."""
        if self.structure is not None:
            return get_structure(self.structure)
        return PreferenceStructure(self.core, self.condition or "T", self.additional or "F")


class LogicDPATrainer(PreferenceTrainer):
    """Trains with `args.build_structure()` compiled into a loss (see the module docstring).

    Logs `logic/rho` (mean rho of the batch) besides the base metrics, and `logic/clean_loss` (the loss
    without the flip correction) when flip_rate is used."""

    extra_columns = ("flip_rate",)

    def __init__(self, model, ref_model=None, args: LogicDPAConfig | None = None, **kwargs):
        if not isinstance(args, LogicDPAConfig):
            raise ValueError(f"args: LogicDPATrainer needs a LogicDPAConfig, got {type(args).__name__}")
        self.structure = args.build_structure()
        self.normalisation = parse_normalisation(args.logp_normalisation)
        self.needs_reference = self.structure.uses_reference  # no reference forward for CPO-like structures
        super().__init__(model, ref_model=ref_model, args=args, **kwargs)

    @classmethod
    def reference_needed(cls, args) -> bool:
        return args.build_structure().uses_reference

    def _atoms(self, logps: PairLogps) -> tuple:
        return atom_logps(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected,
                          logps.chosen_lengths, logps.rejected_lengths, self.normalisation)

    def pair_losses(self, logps: PairLogps) -> torch.Tensor:
        flip_rate = logps.batch.get("flip_rate", self.args.flip_rate)
        return self.structure.loss(*self._atoms(logps), beta=self.beta, link=self.args.link, margin=self.args.margin,
                                   flip_rate=flip_rate, eps=self.args.log1mexp_eps)

    def extra_metrics(self, logps: PairLogps, losses: torch.Tensor) -> dict[str, torch.Tensor]:
        atoms = self._atoms(logps)
        out = {"logic/rho": self.structure.rho(*atoms, eps=self.args.log1mexp_eps)}
        if "flip_rate" in logps.batch or self.args.flip_rate > 0:
            out["logic/clean_loss"] = self.structure.loss(*atoms, beta=self.beta, link=self.args.link,
                                                          margin=self.args.margin, eps=self.args.log1mexp_eps)
        return out
