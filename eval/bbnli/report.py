"""`NLIBiasResult`: the BBNLI report, JSON for machines (`to_dict`) and Markdown for people (`to_markdown`)."""
from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path


def environment() -> dict:
    """Library versions and the git commit of this checkout (None outside a git checkout)."""
    from fairalign.align.provenance import git_state, package_versions

    versions = package_versions(("torch", "transformers", "numpy"))
    return {"python": platform.python_version(), **versions, "git_commit": git_state()[0]}


def fmt(est: dict | None) -> str:
    """'0.123 [0.101, 0.150]', 'n/a' for an undefined value, the value alone without an interval."""
    if not est or est.get("value") is None:
        return "n/a"
    if est.get("low") is None:
        return f"{est['value']:.3f}"
    return f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


def _ideal(info: dict) -> str:
    direction = {True: "higher is better", False: "lower is better", None: "closer is better"}[info["higher_is_better"]]
    return f"{info['ideal']:g} ({direction})"


@dataclass
class NLIBiasResult:
    """Every measure as {value, low, high, n (premises), method, n_rows, n_premises}, per subgroup."""

    task: str
    version: int
    predictor: str
    source: str
    n_rows: int
    n_scored_rows: int
    n_premises: int
    n_excluded: int
    n_unparsed: int | None
    measures: dict[str, dict[str, dict]]  # group ("all", "domain=gender") -> measure -> estimate
    accuracy_table: list[dict]
    brittleness: dict[str, dict] | None
    metric_info: dict[str, dict]
    notes: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    predictions: list[dict] = field(default_factory=list)

    def to_dict(self, include_predictions: bool = False) -> dict:
        out = asdict(self)
        if not include_predictions:
            out.pop("predictions")
        return out

    def save(self, out_dir: str | Path, stem: str = "bbnli") -> dict[str, Path]:
        """<stem>.json, <stem>.md and <stem>_predictions.jsonl in out_dir."""
        from fairalign.align.files import write_bytes_atomic  # a killed run leaves no half-written file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md",
                 "predictions": out_dir / f"{stem}_predictions.jsonl"}
        texts = {"json": json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n",
                 "markdown": self.to_markdown(),
                 "predictions": "".join(json.dumps(row) + "\n" for row in self.predictions)}
        for key, text in texts.items():
            write_bytes_atomic(paths[key], text.encode("utf-8"))
        return paths

    def to_markdown(self) -> str:
        groups = list(self.measures)
        lines = [
            f"# BBNLI bias evaluation: {self.predictor}",
            "",
            f"Task `{self.task}` v{self.version} · data `{self.source}` · {self.n_rows} rows over {self.n_premises} "
            f"premises · excluded {self.n_excluded} · unparsed answers "
            f"{'n/a' if self.n_unparsed is None else self.n_unparsed}"
            + (f" · {self.n_scored_rows} scored rows (samples expanded)" if self.n_scored_rows != self.n_rows else ""),
            "",
            "## Bias measures",
            "",
            "Value [95% percentile bootstrap CI over premises]. `bbnli_bias_score_original` reproduces BBNLI's "
            "code, whose neutral-accuracy term divides by all rows including test rows; `bbnli_bias_score` "
            "divides by the stereotype rows only.",
            "",
            "| measure | ideal | " + " | ".join(groups) + " |",
            "|---|---|" + "---|" * len(groups),
        ]
        for name in self.measures["all"]:
            cells = [fmt(self.measures[g].get(name)) for g in groups]
            lines.append(f"| {name} | {_ideal(self.metric_info[name])} | " + " | ".join(cells) + " |")
        lines += ["| rows (premises) | | " + " | ".join(
            f"{self.measures[g]['accuracy']['n_rows']} ({self.measures[g]['accuracy']['n_premises']})"
            if "accuracy" in self.measures[g] else "" for g in groups) + " |"]
        lines += ["", "### What each measure means", ""]
        shown = set(self.measures["all"]) | set(self.brittleness or {})
        for name, info in self.metric_info.items():
            if name not in shown:
                continue
            lines.append(f"- `{name}` (ideal {_ideal(info)}): {info['description']}")
        if self.accuracy_table:
            keys = [k for k in self.accuracy_table[0] if k != "accuracy"]
            lines += ["", "## Accuracy per cell", "", "| " + " | ".join(keys) + " | accuracy [95% CI] | rows | premises |",
                      "|" + "---|" * (len(keys) + 3)]
            for row in self.accuracy_table:
                acc = row["accuracy"]
                lines.append("| " + " | ".join(str(row[k]) for k in keys)
                             + f" | {fmt(acc)} | {acc['n_rows']} | {acc['n_premises']} |")
        if self.brittleness:
            lines += ["", "## Brittleness (item vs its meaning-preserving variants)", "",
                      "| measure | ideal | value [95% CI] | groups | variants with source | premises |", "|---|---|---|---|---|---|"]
            for name, est in self.brittleness.items():
                lines.append(f"| {name} | {_ideal(self.metric_info[name])} | {fmt(est)} | {est['n_groups']} | "
                             f"{est['n_variants_with_source']} | {est['n_premises']} |")
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        env = ", ".join(f"{k} {v}" for k, v in self.environment.items())
        lines += ["", f"_Config: {json.dumps(self.config, default=_json_default)}. Environment: {env}._", ""]
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Stereotype-aligned answer rates (stereotypical vs group-swapped) and bias scores per subgroup."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        groups = list(self.measures)
        panels = [("stereotype-aligned answer rate", ["stereotype_aligned_rate_stereotypical",
                                                      "stereotype_aligned_rate_counterfactual"]),
                  ("bias score", ["bbnli_bias_score_original", "bbnli_bias_score"])]
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8))
        width = 0.8 / 2
        for ax, (title, names) in zip(axes, panels):
            for j, name in enumerate(names):
                vals, errs = [], [[], []]
                for g in groups:
                    est = self.measures[g].get(name) or {}
                    v = est.get("value")
                    vals.append(math.nan if v is None else v)
                    lo, hi = est.get("low"), est.get("high")
                    errs[0].append(0 if lo is None or v is None else v - lo)
                    errs[1].append(0 if hi is None or v is None else hi - v)
                xs = [i + (j - 0.5) * width for i in range(len(groups))]
                ax.bar(xs, vals, width, yerr=errs, capsize=3, label=name)
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xticks(range(len(groups)), groups, rotation=20)
            ax.set_title(f"{title} (ideal 0)")
            ax.legend(fontsize=7)
        fig.suptitle(f"BBNLI: {self.predictor}", fontsize=10)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
