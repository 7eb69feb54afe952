"""The result of an occupational bias run: JSON for machines, Markdown for people, matplotlib plots."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from fairalign.eval.stats import Estimate

IDEAL = {
    "mae_pp": "0 (lower is better)", "signed_error_pp": "0 (> 0: model over-represents the group)",
    "spearman": "+1 (higher is better)", "amplification_pp": "0 (> 0: exaggerates how jobs lean)",
    "amplification_slope": "1 (> 1 exaggerates, < 1 flattens)", "tvd_pp": "0 (lower is better)",
    "jsd_bits": "0 (lower is better)", "d2o_tvd_pp": "0 (lower is better)", "d2o_jsd_bits": "0 (lower is better)",
    "delta_mae_pp": "< 0 means debiasing reduced the error",
}
FOCUS = {"gender": "woman", "race": "white", "ethnicity": "hispanic"}


def _jsonable(x):
    if isinstance(x, Estimate):
        return x.to_dict()
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "item"):  # numpy scalars
        return _jsonable(x.item())
    return x


def _fmt(e: Estimate) -> str:
    if e.value is None:
        return f"n/a (n={e.n})"
    ci = f" [{e.low:.3g}, {e.high:.3g}]" if e.low is not None else ""
    return f"{e.value:.3g}{ci}"


@dataclass
class OccupationalBiasResult:
    model: str
    config: dict
    task_version: int
    bls: dict
    occupations: list
    templates: list
    conditions: dict  # condition -> direction -> method -> dimension/group -> {...}
    deltas: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def headline(self, condition: str = "baseline") -> dict:
        """Per scoring method: gender_mae_pp (women) and race_mae_pp per group (White, Black, Asian, Hispanic)."""
        out = {}
        for method, dims in self.conditions[condition].get("o2d", {}).items():
            h = {}
            if "gender" in dims:
                h["gender_mae_pp"] = dims["gender"]["metrics"]["woman"]["mae_pp"]
            race = {c: dims["race"]["metrics"][c]["mae_pp"] for c in ("white", "black", "asian")} if "race" in dims else {}
            if "ethnicity" in dims:
                race["hispanic"] = dims["ethnicity"]["metrics"]["hispanic"]["mae_pp"]
            if race:
                h["race_mae_pp"] = race
            out[method] = h
        return out

    def to_dict(self) -> dict:
        return _jsonable({
            "task": "occupation", "task_version": self.task_version, "model": self.model, "config": self.config,
            "bls": self.bls, "occupations": self.occupations, "templates": self.templates,
            "headline": {c: self.headline(c) for c in self.conditions}, "conditions": self.conditions,
            "deltas": self.deltas, "notes": self.notes,
        })

    def save_json(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def to_markdown(self) -> str:
        c = self.bls["caveats"]
        lines = [f"# Occupational bias vs BLS labour statistics: {self.model}", "",
                 f"Task `occupation` v{self.task_version}; {len(self.occupations)} occupations; BLS table {self.bls['year']} "
                 f"({self.bls['source']}). 95% bootstrap CIs over occupations.", "", "**Data caveats**", ""]
        for key in ("classification", "race_columns_do_not_sum_to_100", "hispanic_overlaps_race", "suppressed"):
            lines.append(f"- {c[key]}")
        lines.append(f"- {c['suppressed_rows']} rows of the table have suppressed percentages")
        if self.notes:
            lines += ["", "**Notes**", ""] + [f"- {n}" for n in self.notes]
        for cond, dirs in self.conditions.items():
            for method, dims in dirs.get("o2d", {}).items():
                lines += ["", f"## Occupation -> demographics: {cond}, {method}", "",
                          "| dimension | group | metric | value [95% CI] | n | ideal |", "|---|---|---|---|---|---|"]
                for dim, res in dims.items():
                    for group, ms in res["metrics"].items():
                        for name, est in ms.items():
                            lines.append(f"| {dim} | {group} | {name} | {_fmt(est)} | {est.n} | {IDEAL.get(name, '')} |")
                lines += ["", "Answer counts (refusals, unparseable and others are excluded from shares, never dropped):", ""]
                for dim, res in dims.items():
                    lines.append(f"- {dim}: " + ", ".join(f"{k} {v}" for k, v in res["counts"].items()))
                for dim, res in dims.items():
                    focus = FOCUS[dim]
                    rows = [r for r in res["per_occupation"] if not math.isnan(r[f"error_{focus}"])]
                    rows.sort(key=lambda r: r[f"error_{focus}"])
                    if rows:
                        lines += ["", f"Largest errors, {dim} ({focus}, model - BLS, pp): "
                                  + "; ".join(f"{r['name']} {r[f'error_{focus}']:+.1f}" for r in rows[:3] + rows[-3:][::-1])]
            for method, groups in dirs.get("d2o", {}).items():
                lines += ["", f"## Demographics -> occupation: {cond}, {method}", "",
                          "| group | metric | value [95% CI] | n | ideal | model's top occupation (model % / BLS %) |",
                          "|---|---|---|---|---|---|"]
                for g, res in groups.items():
                    top = res["top"][0] if res["top"] else None
                    top_s = f"{top['occupation']} ({top['model_pct']:.1f} / {top['bls_pct']:.1f})" if top else ""
                    for name, est in res["metrics"].items():
                        lines.append(f"| {g} | {name} | {_fmt(est)} | {est.n} | {IDEAL[name]} | {top_s} |")
                    lines.append(f"| {g} | counts | " + ", ".join(f"{k} {v}" for k, v in res["counts"].items()) + " | | | |")
        if self.deltas:
            lines += ["", "## Debiasing: change in MAE (debiased - baseline, pp, paired by occupation)", "",
                      "| method | dimension | group | delta_mae_pp [95% CI] | n |", "|---|---|---|---|---|"]
            for method, dims in self.deltas.items():
                for dim, groups in dims.items():
                    for g, d in groups.items():
                        lines.append(f"| {method} | {dim} | {g} | {_fmt(d['delta_mae_pp'])} | {d['delta_mae_pp'].n} |")
        return "\n".join(lines) + "\n"

    def plots(self, out_dir) -> list[Path]:
        """Per method and dimension: model vs BLS share per occupation (sorted by BLS share) and the error
        distribution (all conditions overlaid). Returns the PNG paths."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        base = self.conditions["baseline"].get("o2d", {})
        for method, dims in base.items():
            for dim, res in dims.items():
                focus = FOCUS[dim]
                fig, ax = plt.subplots(figsize=(10, 4.5))
                for marker, (cond, dirs) in zip("ox+", self.conditions.items()):
                    rows = sorted(dirs["o2d"][method][dim]["per_occupation"], key=lambda r: r[f"bls_{focus}"])
                    x = range(len(rows))
                    if cond == "baseline":
                        ax.plot(x, [r[f"bls_{focus}"] for r in rows], "k-", lw=2, label="BLS")
                        if len(rows) <= 40:
                            ax.set_xticks(list(x), [r["name"] for r in rows], rotation=90, fontsize=7)
                    ax.plot(x, [r[f"model_{focus}"] for r in rows], marker, ms=4, label=f"model ({cond})")
                ax.set_xlabel("occupations, sorted by BLS share")
                ax.set_ylabel(f"% {focus}")
                ax.set_title(f"{dim}: model vs BLS share per occupation ({method})")
                ax.legend()
                fig.tight_layout()
                p = out_dir / f"shares_{method}_{dim}.png"
                fig.savefig(p, dpi=120)
                plt.close(fig)
                paths.append(p)
                fig, ax = plt.subplots(figsize=(6, 4))
                for cond, dirs in self.conditions.items():
                    errs = [r[f"error_{focus}"] for r in dirs["o2d"][method][dim]["per_occupation"]]
                    errs = [e for e in errs if not math.isnan(e)]
                    if errs:
                        ax.hist(errs, bins=min(30, max(5, len(errs) // 3)), alpha=0.5, label=cond)
                ax.axvline(0, color="k", lw=1)
                ax.set_xlabel(f"model - BLS, % {focus} (pp)")
                ax.set_ylabel("occupations")
                ax.set_title(f"{dim}: error distribution ({method})")
                if ax.get_legend_handles_labels()[0]:
                    ax.legend()
                else:
                    ax.text(0.5, 0.5, "no parsed answers", transform=ax.transAxes, ha="center")
                fig.tight_layout()
                p = out_dir / f"errors_{method}_{dim}.png"
                fig.savefig(p, dpi=120)
                plt.close(fig)
                paths.append(p)
        return paths
