"""Occupational bias against U.S. labour statistics (Gorti, Chadha & Gaur 2024, "Unboxing Occupational
Bias: Grounded Debiasing of LLMs with U.S. Labor Data"; templates, selection and metrics are ours and
documented in docs/occupation.md).

    result = evaluate_occupational_bias(model_or_callable, "cpsaat11.xlsx", tokenizer=tok, debias="bls-context")
    result.headline()  -> {"generate": {"gender_mae_pp": ..., "race_mae_pp": {...}}, ...}

Two directions: occupation -> demographics (ask about a person in each occupation; share of answers, or of
probability, per group vs the BLS share) and demographics -> occupation (what a person of a group works as,
vs the group's occupation mix in the table). Two scorings: "generate" (sampled answers, parsed; refusals and
unparseable counted) and "loglikelihood" (forced choice among the group words). Debiasing "bls-context"
puts k BLS facts about other occupations before each prompt; baseline and debiased runs are paired.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from fairalign.align.errors import InputError
from fairalign.align.validation import validate_fields
from fairalign.align.validation import check_types
from fairalign.eval.lm import LM, as_lm
from fairalign.eval.occupation import metrics as M
from fairalign.eval.occupation.bls import BLSTable, load_bls_table
from fairalign.eval.occupation.debias import HOLDOUTS, BLSContext
from fairalign.eval.occupation.parsing import OccupationLexicon, parse_answer
from fairalign.eval.occupation.probes import category_probabilities
from fairalign.eval.occupation.report import OccupationalBiasResult
from fairalign.eval.occupation.templates import (OVERRIDES, OccupationName, load_task, name_occupation,
                                                 resolve_occupations, select_templates)
from fairalign.eval.stats import wilson_ci

SCORINGS = ("auto", "generate", "loglikelihood", "both")
DIRECTIONS = ("o2d", "d2o")


@dataclass
class OccupationEvalConfig:
    """Every number of a run. Defaults come from eval/tasks/occupation.yaml where it declares them. Each numeric field declares
    its interval in metadata["range"]; construction checks types and ranges (`InputError` naming the field)."""

    scoring: str = field(default="auto", metadata={"help": "generate | loglikelihood | both | auto (both when the model can score)"})
    directions: tuple = field(default=DIRECTIONS, metadata={"help": "o2d (occupation -> demographics), d2o (demographics -> occupation)"})
    min_employment_thousands: float = field(default=100.0, metadata={"help": "default selection: detailed occupations with at least this many thousand employed", "range": "[0, inf)"})
    max_occupations: int | None = field(default=None, metadata={"help": "keep the N most employed selected occupations (quick runs)", "range": "[1, inf)"})
    num_samples: int = field(default=5, metadata={"help": "generations per prompt", "range": "[1, inf)"})
    max_new_tokens: int = field(default=16, metadata={"help": "tokens per generated answer", "range": "[1, inf)"})
    do_sample: bool = field(default=True, metadata={"help": "sample (True) or greedy"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature", "range": "(0, inf)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass", "range": "(0, 1]"})
    seed: int = field(default=0, metadata={"help": "generation seed, fact sampling seed and bootstrap seed", "range": "[0, inf)"})
    debias: str | None = field(default=None, metadata={"help": "None or 'bls-context' (also runs the baseline, paired)"})
    k: int = field(default=8, metadata={"help": "BLS facts per prompt with debias='bls-context' (the paper reports 32)", "range": "[1, inf)"})
    holdout: str = field(default="asked", metadata={"help": "asked: facts never about the asked occupation; evaluated: never about any evaluated one"})
    num_resamples: int = field(default=1000, metadata={"help": "bootstrap resamples per CI", "range": "[1, inf)"})
    batch_prompts: int = field(default=64, metadata={"help": "prompts per call to the model (progress granularity)", "range": "[1, inf)"})
    progress: bool = field(default=True, metadata={"help": "progress bars (off when a caller shows its own)"})

    def __post_init__(self):
        if isinstance(self.directions, (list, tuple)):
            self.directions = tuple(self.directions)
        check_types(self)
        validate_fields(self)
        if self.scoring not in SCORINGS:
            raise InputError(f"OccupationEvalConfig.scoring must be one of {SCORINGS}; got {self.scoring!r}")
        if not self.directions or any(d not in DIRECTIONS for d in self.directions):
            raise InputError(f"OccupationEvalConfig.directions must be a non-empty subset of {DIRECTIONS}; got {self.directions}")
        if self.debias not in (None, "bls-context"):
            raise InputError(f"OccupationEvalConfig.debias must be None or 'bls-context'; got {self.debias!r}")
        if self.holdout not in HOLDOUTS:
            raise InputError(f"OccupationEvalConfig.holdout must be one of {HOLDOUTS}; got {self.holdout!r}")


# ------------------------------------------------------------------------------------------- selection
def select_occupations(table: BLSTable, occupations=None, min_employment_thousands: float = 100.0,
                       max_occupations: int | None = None, task: dict | None = None) -> list[OccupationName]:
    """The default rule (eval/tasks/occupation.yaml `selection`) or a user list; every selected row must have published shares."""
    task = task or load_task()
    if occupations is not None:
        names = resolve_occupations(occupations, table.df.loc[table.df["is_detailed"], "occupation"].tolist())
        bad = [n.bls for n in names if any(math.isnan(v) for k, v in table.row(n.bls).items() if k.startswith("pct_"))]
        if bad:
            raise InputError(f"occupations: {bad} have suppressed BLS percentages (base < 50,000); nothing to compare against")
    else:
        rows = table.detailed(min_employment_thousands, require_published=task["selection"]["require_published"])
        patterns = [re.compile(p, re.I) for p in task["selection"]["exclude_patterns"]]
        keep = [o for o in rows["occupation"] if o.lower() in OVERRIDES or not any(p.search(o) for p in patterns)]
        names = [name_occupation(o) for o in keep]
    if max_occupations is not None:
        emp = {n.bls: table.row(n.bls)["total_employed_thousands"] for n in names}
        top = set(sorted(emp, key=lambda o: -emp[o])[:max_occupations])
        names = [n for n in names if n.bls in top]
    if not names:
        raise InputError("no occupations selected: lower min_employment_thousands or pass occupations=[...]")
    return names


def bls_shares(row: dict, dimension: str, task: dict, renormalize: bool = True) -> dict[str, float]:
    """Reference distribution (percent, sums to 100) of a dimension's categories for one BLS row.
    renormalize=False keeps the raw BLS percentages (a group's head count is total * raw share)."""
    spec = task["dimensions"][dimension]
    out = {}
    for cat, c in spec["categories"].items():
        out[cat] = float(row[c["bls"]]) if "bls" in c else math.nan
    for cat, c in spec["categories"].items():
        if "complement_of" in c:
            out[cat] = 100.0 - out[c["complement_of"]]
    if renormalize and spec.get("renormalize"):
        s = sum(out.values())
        out = {c: 100.0 * v / s for c, v in out.items()}
    return out


def categories_of_interest(dimension: str, task: dict) -> list[str]:
    """The categories reported one by one: those with their own BLS column (not complements)."""
    return [c for c, s in task["dimensions"][dimension]["categories"].items() if "bls" in s]


# ----------------------------------------------------------------------------------------------- model
def _can_score(lm: LM) -> bool:
    return type(lm).loglikelihood is not LM.loglikelihood


def _generate(lm: LM, prompts: list[str], cfg: OccupationEvalConfig, desc: str) -> dict[str, list[str]]:
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(prompts))
    out: dict[str, list[str]] = {}
    for start in tqdm(range(0, len(unique), cfg.batch_prompts), desc=desc, leave=False, disable=not cfg.progress):
        chunk = unique[start : start + cfg.batch_prompts]
        texts = lm.generate(chunk, num_samples=cfg.num_samples, max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample,
                            top_p=cfg.top_p, temperature=cfg.temperature, seed=cfg.seed + start)
        out.update(zip(chunk, texts))
    return out


def _probabilities(lm: LM, prompts: list[str], probes: list[dict], cfg: OccupationEvalConfig, desc: str) -> list[dict]:
    from tqdm.auto import tqdm

    out = []
    for start in tqdm(range(0, len(prompts), cfg.batch_prompts), desc=desc, leave=False, disable=not cfg.progress):
        out += category_probabilities(lm, prompts[start : start + cfg.batch_prompts], probes[start : start + cfg.batch_prompts])
    return out


# ------------------------------------------------------------------------------------------- directions
def run_o2d(lm, table, names, templates, prefix, methods, cfg, task) -> dict:
    """Occupation -> demographics for one condition: per-occupation shares and metrics, per method."""
    items = [(t, n) for t in templates if t.direction == "o2d" for n in names]
    prompts = [prefix(n.bls, t.dimension) + t.render(n) for t, n in items]
    raw: dict[str, list] = {}
    if "generate" in methods:
        answers = _generate(lm, prompts, cfg, "occupation->demographics (generate)")
        raw["generate"] = [[parse_answer(a, t.dimension) for a in answers[p]] for (t, _), p in zip(items, prompts)]
    if "loglikelihood" in methods:
        raw["loglikelihood"] = _probabilities(lm, prompts, [t.probes for t, _ in items], cfg, "occupation->demographics (probabilities)")
    out = {}
    for method, per_item in raw.items():
        out[method] = {}
        for dim in dict.fromkeys(t.dimension for t, _ in items):
            cats = list(task["dimensions"][dim]["categories"])
            by_occ: dict[str, list] = {}
            for (t, o), r in zip(items, per_item):
                if t.dimension == dim:
                    by_occ.setdefault(o.bls, []).append(r)
            rows = []
            for n in names:
                got = by_occ.get(n.bls, [])
                rows.append(_occupation_row(table.row(n.bls), n, dim, cats, method, got, task))
            pivot = bls_shares(table.total, dim, task)
            cm = {c: M.category_metrics([r[f"model_{c}"] for r in rows], [r[f"bls_{c}"] for r in rows], pivot[c],
                                        cfg.num_resamples, cfg.seed) for c in categories_of_interest(dim, task)}
            cm["all"] = M.distribution_metrics([[r[f"model_{c}"] for c in cats] for r in rows],
                                               [[r[f"bls_{c}"] for c in cats] for r in rows], cfg.num_resamples, cfg.seed)
            counts = {}
            for r in rows:
                for key, v in r["counts"].items():
                    counts[key] = counts.get(key, 0) + v
            out[method][dim] = {"per_occupation": rows, "metrics": cm, "counts": counts,
                                "occupations_scored": sum(not math.isnan(r[f"model_{cats[0]}"]) for r in rows)}
    return out


def _occupation_row(bls_row, name, dim, cats, method, got, task) -> dict:
    ref = bls_shares(bls_row, dim, task)
    row = {"occupation": name.bls, "name": name.singular, "dimension": dim, "method": method,
           "total_employed_thousands": bls_row["total_employed_thousands"]}
    if method == "generate":
        labels = [lab for answers in got for lab in answers]
        counts = {lab: labels.count(lab) for lab in dict.fromkeys(labels)}
        valid = sum(counts.get(c, 0) for c in cats)
        row["n"] = valid
        for c in cats:
            ci = wilson_ci(counts.get(c, 0), valid)
            row[f"model_{c}"] = 100.0 * ci.value if valid else math.nan
            row[f"ci_{c}"] = [100.0 * ci.low, 100.0 * ci.high] if valid else [None, None]
        row["counts"] = {"answers": len(labels), **counts}
    else:
        row["n"] = len(got)  # templates
        for c in cats:
            vals = [g[c] for g in got]
            row[f"model_{c}"] = 100.0 * float(np.mean(vals))
            row[f"template_sd_{c}"] = 100.0 * float(np.std(vals))
        row["counts"] = {"prompts": len(got)}
    for c in cats:
        row[f"bls_{c}"] = ref[c]
        row[f"error_{c}"] = row[f"model_{c}"] - ref[c]
    return row


def run_d2o(lm, table, names, templates, prefix, methods, cfg, task) -> dict:
    """Demographics -> occupation: the model's occupation mix per group vs the group's BLS mix."""
    groups = task["group_nouns"]
    items = [(t, g) for t in templates if t.direction == "d2o" for g in groups]
    if not items:
        return {}
    prompts = [prefix(None, None) + t.render(group=groups[g]["noun"]) for t, g in items]
    bls_mix = {}
    for g, spec in groups.items():
        rows = [table.row(n.bls) for n in names]
        # Head counts: total x raw BLS share (not renormalised: total * % White = White workers).
        w = np.array([r["total_employed_thousands"] * bls_shares(r, spec["dimension"], task, renormalize=False)[g] for r in rows])
        bls_mix[g] = w / w.sum()
    index = {n.bls: i for i, n in enumerate(names)}
    out = {}
    if "generate" in methods:
        lexicon = OccupationLexicon(names)
        answers = _generate(lm, prompts, cfg, "demographics->occupation (generate)")
        per_group: dict[str, list[str]] = {g: [] for g in groups}
        for (t, g), p in zip(items, prompts):
            per_group[g] += [lexicon.parse(a) for a in answers[p]]
        out["generate"] = {}
        for g, labels in per_group.items():
            matched = [index[lab] for lab in labels if lab in index]
            counts = {k: labels.count(k) for k in ("ambiguous", "other", "refusal", "unparseable")}

            def stat(sample, g=g):
                if not sample:
                    return math.nan
                mix = np.bincount(sample, minlength=len(names)).astype(float)
                return M.tvd_pp(mix, bls_mix[g])

            def stat_jsd(sample, g=g):
                if not sample:
                    return math.nan
                return M.jsd_bits(np.bincount(sample, minlength=len(names)).astype(float), bls_mix[g])

            mix = np.bincount(matched, minlength=len(names)) if matched else np.zeros(len(names))
            out["generate"][g] = {
                "metrics": {"d2o_tvd_pp": M.bootstrap_rows(matched, stat, cfg.num_resamples, cfg.seed),
                            "d2o_jsd_bits": M.bootstrap_rows(matched, stat_jsd, cfg.num_resamples, cfg.seed)},
                "counts": {"answers": len(labels), "matched": len(matched), **counts},
                "top": _top(mix / max(mix.sum(), 1), bls_mix[g], names),
            }
    if "loglikelihood" in methods:
        probes = [{n.bls: [" " + n.with_article] for n in names} for _ in items]
        probs = _probabilities(lm, prompts, probes, cfg, "demographics->occupation (probabilities)")
        out["loglikelihood"] = {}
        for g in groups:
            dists = [np.array([p[n.bls] for n in names]) for (t, gg), p in zip(items, probs) if gg == g]
            out["loglikelihood"][g] = {
                "metrics": {"d2o_tvd_pp": M.bootstrap_rows(dists, lambda ds, g=g: M.tvd_pp(np.mean(ds, 0), bls_mix[g]), cfg.num_resamples, cfg.seed),
                            "d2o_jsd_bits": M.bootstrap_rows(dists, lambda ds, g=g: M.jsd_bits(np.mean(ds, 0), bls_mix[g]), cfg.num_resamples, cfg.seed)},
                "counts": {"prompts": len(dists)},
                "top": _top(np.mean(dists, 0), bls_mix[g], names),
            }
    return out


def _top(model_mix, bls_mix, names, n: int = 5) -> list[dict]:
    order = np.argsort(-model_mix)[:n]
    return [{"occupation": names[i].bls, "model_pct": 100.0 * float(model_mix[i]), "bls_pct": 100.0 * float(bls_mix[i])} for i in order]


# ------------------------------------------------------------------------------------------- entry point
def evaluate_occupational_bias(generator_or_callable, bls_table, occupations=None, templates=None, debias=None,
                               k: int = 8, tokenizer=None, **config) -> OccupationalBiasResult:
    """Run the evaluation. generator_or_callable: an `LM`, a (model, tokenizer) pair, a model with
    `tokenizer=`, or a callable prompts -> texts (generation only). bls_table: a `BLSTable`, a path, or a year.
    occupations: None (selection rule) or names (BLS names, singular/plural/variants, or {"bls", "name"} dicts).
    templates: None (all of eval/tasks/occupation.yaml) or template ids / `Template`s. Other options: `OccupationEvalConfig`."""
    cfg = OccupationEvalConfig(debias=debias, k=k, **config)
    task = load_task()
    lm = as_lm(generator_or_callable, tokenizer)
    can_score = _can_score(lm)
    if cfg.scoring in ("loglikelihood", "both") and not can_score:
        raise InputError(f"scoring={cfg.scoring!r} needs log-likelihoods, which {type(lm).__name__} cannot give: "
                         "pass a transformers model with its tokenizer, or scoring='generate'")
    if bls_table is None:
        raise InputError("bls_table: pass a BLSTable, the path of a cpsaat11 xlsx/CSV, or a year")
    table = bls_table if isinstance(bls_table, BLSTable) else load_bls_table(bls_table)
    names = select_occupations(table, occupations, cfg.min_employment_thousands, cfg.max_occupations, task)
    tpls = select_templates(templates, task)
    methods = {"auto": ("generate", "loglikelihood") if can_score else ("generate",), "both": ("generate", "loglikelihood"),
               "generate": ("generate",), "loglikelihood": ("loglikelihood",)}[cfg.scoring]
    conditions = {"baseline": lambda occ, dim: ""}
    notes = []
    d2o_conditions = {"baseline"}
    if cfg.debias:
        ctx = BLSContext(table, cfg.k, cfg.holdout, cfg.seed, tuple(n.bls for n in names), task["debias"]["header"])
        conditions[cfg.debias] = ctx.prefix
        if ctx.available(None) >= cfg.k:
            d2o_conditions.add(cfg.debias)
        elif "d2o" in cfg.directions:
            # Facts for demographics -> occupation prompts may not mention any evaluated occupation.
            notes.append(f"demographics -> occupation was not run with {cfg.debias}: only {ctx.available(None)} BLS "
                         f"occupations are left outside the evaluated ones, fewer than k={cfg.k}")
    results = {}
    for cond, prefix in conditions.items():
        results[cond] = {}
        if "o2d" in cfg.directions:
            results[cond]["o2d"] = run_o2d(lm, table, names, tpls, prefix, methods, cfg, task)
        if "d2o" in cfg.directions and cond in d2o_conditions:
            results[cond]["d2o"] = run_d2o(lm, table, names, tpls, prefix, methods, cfg, task)
    deltas = _deltas(results, cfg, task) if cfg.debias else {}
    return OccupationalBiasResult(
        model=getattr(lm, "name", type(lm).__name__), config=asdict(cfg), task_version=task["version"],
        bls=table.to_dict(), occupations=[asdict(n) for n in names], templates=[asdict(t) for t in tpls],
        conditions=results, deltas=deltas, notes=notes,
    )


def _deltas(results: dict, cfg: OccupationEvalConfig, task: dict) -> dict:
    """Debiased minus baseline MAE per method, dimension and category, paired by occupation."""
    base, after = results["baseline"].get("o2d", {}), results[cfg.debias].get("o2d", {})
    out = {}
    for method, dims in base.items():
        for dim, res in dims.items():
            rows0, rows1 = res["per_occupation"], after[method][dim]["per_occupation"]
            for c in categories_of_interest(dim, task):
                est = M.paired_delta_mae([r[f"model_{c}"] for r in rows0], [r[f"model_{c}"] for r in rows1],
                                         [r[f"bls_{c}"] for r in rows0], cfg.num_resamples, cfg.seed)
                out.setdefault(method, {}).setdefault(dim, {})[c] = {"delta_mae_pp": est}
    return out
