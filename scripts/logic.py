"""`fairalign logic`: inspect a logic preference structure (Richardson, Srikumar, Sabharwal, ICML 2025).

Prints the truth table, the simplified check/cross sides, the closed form of rho, and how the structure
relates to the named losses (equivalent / entails / entailed by / incomparable).

    fairalign logic --structure orpo
    fairalign logic --core "(Ml & Rw) -> Mw" --condition "(Mw & Rl & ~Ml) | (Ml & Rw & ~Mw)"
    fairalign logic --decompile "log(pi_w*(1 - pi_l)) - log(pi_l*(1 - pi_w))"     # Algorithm 1
    fairalign logic --enumerate --family "Ml -> Mw"                                 # the no-reference space
    fairalign logic --structure cpo --json                                          # machine-readable
"""
from __future__ import annotations

import argparse
import json
import sys


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n\n")[2:]))
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--structure", help="A named structure (dpo, cpo, orpo, uncpo, ...; see --list).")
    what.add_argument("--core", help="Core formula P over Mw, Ml, Rw, Rl, e.g. 'Ml -> Mw'.")
    what.add_argument("--decompile", metavar="RHO",
                      help="rho as 'log(A) - log(B)' or 'A / B' in pi_w, pi_l, ref_w, ref_l: recover its structure.")
    what.add_argument("--enumerate", action="store_true", help="List the 225 finite no-reference losses.")
    what.add_argument("--list", action="store_true", help="List the named structures with their closed forms.")
    parser.add_argument("--condition", default="T", help="Conditioning constraint P_C (with --core; default T).")
    parser.add_argument("--additional", default="F", help="Additional constraint P_A (with --core; default F).")
    parser.add_argument("--family", help="With --enumerate: keep losses whose canonical core is equivalent to this.")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")
    return parser


def main(args) -> int:
    from fairalign.align.logic import STRUCTURES, PreferenceStructure, get_structure
    from fairalign.align.logic.decompile import decompile

    try:
        if args.enumerate:
            report = _enumerate_report(args.family)
        elif args.list:
            report = {"structures": [_describe(s, relations=False) for s in STRUCTURES.values()]}
        else:
            if args.structure:
                structure = get_structure(args.structure)
            elif args.core:
                structure = PreferenceStructure(args.core, args.condition, args.additional)
            elif args.decompile is not None:  # "" too: the parser says what is missing
                structure = decompile(args.decompile)
            else:
                print("fairalign logic: give --structure, --core, --decompile, --enumerate or --list", file=sys.stderr)
                return 2
            report = _describe(structure, relations=True)
    except ValueError as err:  # bad input (InputError is one): one line, exit code 2, like argparse
        print(f"fairalign logic: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else _to_text(report))
    return 0


def _describe(structure, relations: bool) -> dict:
    """Everything about one structure as a JSON-ready dict."""
    from fairalign.align.logic import STRUCTURES
    from fairalign.align.logic.decompile import formula_from_table
    from fairalign.align.logic.formula import truth_table, worlds
    from fairalign.align.logic.semantics import closed_form, relation, semantic_loss

    atoms = structure.atoms or ("Mw",)
    w = worlds()
    rows = []
    # one row per world over the structure's atoms (the other atoms false: they do not matter)
    for k in range(16):
        if any(w[a][k] for a in ("Mw", "Ml", "Rw", "Rl") if a not in atoms):
            continue
        rows.append({"world": {a: int(w[a][k]) for a in atoms},
                     "P": int(truth_table(structure.core)[k]), "P_C": int(truth_table(structure.condition)[k]),
                     "P_A": int(truth_table(structure.additional)[k]),
                     "check": int(structure.check_table[k]), "cross": int(structure.cross_table[k])})
    rho = closed_form(structure)
    out = {
        "name": structure.name, "doc": structure.doc,
        "core": str(structure.core), "condition": str(structure.condition), "additional": str(structure.additional),
        "check": str(formula_from_table(structure.check_table)),
        "cross": str(formula_from_table(structure.cross_table)),
        "atoms": list(structure.atoms), "uses_reference": structure.uses_reference,
        "antisymmetric": structure.antisymmetric, "recommended": structure.recommended,
        "rho": rho, "semantic_loss_beta1": semantic_loss(structure), "truth_table": rows,
        "complement_factors": "(1 - pi" in rho or "(1 - ref" in rho,
    }
    if relations:
        out["relations"] = {name: relation(structure, other) for name, other in STRUCTURES.items()
                            if other is not structure}
    return out


def _enumerate_report(family: str | None) -> dict:
    from fairalign.align.logic.semantics import enumerate_space, hasse_edges

    entries = enumerate_space(family=family)
    return {"family": family, "count": len(entries), "entries": [e.to_dict() for e in entries],
            "hasse_edges": [list(e) for e in hasse_edges(entries)]}


def _to_text(report: dict) -> str:
    if "entries" in report:
        lines = [f"{report['count']} losses" + (f" with core equivalent to {report['family']}" if report["family"] else
                                                 " (all finite no-reference structures)"),
                 "order: a |= b when a's check side entails b's and b's cross side entails a's (a's loss >= b's)",
                 f"{len(report['hasse_edges'])} covering pairs (use --json for the Hasse diagram)", "",
                 f"{'#':>3}  {'check side':<22} {'cross side':<22} {'rho':<52} names"]
        for e in report["entries"]:
            lines.append(f"{e['index']:>3}  {e['check']:<22} {e['cross']:<22} {e['rho']:<52} {', '.join(e['names'])}")
        return "\n".join(lines)
    if "structures" in report:
        return "\n".join(f"{s['name']:<16} rho = {s['rho']:<48} {s['doc']}" for s in report["structures"])
    r = report
    lines = [f"structure {r['name']}" if r["name"] else "structure", *( [f"  {r['doc']}"] if r["doc"] else []),
             f"  P   = {r['core']}", f"  P_C = {r['condition']}", f"  P_A = {r['additional']}",
             f"  check side  P & P_C           = {r['check']}",
             f"  cross side  (~P & P_C) | P_A  = {r['cross']}",
             f"  atoms {', '.join(r['atoms'])}; reference model {'needed' if r['uses_reference'] else 'not needed'}; "
             f"swapping chosen/rejected {'negates rho' if r['antisymmetric'] else 'does not negate rho'}", "",
             "truth table (1 = true; '*' marks the check side, 'x' the cross side)"]
    atoms = r["atoms"] or ["Mw"]
    lines.append("  " + " ".join(f"{a:>2}" for a in atoms) + " |  P P_C P_A | side")
    for row in r["truth_table"]:
        side = ("*" if row["check"] else "") + ("x" if row["cross"] else "")
        lines.append("  " + " ".join(f"{row['world'][a]:>2}" for a in atoms)
                     + f" |  {row['P']}  {row['P_C']}   {row['P_A']}  | {side}")
    lines += ["", "closed form (pi = policy probability, ref = reference probability)", f"  rho  = {r['rho']}",
              "  loss = -log sigma(beta*rho) (logistic) | max(0, 1 - beta*rho) (hinge) "
              "| (rho - 1/(2 beta))^2 (squared)"]
    if r["semantic_loss_beta1"]:
        lines.append(f"  at beta = 1 the logistic loss is the semantic loss {r['semantic_loss_beta1']}")
    if r["complement_factors"]:
        lines.append("  note: rho has (1 - p) factors; with summed sequence log-probs they are 1 to float precision "
                     "(use logp_normalisation=mean)")
    if r["recommended"]:
        lines.append(f"  recommended training settings: {r['recommended']}")
    if r.get("relations"):
        lines += ["", "relation to the named structures (entails = stricter, its loss is >= pointwise)"]
        groups: dict[str, list[str]] = {}
        for name, rel in r["relations"].items():
            groups.setdefault(rel, []).append(name)
        for rel in ("equivalent", "loss-equivalent", "entails", "entailed by", "incomparable"):
            if rel in groups:
                lines.append(f"  {rel:<16} {', '.join(groups[rel])}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(make_parser().parse_args()))
