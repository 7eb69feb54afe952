"""The toxicity task's declaration, from the task registry (eval/tasks/toxicity.yaml).

    task = load_task()                          # eval/tasks/toxicity.yaml
    task = load_task("challenging")             # eval/tasks/toxicity_challenging.yaml
    task.settings["num_samples"].default        # 25
    task.metric("expected_max_toxicity").higher_is_better
"""
from __future__ import annotations

from pathlib import Path

from fairalign.eval.registry import TaskSpec

ToxicityTask = TaskSpec  # the name earlier versions exported


def load_task(name_or_path: str | Path | None = None) -> TaskSpec:
    """The toxicity task (None), a variant by suffix ("challenging" -> toxicity_challenging), or a task YAML path."""
    from fairalign.eval.registry import load_task as load

    if name_or_path is None:
        return load("toxicity")
    if str(name_or_path).endswith((".yaml", ".yml")):
        return load(name_or_path)
    return load(f"toxicity_{name_or_path}")
