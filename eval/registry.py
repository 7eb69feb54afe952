"""The task registry: every evaluation is declared as data, read by one typed loader.

A task is `eval/tasks/<name>.yaml` (discovered: no list to edit) plus, only for what YAML cannot say, the
Python module its `module:` key names (default: `fairalign.eval.tasks.<name>`). The YAML's keys:

    task, version, description          name (the file's stem unless it `include:`s a base), protocol version, one line
    module                              the module with `run(...)` (and optional `Protocol`, `resolve`)
    output_type                         generate | loglikelihood | classify (a list when several)
    parallel                            true: the module shards its work across processes (`ctx.dist`)
    data                                {source: <registered source>, ...that source's keyword arguments}
    settings                            name -> {type, default, help, range?, choices?}: what `--set task.name=v` may change
    metrics                             [{metric, aggregation: <registered>, higher_is_better, ideal, scale, label?}]
    protocol                            the task's own constants, checked against the module's `Protocol` dataclass
    include                             a base YAML (relative path) this one overrides key by key (task variants)

Every key is used or an error naming the key and the file. Aggregations, data sources and scorers are
registered names (`@aggregation`, `@source`, `@scorer` below); a YAML naming an unregistered one fails at load.

    spec = load_task("toxicity")                     # or a path to a YAML outside the package
    spec.settings["num_samples"].default             # 25
    settings = spec.resolve_settings({"limit": 10})  # defaults filled in, every value checked
    fn = spec.statistic("expected_max_toxicity")     # per-unit values -> the metric (for paired comparisons)
"""
from __future__ import annotations

import importlib
import inspect
import math
import re
import typing
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any, Callable

from fairalign.align.errors import InputError
from fairalign.align.validation import build_checked, check_number, describe_type, type_ok

TASK_DIR = Path(__file__).resolve().parent / "tasks"
TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# ----------------------------------------------------------------------------------------------- registries
AGGREGATIONS: dict[str, Callable[[str], Callable[[list], float]]] = {}
SOURCES: dict[str, Callable] = {}
SCORERS: dict[str, Callable] = {}


def _register(table: dict, kind: str, name: str):
    def wrap(fn):
        if name in table and table[name] is not fn:
            raise ValueError(f"{kind} {name!r} is registered twice ({table[name].__module__} and {fn.__module__})")
        table[name] = fn
        return fn
    return wrap


def aggregation(name: str):
    """Register `factory(metric_key) -> fn(unit values) -> float`: how a metric reduces its units' values
    (the suite's comparisons call it on resamples of units)."""
    return _register(AGGREGATIONS, "aggregation", name)


def source(name: str):
    """Register a data source `fn(settings, seed, **data_keys) -> Source` (the YAML's `data:` keys are its
    keyword arguments, checked at load)."""
    return _register(SOURCES, "source", name)


def scorer(name: str):
    """Register a scorer factory `fn(**options) -> scorer` (texts -> scores)."""
    return _register(SCORERS, "scorer", name)


class Settings(dict):
    """A task's resolved settings with attribute access too, as data sources read them (settings.prompts)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


# ------------------------------------------------------------------------------------------ settings types
# The type language of `settings:` (no string is ever evaluated): a name below, optionally with "?" (null allowed).
_TYPES: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str, "list[str]": list[str],
                          "list[int]": list[int], "int|str": int | str, "dict": dict}


@dataclass
class SettingSpec:
    """One setting a run may change: type (see _TYPES, "?" = nullable), default, help, range ("[1, inf)"), choices."""

    name: str
    type: str
    default: Any
    help: str
    range: str | None = None
    choices: list | None = None

    @property
    def python_type(self):
        base = _TYPES[self.type.rstrip("?")]
        return base | None if self.type.endswith("?") else base

    def check(self, value, where: str):
        """The value, checked: type, finiteness and range of numbers, choices. InputError naming `where`."""
        if isinstance(value, int) and not isinstance(value, bool) and self.type.rstrip("?") == "float":
            value = float(value)
        if not type_ok(value, self.python_type):
            raise InputError(f"{where}={value!r} has type {type(value).__name__}; expected {describe_type(self.python_type)}")
        if value is None:
            return value
        numbers = value if isinstance(value, list) else [value]
        for x in numbers:
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                check_number(x, where, self.range, integer=isinstance(x, int))
        if self.choices is not None:
            bad = [v for v in (value if isinstance(value, list) else [value]) if v not in self.choices]
            if bad:
                raise InputError(f"{where}={value!r}: {bad} not among the choices {self.choices}")
        return value


@dataclass
class MetricSpec:
    """A declared metric. `metric` matches a result key exactly or as its last dotted part (per-group keys such as
    `generate.gender.woman.mae_pp`). scale: how the report draws it (proportion | perplexity | pp | correlation |
    ratio | score)."""

    metric: str
    aggregation: str
    higher_is_better: bool | None
    ideal: float | None
    scale: str
    label: str | None = None
    help: str | None = None


SCALES = ("proportion", "perplexity", "pp", "correlation", "ratio", "score")
OUTPUT_TYPES = ("generate", "loglikelihood", "classify")


@dataclass
class TaskSpec:
    """A loaded, checked task declaration."""

    name: str
    version: int
    description: str
    module_name: str
    output_type: list[str]
    parallel: bool
    data: dict
    settings: dict[str, SettingSpec]
    metrics: list[MetricSpec]
    protocol: Any
    path: Path
    variant_of: str | None = None  # the task whose YAML this one `include:`s

    @property
    def module(self):
        return importlib.import_module(self.module_name)

    def metric(self, key: str) -> MetricSpec:
        for m in self.metrics:
            if key == m.metric or key.endswith("." + m.metric):
                return m
        raise KeyError(f"task {self.name!r} declares no metric {key!r}; declared: {[m.metric for m in self.metrics]} "
                       f"({self.path})")

    def statistic(self, key: str) -> Callable[[list], float]:
        """fn(per-unit values) -> the metric `key`, by its registered aggregation."""
        return AGGREGATIONS[self.metric(key).aggregation](key)

    def defaults(self) -> dict:
        return {name: s.default for name, s in self.settings.items()}

    def load_data(self, settings: dict, seed: int = 0):
        """The task's data from its registered source, given resolved settings and the run's seed."""
        data = {k: v for k, v in self.data.items() if k != "source"}
        return SOURCES[self.data["source"]](Settings(settings), seed, **data)

    def resolve_settings(self, given: dict | None = None, where: str | None = None) -> dict:
        """The task's defaults updated by `given`, every value checked (unknown key: InputError listing the valid ones).
        A setting given as null takes the task's default (suite YAMLs write `key: null` for "the task's value")."""
        given = dict(given or {})
        where = where or self.name
        unknown = sorted(set(given) - set(self.settings))
        if unknown:
            raise InputError(f"{where}: unknown setting(s) {unknown} for task {self.name!r}; valid: {sorted(self.settings)} "
                             f"(declared in {self.path})")
        out = {}
        for name, spec in self.settings.items():
            value = given.get(name)
            out[name] = spec.check(spec.default if value is None else value, f"{where}.{name}")
        return out


# ------------------------------------------------------------------------------------------------- loading
def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _safe_load(text: str):
    """yaml.safe_load, but a key given twice in one mapping is an error (YAML keeps the last one silently)."""
    import yaml

    def check(node):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise yaml.constructor.ConstructorError(None, None, f"key {key.value!r} is given twice",
                                                                key.start_mark)
                    seen.add(key.value)
                check(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                check(item)

    loader = yaml.SafeLoader(text)  # parsed once: nodes first, checked, then built by the safe constructor
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        check(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _read(path: Path, depth: int = 0, included: list | None = None) -> dict:
    import yaml

    from fairalign.align.files import read_text

    try:
        data = _safe_load(read_text(path, f"task file {path}")) or {}
    except yaml.YAMLError as err:
        raise InputError(f"task file {path} is not valid YAML: {' '.join(str(err).split())}") from err
    if not isinstance(data, dict):
        raise InputError(f"task file {path} must be a mapping of keys to values")
    if "include" in data:
        if depth > 5:
            raise InputError(f"{path}: include chain deeper than 5 files (a cycle?)")
        base_path = (path.parent / str(data.pop("include"))).resolve()
        if not base_path.is_file():
            raise InputError(f"{path}: include: {base_path} does not exist")
        if included is not None:
            included.append(base_path)
        data = _merge(_read(base_path, depth + 1), data)
    return data


_TOP = {"task", "version", "description", "module", "output_type", "parallel", "data", "settings", "metrics", "protocol"}


def load_task_file(path: str | Path) -> TaskSpec:
    """Read and check one task YAML (see the module docstring for its keys)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise InputError(f"task file {path} does not exist")
    included: list[Path] = []
    raw = _read(path, included=included)
    where = str(path)
    unknown = sorted(set(raw) - _TOP)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(_TOP)}")
    for key in ("task", "version", "description", "data", "settings", "metrics"):
        if key not in raw:
            raise InputError(f"{where}: missing key {key!r}")
    name = raw["task"]
    if not isinstance(name, str) or not TASK_NAME.match(name):
        raise InputError(f"{where}: task: {name!r} must match {TASK_NAME.pattern} (it names folders and --set keys)")
    if not isinstance(raw["version"], int) or isinstance(raw["version"], bool) or raw["version"] < 1:
        raise InputError(f"{where}: version must be a positive integer (bump it when a change can move the numbers)")
    if not isinstance(raw["description"], str) or not raw["description"].strip():
        raise InputError(f"{where}: description must be one line of text")
    output_type = raw.get("output_type", [])
    output_type = [output_type] if isinstance(output_type, str) else list(output_type)
    bad = [o for o in output_type if o not in OUTPUT_TYPES]
    if bad:
        raise InputError(f"{where}: output_type {bad} not in {list(OUTPUT_TYPES)}")
    module_name = raw.get("module") or (included[-1].stem if included else name)  # a variant runs its base's module
    module = _import_module(module_name, path, where)
    module_name = module.__name__
    if not callable(getattr(module, "run", None)):
        raise InputError(f"{where}: module {module_name} has no run(system, source, settings, ctx)")
    settings = _settings(raw["settings"], where)
    metrics = _metrics(raw["metrics"], where)
    data = _data(raw["data"], where)
    protocol = _protocol(module, raw.get("protocol"), where)
    parallel = raw.get("parallel", False)
    if not isinstance(parallel, bool):
        raise InputError(f"{where}: parallel must be true or false")
    return TaskSpec(name, raw["version"], raw["description"].strip(), module_name, output_type, parallel, data,
                    settings, metrics, protocol, path, included[0].stem if included else None)


def _import_module(module_name, path: Path, where: str):
    """`name` -> fairalign.eval.tasks.<name>; a dotted name as is; `file.py` -> that file beside the YAML (your own
    task in your own folder: it runs your code, as a Python import would)."""
    if not isinstance(module_name, str) or not re.match(r"^[A-Za-z_][\w.]*$", module_name):
        raise InputError(f"{where}: module: {module_name!r} is not a module name or a .py file beside the YAML")
    if module_name.endswith(".py"):
        import sys
        from importlib import util as import_util

        file = (path.parent / module_name).resolve()
        if not file.is_file():
            raise InputError(f"{where}: module: {file} does not exist")
        qualified = f"fairalign_user_tasks.{file.stem}"
        if qualified not in sys.modules:
            spec = import_util.spec_from_file_location(qualified, file)
            module = import_util.module_from_spec(spec)
            sys.modules[qualified] = module
            try:
                spec.loader.exec_module(module)
            except Exception:
                del sys.modules[qualified]
                raise
        return sys.modules[qualified]
    if "." not in module_name:
        module_name = f"fairalign.eval.tasks.{module_name}"
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise InputError(f"{where}: module {module_name} cannot be imported ({err})") from err


def _settings(raw, where: str) -> dict[str, SettingSpec]:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: settings must map setting names to {{type, default, help}}")
    out = {}
    for name, spec in raw.items():
        w = f"{where}: settings.{name}"
        if not isinstance(spec, dict):
            raise InputError(f"{w} must be a mapping with type, default and help")
        s = build_checked(SettingSpec, spec, w, given={"name": name})
        if s.type.rstrip("?") not in _TYPES:
            raise InputError(f"{w}: type {s.type!r} is not one of {sorted(_TYPES)} (add ? for nullable)")
        if s.range is not None:
            from fairalign.align.validation import Interval

            try:
                Interval.parse(s.range)
            except Exception as err:
                raise InputError(f"{w}: range {s.range!r} is not an interval such as [1, inf) or (0, 1]") from err
        s.check(s.default, f"{w}.default")
        out[name] = s
    return out


def _metrics(raw, where: str) -> list[MetricSpec]:
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{where}: metrics must be a non-empty list")
    out = []
    for i, m in enumerate(raw):
        w = f"{where}: metrics[{i}]"
        spec = build_checked(MetricSpec, m, w)
        if spec.aggregation not in AGGREGATIONS:
            raise InputError(f"{w}: aggregation {spec.aggregation!r} is not registered; registered: {sorted(AGGREGATIONS)}")
        if spec.scale not in SCALES:
            raise InputError(f"{w}: scale {spec.scale!r} not in {list(SCALES)}")
        if isinstance(spec.ideal, float) and not math.isfinite(spec.ideal):
            raise InputError(f"{w}: ideal must be finite or null")
        out.append(spec)
    names = [m.metric for m in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{where}: metrics {dupes} declared twice")
    return out


def _data(raw, where: str) -> dict:
    if not isinstance(raw, dict) or "source" not in raw:
        raise InputError(f"{where}: data must be a mapping with `source:` (registered: {sorted(SOURCES)})")
    name = raw["source"]
    if name not in SOURCES:
        raise InputError(f"{where}: data.source {name!r} is not registered; registered: {sorted(SOURCES)}")
    params = inspect.signature(SOURCES[name]).parameters
    accepted = [p for p, v in params.items() if v.kind == v.KEYWORD_ONLY]
    unknown = sorted(set(raw) - {"source"} - set(accepted))
    if unknown:
        raise InputError(f"{where}: data: unknown key(s) {unknown} for source {name!r}; valid keys: {accepted}")
    missing = [p for p in accepted if params[p].default is inspect.Parameter.empty and p not in raw]
    if missing:
        raise InputError(f"{where}: data: source {name!r} needs {missing}")
    return dict(raw)


def _protocol(module, raw, where: str):
    cls = getattr(module, "Protocol", None)
    if cls is None:
        if raw is not None:
            raise InputError(f"{where}: protocol: given, but {module.__name__} declares no Protocol to check it against")
        return None
    return _build_nested(cls, raw or {}, f"{where}: protocol")


def _build_nested(cls, data, where: str):
    """A dataclass from a mapping, nested dataclass fields (and lists/dicts of them) built the same strict way."""
    if not isinstance(data, dict):
        return build_checked(cls, data, where)  # the error: not a mapping
    hints = typing.get_type_hints(cls)
    built = {}
    for key, value in data.items():
        hint = hints.get(key)
        if is_dataclass(hint):
            value = _build_nested(hint, value, f"{where}.{key}")
        elif typing.get_origin(hint) is dict and is_dataclass(typing.get_args(hint)[1]) and isinstance(value, dict):
            value = {k: _build_nested(typing.get_args(hint)[1], v, f"{where}.{key}.{k}") for k, v in value.items()}
        elif typing.get_origin(hint) is list and is_dataclass(typing.get_args(hint)[0]) and isinstance(value, list):
            value = [_build_nested(typing.get_args(hint)[0], v, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        built[key] = value
    return build_checked(cls, built, where)


# ----------------------------------------------------------------------------------------------- discovery
_CACHE: dict[Path, TaskSpec] = {}


def task_files(extra_dirs: list[str | Path] = ()) -> dict[str, Path]:
    """name -> YAML for every task in eval/tasks/ and in `extra_dirs` (e.g. $FAIRALIGN_TASKS): a file's stem is
    its name. A name found twice is an error naming both files."""
    import os

    dirs = [TASK_DIR, *map(Path, extra_dirs)]
    env = os.environ.get("FAIRALIGN_TASKS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    out: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"task folder {d} does not exist (FAIRALIGN_TASKS or --task-dir)")
        for path in sorted(d.glob("*.yaml")):
            if path.stem in out:
                raise InputError(f"task {path.stem!r} is declared twice: {out[path.stem]} and {path}")
            out[path.stem] = path
    return out


def load_task(name_or_path: str | Path) -> TaskSpec:
    """A registered task by name, or a task YAML by path; loaded once per process."""
    text = str(name_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) else task_files().get(text)
    if path is None:
        raise InputError(f"unknown task {text!r}; registered tasks: {sorted(task_files())} (`fairalign eval list`)")
    path = path.resolve()
    if path not in _CACHE:
        spec = load_task_file(path)
        if spec.name != path.stem and not text.endswith((".yaml", ".yml")):
            raise InputError(f"{path}: task: {spec.name!r} must equal the file's name {path.stem!r}")
        _CACHE[path] = spec
    return _CACHE[path]


def all_tasks() -> dict[str, TaskSpec]:
    return {name: load_task(name) for name in task_files()}


def default_tasks() -> list[str]:
    """What a suite runs when it names no tasks: every registered task except variants (those that `include:`
    another, e.g. toxicity_challenging)."""
    return [name for name, spec in all_tasks().items() if spec.variant_of is None]
