"""What a suite run is: the systems to compare, the tasks to run and each task's settings.

A suite YAML (configs/suites/*.yaml) has the keys of `SuiteConfig`, plus one section per task named after it
(`toxicity:`, `occupation:`, ...) holding that task's settings, as its YAML declares them (eval/tasks/<task>.yaml,
`fairalign eval list --settings`). `systems:` is a list of `SystemSpec` mappings. A setting left out takes the
task's default; the resolved value is written into results.json. Unknown keys and wrong types are errors that
name the key, say where it is and list the valid keys, before any model loads.

    config = load_config("configs/suites/demo_smollm2.yaml", overrides=["toxicity.limit=4"])
    config = SuiteConfig(systems=[SystemSpec("base", model="smollm2")], tasks=["toxicity"],
                         settings={"toxicity": {"prompts": "demo"}})
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fairalign.align.errors import InputError
from fairalign.align.validation import build_checked, validate_fields

# System names become folder names under <out>/systems/: keep them path-safe.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class SystemSpec:
    """One system to evaluate: a model, optionally with a PEFT adapter and/or UDDIA decoding.

    name: unique, path-safe label ([A-Za-z0-9_.-]); the first system is the baseline of comparisons.
    model: Hub id, local directory or "smollm2" (embedded). adapter: PEFT adapter directory, merged into the
    weights for evaluation. uddia: attribute head file (.pt/.json), "demo" (the shipped SmolLM2 demo head)
    or "debias-only" (UDDIA-b, no head). uddia_config: `fairalign.decoding.UDDIAConfig` fields (paper
    defaults otherwise). lm (Python API only): an already-built model instead of `model`: anything
    `fairalign.eval.lm.as_lm` accepts (an `LM`, a (model, tokenizer) pair, a callable prompts -> texts).
    Resuming identifies such a system by its `name` attribute (else its type): give distinct callables
    distinct `.name`s, or use distinct output folders.
    """

    name: str = field(metadata={"help": "unique label; the first system is the baseline"})
    model: str | None = field(default=None, metadata={"help": "Hub id, local directory or 'smollm2'"})
    adapter: str | None = field(default=None, metadata={"help": "PEFT adapter directory (merged for evaluation)"})
    uddia: str | None = field(default=None, metadata={"help": "UDDIA head file, 'demo', or 'debias-only'"})
    uddia_config: dict = field(default_factory=dict, metadata={"help": "UDDIAConfig fields, e.g. {lr: 0.01}"})
    lm: Any = field(default=None, repr=False, compare=False, metadata={"help": "Python API only: a built LM"})

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(f"system name {self.name!r} must match {NAME_PATTERN.pattern} (it names a folder); "
                             "e.g. name=base")
        if self.model is None and self.lm is None:
            raise ValueError(f"system {self.name!r} needs a model: model=<Hub id | local dir | smollm2>")
        if self.lm is not None and (self.adapter or self.uddia):
            raise ValueError(f"system {self.name!r}: adapter/uddia need `model` (a name or path), not a built `lm`")
        if self.uddia_config and not self.uddia:
            raise ValueError(f"system {self.name!r} sets uddia_config but not uddia: add uddia=<head file | demo | debias-only>")
        if self.uddia:
            self.uddia_config_object()  # validate the fields now, before any model loads

    def uddia_config_object(self):
        from fairalign.decoding import UDDIAConfig

        valid = sorted(f.name for f in fields(UDDIAConfig))
        unknown = sorted(set(self.uddia_config) - set(valid))
        if unknown:
            raise ValueError(f"system {self.name!r}: unknown uddia_config key(s) {unknown}; valid keys: {valid}")
        return UDDIAConfig(**self.uddia_config)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "lm"}
        if self.lm is not None:
            out["lm"] = getattr(self.lm, "name", None) or type(self.lm).__name__
        return out


def _default_tasks() -> list[str]:
    from fairalign.eval.registry import default_tasks

    return default_tasks()


@dataclass
class SuiteConfig:
    """A suite run. Every number in results.json traces back to these fields (resolved, in `config`)."""

    systems: list[SystemSpec] = field(default_factory=list, metadata={"help": "systems; the first is the baseline"})
    tasks: list[str] = field(default_factory=_default_tasks, metadata={"help": "registered tasks (`fairalign eval list`)"})
    out: str | None = field(default=None, metadata={"help": "output directory (rerun with the same one to resume)"})
    seed: int = field(default=0, metadata={"help": "generation and bootstrap seed", "range": "[0, inf)"})
    num_resamples: int = field(default=1000, metadata={"help": "bootstrap resamples per CI", "range": "[1, inf)"})
    batch_size: int = field(default=8, metadata={"help": "prompts per generate / log-likelihood call", "range": "[1, inf)"})
    device: str | None = field(default=None, metadata={"help": "cpu | cuda (default: cuda when available)"})
    dtype: str | None = field(default=None, metadata={"help": "float32 | bfloat16 | float16 (default: fp32 CPU, bf16 CUDA)"})
    settings: dict = field(default_factory=dict, metadata={"help": "task name -> {setting: value} (the task's YAML declares them)"})

    def __post_init__(self):
        from fairalign.eval.registry import task_files

        self.tasks = list(self.tasks)
        registered = sorted(task_files())
        unknown = [t for t in self.tasks if t not in registered]
        if unknown or not self.tasks:
            raise InputError(f"tasks: {unknown or 'empty'} not valid; registered tasks: {registered} (`fairalign eval list`)")
        if len(set(self.tasks)) != len(self.tasks):
            raise InputError(f"tasks: {self.tasks} lists a task twice")
        if not self.systems:
            raise InputError("systems: give at least one, e.g. --model smollm2, --system name=base,model=smollm2, "
                             "or `systems:` in the YAML")
        names = [s.name for s in self.systems]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(f"systems: names must be unique; {dupes} repeated")
        if not isinstance(self.settings, dict):
            raise InputError(f"settings must map task names to their settings (got {type(self.settings).__name__})")
        for task, given in self.settings.items():
            if task not in registered:
                raise InputError(f"{task}: not a registered task, so it has no settings; registered: {registered}")
            if not isinstance(given, dict):
                raise InputError(f"{task}: its settings must be a mapping of setting names to values (got {type(given).__name__})")
        self.check_numbers()  # every task's settings checked now, before any model loads

    def check_numbers(self) -> None:
        """Every numeric field of the suite and of each task's settings: finite and in its range (InputError)."""
        from fairalign.eval.registry import load_task

        validate_fields(self)
        for task, given in self.settings.items():
            load_task(task).resolve_settings(given, where=task)

    def task_settings(self, task: str) -> dict:
        """The task's settings: its YAML's defaults, updated by this config's section, checked."""
        from fairalign.eval.registry import load_task

        return load_task(task).resolve_settings(self.settings.get(task, {}), where=task)

    @property
    def baseline(self) -> SystemSpec:
        return self.systems[0]

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("systems", "settings")}
        out["systems"] = [s.to_dict() for s in self.systems]
        for task in self.tasks:
            out[task] = self.task_settings(task)
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str = "suite config") -> "SuiteConfig":
        """From a YAML-like mapping: SuiteConfig keys, plus one section per task (its settings)."""
        from fairalign.eval.registry import task_files

        data = dict(_mapping(data, where))
        registered = task_files()
        settings = dict(data.pop("settings", None) or {})
        for key in [k for k in data if k in registered]:
            section = data.pop(key)
            settings[key] = {**settings.get(key, {}), **(_mapping(section, f"{where}: {key}") if section is not None else {})}
        valid = [f.name for f in fields(cls) if f.name != "settings"]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {unknown}; valid keys: {valid}, or a task's section: {sorted(registered)}")
        systems = data.get("systems") or []
        if not isinstance(systems, list):
            raise InputError(f"{where}: systems must be a list of mappings (name, model, adapter, uddia, uddia_config)")
        data["systems"] = [s if isinstance(s, SystemSpec) else _build(SystemSpec, s, f"{where}: systems[{i}]")
                           for i, s in enumerate(systems)]
        from fairalign.eval.registry import load_task

        for task, given in settings.items():  # errors name the file and the section
            if task in registered and isinstance(given, dict):
                load_task(task).resolve_settings(given, where=f"{where}: {task}")
        data["settings"] = settings
        return _build(cls, data, where)


# ------------------------------------------------------------------------------------------- loading
def _mapping(data, where: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of keys to values (got {type(data).__name__})")
    return data


def _build(cls, data, where: str):
    return build_checked(cls, data, where, hidden=("lm",))  # `lm` is for the Python API only


def parse_value(text: str):
    """A command-line value as YAML reads it ("3" -> 3, "none"/"null" -> None, "[a, b]" -> list)."""
    import yaml

    if text.strip().lower() in ("none", "null", ""):
        return None
    return yaml.safe_load(text)


def parse_system(text: str) -> SystemSpec:
    """`name=tuned,model=smollm2,adapter=DIR,uddia=demo,uddia_lr=0.01` -> SystemSpec.

    Keys: the SystemSpec fields; `uddia_<field>=value` sets one UDDIAConfig field. Values may not contain commas.
    """
    data: dict = {"uddia_config": {}}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ValueError(f"--system {text!r}: {part!r} is not key=value; e.g. --system name=base,model=smollm2")
        key, value = (s.strip() for s in part.split("=", 1))
        if key.startswith("uddia_") and key != "uddia_config":
            data["uddia_config"][key[len("uddia_"):]] = parse_value(value)
        elif key in ("name", "model", "adapter", "uddia"):
            data[key] = None if value.lower() in ("none", "null", "") else value
        else:
            raise ValueError(f"--system {text!r}: unknown key {key!r}; valid keys: name, model, adapter, uddia, "
                             "uddia_<UDDIAConfig field> (e.g. uddia_lr=0.01)")
    return _build(SystemSpec, data, f"--system {text!r}")


def apply_override(data: dict, assignment: str) -> None:
    """In place: "toxicity.limit=10" sets data["toxicity"]["limit"] = 10 (dotted path, YAML-typed value)."""
    if "=" not in assignment:
        raise ValueError(f"--set {assignment!r} must be key=value, e.g. --set toxicity.limit=10")
    path, value = assignment.split("=", 1)
    keys = path.strip().split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {assignment!r}: {key!r} is not a section")
    node[keys[-1]] = parse_value(value)


def load_config(path: str | Path | None = None, overrides: list[str] = (), **fields_) -> SuiteConfig:
    """A SuiteConfig from a YAML file (or none), then `--set`-style overrides, then keyword fields
    (e.g. systems=[...], out="runs/x"); later sources win."""
    import yaml

    data: dict = {}
    where = "suite config"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"suite config {path} not found; see configs/suites/ for examples")
        where = str(path)
        data = yaml.safe_load(path.read_text()) or {}
        _mapping(data, where)
    for assignment in overrides:
        apply_override(data, assignment)
    data.update({k: v for k, v in fields_.items() if v is not None})
    return SuiteConfig.from_dict(data, where)
