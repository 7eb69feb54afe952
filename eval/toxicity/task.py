"""The toxicity task declaration (`task.yaml`) as typed, validated dataclasses.

A task is data: the dataset (path, split, pinned revision), the generation kwargs, the scorer, the
threshold, the metrics with their direction and ideal value, `group_by` and `version` all live in YAML.
The CLI takes its defaults from here and reports carry `name` and `version`. A variant file may
`include:` a base file (relative path) and override a few keys; nested mappings are merged key by key.

    task = load_task()                          # eval/toxicity/task.yaml
    task = load_task("challenging")             # eval/toxicity/task_challenging.yaml
    task.generation_kwargs.num_samples          # 25
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

TASK_DIR = Path(__file__).resolve().parent
# Every metric the evaluation produces; the YAML must declare each one with its direction.
KNOWN_METRICS = ("expected_max_toxicity", "toxicity_probability", "per_continuation_toxic_rate",
                 "perplexity", "token_weighted_perplexity", "dist_1", "dist_2", "dist_3")


@dataclass
class DatasetSpec:
    path: str = field(default="allenai/real-toxicity-prompts", metadata={"help": "Hub dataset id or local JSONL"})
    split: str = field(default="train", metadata={"help": "dataset split"})
    revision: str | None = field(default=None, metadata={"help": "pinned Hub commit"})
    prompt_field: str | None = field(default=None, metadata={"help": "dotted key of the prompt text, e.g. prompt.text"})
    challenging_only: bool = field(default=False, metadata={"help": "keep RTP's challenging subset only"})


@dataclass
class GenerationKwargs:
    num_samples: int = field(default=25, metadata={"help": "k, continuations per prompt"})
    max_new_tokens: int = field(default=20, metadata={"help": "new tokens per continuation"})
    do_sample: bool = field(default=True, metadata={"help": "sample (the protocol) rather than greedy"})
    top_p: float = field(default=0.9, metadata={"help": "nucleus p"})
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature"})


@dataclass
class ScorerSpec:
    name: str = field(default="auto", metadata={"help": "auto | hf-classifier | perspective | profanity | a classifier id/path"})
    model: str = field(default="unitary/toxic-bert", metadata={"help": "classifier for auto / hf-classifier"})
    label: str = field(default="toxic", metadata={"help": "label in the classifier's config.id2label"})


@dataclass
class FluencySpec:
    evaluator: str | None = field(default="smollm2", metadata={"help": "evaluator LM for perplexity; null = skip"})
    distinct_n: list[int] = field(default_factory=lambda: [1, 2, 3], metadata={"help": "n for Dist-n"})


@dataclass
class BootstrapSpec:
    num_resamples: int = field(default=1000, metadata={"help": "bootstrap resamples over prompts"})
    seed: int = field(default=0, metadata={"help": "bootstrap RNG seed"})


@dataclass
class MetricSpec:
    metric: str = field(metadata={"help": f"one of {KNOWN_METRICS}"})
    aggregation: str = field(metadata={"help": "how per-example values reduce to one number (words)"})
    higher_is_better: bool = field(metadata={"help": "direction"})
    ideal: float | None = field(default=None, metadata={"help": "best attainable value; null when none exists"})


@dataclass
class ToxicityTask:
    task: str
    version: int
    dataset: DatasetSpec
    output_type: str
    generation_kwargs: GenerationKwargs
    scorer: ScorerSpec
    threshold: float
    fluency: FluencySpec
    bootstrap: BootstrapSpec
    metric_list: list[MetricSpec]
    group_by: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.output_type != "generate":
            raise ValueError(f"output_type must be 'generate' for the toxicity task (got {self.output_type!r})")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1] (got {self.threshold})")
        declared = [m.metric for m in self.metric_list]
        unknown = sorted(set(declared) - set(KNOWN_METRICS))
        missing = sorted(set(KNOWN_METRICS) - set(declared))
        if unknown or missing:
            raise ValueError(f"metric_list must declare exactly {list(KNOWN_METRICS)}; unknown: {unknown}, missing: {missing}")

    def metric(self, name: str) -> MetricSpec:
        return next(m for m in self.metric_list if m.metric == name)

    def to_dict(self) -> dict:
        return asdict(self)


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping (got {type(data).__name__})")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(names)}")
    return cls(**data)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read(path: Path, depth: int = 0) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    if "include" in data:
        if depth > 5:
            raise ValueError(f"{path}: include chain deeper than 5 files (a cycle?)")
        base = _read((path.parent / data.pop("include")).resolve(), depth + 1)
        data = _merge(base, data)
    return data


def load_task(name_or_path: str | Path | None = None) -> ToxicityTask:
    """Load `task.yaml` (None), a variant by suffix ("challenging" -> task_challenging.yaml), or a YAML path."""
    if name_or_path is None:
        path = TASK_DIR / "task.yaml"
    elif Path(name_or_path).suffix in (".yaml", ".yml"):
        path = Path(name_or_path)
    else:
        path = TASK_DIR / f"task_{name_or_path}.yaml"
    if not path.exists():
        variants = sorted(p.stem.removeprefix("task_") for p in TASK_DIR.glob("task_*.yaml"))
        raise ValueError(f"task file {path} not found; variants: {variants} (or pass a .yaml path)")
    data = _read(path)
    where = str(path)
    nested = {"dataset": DatasetSpec, "generation_kwargs": GenerationKwargs, "scorer": ScorerSpec,
              "fluency": FluencySpec, "bootstrap": BootstrapSpec}
    for key, cls in nested.items():
        data[key] = _build(cls, data.get(key, {}), f"{where}: {key}")
    data["metric_list"] = [_build(MetricSpec, m, f"{where}: metric_list[{i}]") for i, m in enumerate(data.get("metric_list", []))]
    return _build(ToxicityTask, data, where)
