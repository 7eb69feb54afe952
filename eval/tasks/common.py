"""What every task module returns, and the context it runs in.

A task is `eval/tasks/<name>.yaml` plus the module its `module:` key names, which provides
    run(system, source, settings, ctx) -> TaskOutput   (None on processes other than 0 for a parallel task)
and optionally
    Protocol                          a dataclass: the YAML's `protocol:` is checked against it and passed as spec.protocol
    resolve(spec, settings, suite) -> dict   settings derived from others, model-free (recorded and fingerprinted)
The data comes from the YAML's registered `data.source`; every metric is declared in the YAML with a registered
aggregation, so a comparison can recompute it from the units (prompts, occupations, premises: the independent
clusters its intervals resample), stored with their per-unit values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fairalign.eval.stats import finite

LEVEL = 0.95  # every interval in the suite is a 95% interval (the evaluations' bootstrap / Wilson default)


class SkipTask(Exception):
    """This task cannot run for this system (e.g. log-likelihood scoring of a plain callable): skipped, with the reason."""


@dataclass
class TaskOutput:
    """metrics: key -> `metric_entry(...)`. units: unit-set name -> {"unit", "ids", "values"}. details: the
    evaluation's own result (JSON-ready), for people and plots. notes: caveats the report must carry.
    caveats: the few that change how every number reads (a demo prompt set, a proxy scorer): the report's banner."""

    metrics: dict[str, dict]
    units: dict[str, dict]
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)


@dataclass
class TaskContext:
    """What a task run sees besides its settings: the work folder of the (system, task) pair, the system's
    identity, the task's spec, the suite-wide settings (seed, num_resamples, batch_size, device, dtype), the
    processes (`dist`), objects the caller injected by name (e.g. "scorer", "bbnli_predictor"), and
    `once(key, build)`: a value built once per run and shared by every system (a scorer, an evaluator LM)."""

    workdir: Path
    identity: dict
    spec: object
    suite: dict
    dist: object
    injected: dict = field(default_factory=dict)
    shared: dict = field(default_factory=dict)

    def once(self, key: str, build: Callable[[], object]):
        if key not in self.shared:
            self.shared[key] = build()
        return self.shared[key]

    def evaluator(self, name: str):
        """(model, tokenizer) of an evaluator LM (e.g. for perplexity), loaded once per run, in eval mode."""
        def build():
            from fairalign.align.modeling import load_model_and_tokenizer

            model, tokenizer = load_model_and_tokenizer(name, dtype=self.suite.get("dtype"), device=self.suite.get("device"))
            return model.eval(), tokenizer

        return self.once(f"evaluator:{name}", build)

    def entry(self, key: str, estimate, *, label: str | None = None, unit: str, units: str) -> dict:
        """`metric_entry` with the direction, ideal and scale the task's YAML declares for `key`."""
        spec = self.spec.metric(key)
        return metric_entry(estimate, label=label or spec.label or key.replace("_", " "), unit=unit, units=units,
                            higher_is_better=spec.higher_is_better, ideal=spec.ideal, scale=spec.scale)


GENERATION_KEYS = ("num_samples", "max_new_tokens", "top_p", "temperature", "do_sample", "use_chat_template")


def generate_records(system, prompts, settings: dict, ctx) -> tuple[list[dict], Path]:
    """k continuations per prompt (`fairalign.eval.toxicity.generate_continuations`: resumable caches, per-batch
    seeds), split across processes by batch and gathered back in prompt order on every process, so N processes
    return what one does. Returns (one record per continuation, the cache folder of these settings).
    settings: the task's, holding GENERATION_KEYS; the seed and batch size are the suite's."""
    from fairalign.eval.suite.systems import fingerprint
    from fairalign.eval.toxicity.cache import FORMAT as CACHE_FORMAT
    from fairalign.eval.toxicity.data import normalize_prompts
    from fairalign.eval.toxicity.generation import generate_continuations

    dist = ctx.dist
    gen = {k: settings[k] for k in GENERATION_KEYS}
    gen.update(seed=ctx.suite["seed"], batch_size=ctx.suite["batch_size"])
    # One cache folder per system, generation settings and cache format (an older format's folder is left alone);
    # one file per process when several share the work (each resumes its own batches).
    cache = ctx.workdir / "cache" / fingerprint({"system": ctx.identity, **gen, "cache_format": CACHE_FORMAT})[:12]
    mine = generate_continuations(
        system.lm(gen["use_chat_template"]), prompts, num_samples=gen["num_samples"],
        max_new_tokens=gen["max_new_tokens"], top_p=gen["top_p"], batch_size=gen["batch_size"],
        cache_path=cache / f"generations{dist.shard_suffix()}.jsonl", temperature=gen["temperature"],
        do_sample=gen["do_sample"], seed=gen["seed"], progress=False, shard=dist,
    )
    if dist.world_size == 1:
        return mine, cache
    by_prompt: dict[str, list[dict]] = {}
    for r in mine:
        by_prompt.setdefault(r["prompt_id"], []).append(r)
    everything = dist.gather_dict(by_prompt)
    return [r for p in normalize_prompts(prompts) for r in everything[p["prompt_id"]]], cache


def metric_entry(estimate, *, label: str, unit: str, units: str, higher_is_better: bool | None,
                 ideal: float | None, scale: str | None = None) -> dict:
    """An `Estimate` (or its dict) as a suite metric: value, 95% interval, n, interval method, and how to read it."""
    est = estimate.to_dict() if hasattr(estimate, "to_dict") else dict(estimate)
    return {"value": finite(est.get("value")), "low": finite(est.get("low")), "high": finite(est.get("high")),
            "level": LEVEL, "n": int(est.get("n") or 0), "method": est.get("method") or "bootstrap",
            "label": label, "unit": unit, "units": units, "higher_is_better": higher_is_better, "ideal": ideal,
            "scale": scale}


def jsonable(x):
    """Estimates -> dicts with the interval level added; NaN/inf -> None; numpy scalars -> Python."""
    if hasattr(x, "to_dict") and hasattr(x, "low"):
        x = x.to_dict()
    if isinstance(x, dict):
        out = {str(k): jsonable(v) for k, v in x.items()}
        if {"value", "low", "high", "n"} <= set(out) and "level" not in out:
            out["level"] = LEVEL
        return out
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):  # numpy scalars and arrays
        return jsonable(x.tolist())
    if isinstance(x, float):
        return finite(x)
    return x
