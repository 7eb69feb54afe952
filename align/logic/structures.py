"""Named preference structures (Richardson, Srikumar, Sabharwal, ICML 2025), each with
the closed form it compiles to. Notation: pw = pi_theta(y_w|x), pl = pi_theta(y_l|x), refw / refl the same
under the reference; lw = log pw etc.; h = (lw - log refw) - (ll - log refl).

Every closed form below is checked against the compiled loss in tests/align_logic/test_logic_structures.py.
`recommended` holds the training settings of the original method (link, per-atom log-prob normalisation,
margin); LogicDPAConfig uses them where its own fields are left unset.

Not included: the paper's cCPO, whose exact constraints we could not pin down from the sources available
here; any member of its family can be written with the formula API or found with `fairalign logic
--enumerate --family "Ml -> Mw"`.
"""
from __future__ import annotations

from fairalign.align.logic.structure import PreferenceStructure

_DPO_CORE = "(Ml & Rw) -> (Mw & Rl)"
_DPO_COND = "(Ml & Rw) | (Mw & Rl)"
_DPO_ADD = "(Ml & Rw) & (Mw & Rl)"

_SPECS: dict[str, dict] = {
    "dpo": dict(
        core=_DPO_CORE, condition=_DPO_COND, additional=_DPO_ADD,
        doc="DPO (Rafailov et al. 2023): rho = h, loss = -log sigma(beta*h).",
    ),
    "ipo": dict(
        core=_DPO_CORE, condition=_DPO_COND, additional=_DPO_ADD, recommended={"link": "squared"},
        doc="IPO (Azar et al. 2024): the DPO structure with the squared link, loss = (h - 1/(2 beta))^2.",
    ),
    "cpo": dict(
        core="Ml -> Mw", condition="Mw | Ml", additional="Mw & Ml",
        doc="CPO's preference term (Xu et al. 2024): rho = lw - ll, loss = -log sigma(beta*(lw - ll)).",
    ),
    "slic": dict(
        core="Ml -> Mw", condition="Mw | Ml", additional="Mw & Ml", recommended={"link": "hinge"},
        doc="SLiC-HF's calibration term (Zhao et al. 2023): the CPO structure with the hinge link, "
            "loss = max(0, 1 - beta*(lw - ll)).",
    ),
    "simpo": dict(
        core="Ml -> Mw", condition="Mw | Ml", additional="Mw & Ml",
        recommended={"logp_normalisation": "mean", "margin": 0.5},
        doc="SimPO (Meng et al. 2024): the CPO structure on mean token log-probs with margin gamma, "
            "loss = -log sigma(beta*(lw/|y_w| - ll/|y_l|) - gamma) (gamma = 0.5 as in TRL's simpo_gamma).",
    ),
    "orpo": dict(
        core="Ml -> Mw", condition="Mw ^ Ml", recommended={"logp_normalisation": "mean"},
        doc="ORPO's odds-ratio term (Hong et al. 2024): rho = log[pw (1-pl)] - log[pl (1-pw)] (the log odds "
            "ratio), loss = -log sigma(beta*rho). Use mean token log-probs (ORPO does): on summed log-probs "
            "1 - p = 1 and this collapses to CPO. ORPO adds an NLL term on y_w, which is not part of the structure.",
    ),
    "uncpo": dict(
        core="Ml -> Mw", recommended={"logp_normalisation": "mean"},
        doc="unCPO (new in the paper): the unconditioned core of CPO, rho = log[1 - pl + pl*pw] - log[pl (1-pw)]; "
            "at beta = 1 the logistic loss is the semantic loss -log(pl*pw + 1 - pl).",
    ),
    "ce": dict(
        core="Mw",
        doc="Cross-entropy on the chosen answer: rho = log pw - log(1 - pw); at beta = 1 the logistic loss is "
            "-log pw (the SFT negative log-likelihood).",
    ),
    "unlikelihood": dict(
        core="~Ml", recommended={"logp_normalisation": "mean"},
        doc="Unlikelihood on the rejected answer (Welleck et al. 2020): rho = log(1 - pl) - log pl; at beta = 1 "
            "the logistic loss is -log(1 - pl).",
    ),
    "ce_unlikelihood": dict(
        core="Mw & ~Ml", recommended={"logp_normalisation": "mean"},
        doc="Cross-entropy plus unlikelihood: rho = log[pw (1-pl)] - log[1 - pw (1-pl)]; at beta = 1 the logistic "
            "loss is -log pw - log(1 - pl).",
    ),
    "novel_ref": dict(
        core="(Ml & Rw) -> Mw", condition="(Mw & Rl & ~Ml) | (Ml & Rw & ~Mw)",
        doc="The paper's novel reference-model loss (the modified DPO of its Fig. 1 / slides): "
            "rho = log[pw * refl * (1-pl)] - log[pl * refw * (1-pw)] = h + log(1-pl) - log(1-pw).",
    ),
}


def _build() -> dict[str, PreferenceStructure]:
    out = {}
    for name, spec in _SPECS.items():
        spec = dict(spec)
        recommended = spec.pop("recommended", {})
        out[name] = PreferenceStructure(spec.pop("core"), spec.pop("condition", "T"), spec.pop("additional", "F"),
                                        name=name, doc=spec.pop("doc"), recommended=recommended)
    return out


STRUCTURES: dict[str, PreferenceStructure] = _build()


def get_structure(name: str) -> PreferenceStructure:
    """STRUCTURES[name] with a ValueError listing the names on a miss."""
    try:
        return STRUCTURES[name]
    except KeyError:
        raise ValueError(f"structure: unknown name {name!r}; known: {', '.join(STRUCTURES)}") from None
