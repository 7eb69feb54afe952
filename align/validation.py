"""One validation layer for every config: types, and every number finite and in its range.

A config dataclass declares the ranges of its numeric fields in interval notation, in a class attribute

    FIELD_RANGES: ClassVar[dict[str, str]] = {"beta": "(0, inf)", "flip_rate": "[0, 0.5)"}

(merged over the class's bases), or in a field's metadata, `metadata={"help": ..., "range": "[0, 1]"}`, for
dataclasses that never reach transformers' HfArgumentParser (which hands every metadata key to argparse),
and calls `validate_fields(self)` in `__post_init__`. Every field typed int or float (or a list of them) is
then checked: a real number (not a bool, not a string), finite unless the interval's closed end is `inf`,
inside the interval when one is declared. Fields a config inherits from transformers / TRL get their ranges
from `INHERITED_RANGES`. The error is an `InputError` naming the class, the field, the value and the range.

`type_ok` / `describe_type` check a value read from YAML against a dataclass type hint (recipes, suite files);
`check_types(config)` checks every field of a dataclass instance that way.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from typing import Any

from fairalign.align.errors import InputError

# Ranges of fields that fairalign configs inherit from transformers.TrainingArguments and TRL's configs.
INHERITED_RANGES = {
    "per_device_train_batch_size": "[1, inf)",
    "per_device_eval_batch_size": "[1, inf)",
    "gradient_accumulation_steps": "[1, inf)",
    "num_train_epochs": "[0, inf)",
    "learning_rate": "[0, inf)",
    "warmup_steps": "[0, inf)",
    "weight_decay": "[0, inf)",
    "adam_beta1": "[0, 1)",
    "adam_beta2": "[0, 1)",
    "adam_epsilon": "(0, inf)",
    "max_grad_norm": "[0, inf)",
    "label_smoothing_factor": "[0, 1)",
    "neftune_noise_alpha": "[0, inf)",
    "max_length": "[1, inf)",
    "beta": "(0, inf)",  # DPO's inverse temperature; beta <= 0 trains towards the rejected answers
    "ref_model_mixup_alpha": "[0, 1]",
    "precompute_ref_batch_size": "[1, inf)",
    "lora_r": "[1, inf)",  # trl.ModelConfig
    "lora_alpha": "(0, inf)",
    "lora_dropout": "[0, 1)",
}

_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*$")


@dataclasses.dataclass(frozen=True)
class Interval:
    """A real interval parsed from "[lo, hi)", "(0, inf]", ...; an end at ±inf is only inside when closed."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool
    text: str

    @classmethod
    def parse(cls, text: str) -> "Interval":
        m = _INTERVAL.match(text)
        if not m:
            raise ValueError(f"not an interval: {text!r} (write e.g. '[0, 0.5)' or '(0, inf)')")
        return cls(float(m.group(2)), float(m.group(3)), m.group(1) == "[", m.group(4) == "]", text.strip())

    def __contains__(self, x: float) -> bool:
        if math.isnan(x):
            return False
        above = x >= self.low if self.low_closed else x > self.low
        below = x <= self.high if self.high_closed else x < self.high
        return above and below

    def allows_infinity(self) -> bool:
        return (self.high == math.inf and self.high_closed) or (self.low == -math.inf and self.low_closed)


def is_real(value) -> bool:
    """An int or float that is not a bool (True is an int in Python, never a number in a config)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(value, name: str, interval: str | None = None, *, integer: bool = False, fix: str = "") -> None:
    """InputError unless `value` is a real number (an integer when `integer`), finite unless the interval
    closes at inf, and inside `interval`."""
    rng = Interval.parse(interval) if interval else Interval(-math.inf, math.inf, False, False, "a finite number")
    kind = "an integer" if integer else "a number"
    hint = f" ({fix})" if fix else ""
    if not is_real(value) or (integer and not isinstance(value, int)):
        raise InputError(f"{name}={value!r} must be {kind} in {rng.text}{hint}")
    if math.isnan(value):
        raise InputError(f"{name}=nan is not a number; give {kind} in {rng.text}{hint}")
    if math.isinf(value) and not rng.allows_infinity():
        raise InputError(f"{name}={value} is not finite; give {kind} in {rng.text}{hint}")
    if value not in rng:
        raise InputError(f"{name}={value!r} is out of range: must be in {rng.text}{hint}")


def _numeric_kind(hint) -> tuple[str | None, bool]:
    """('int' | 'float' | None, is_list) for a field's type hint; None when it does not take a number."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    args = [a for a in args if a is not type(None)]
    for arg in args:
        if typing.get_origin(arg) is list and typing.get_args(arg) and typing.get_args(arg)[0] in (int, float):
            return typing.get_args(arg)[0].__name__, True
    if float in args:
        return "float", False
    if int in args and bool not in args:
        return "int", False
    return None, False


def validate_fields(config) -> None:
    """Check every int/float field of the dataclass instance `config` (see the module docstring)."""
    owner = type(config).__name__
    hints = _type_hints(type(config))
    declared = {}
    for cls in reversed(type(config).__mro__):  # a subclass's FIELD_RANGES wins over its bases'
        declared.update(vars(cls).get("FIELD_RANGES", {}))
    for f in dataclasses.fields(config):
        kind, is_list = _numeric_kind(hints.get(f.name, f.type))
        if kind is None:
            continue
        value = getattr(config, f.name, None)
        hint = hints.get(f.name, f.type)
        if value is None or (isinstance(value, str) and type_ok(value, hint)):  # unset, or a word the type allows
            continue
        interval = declared.get(f.name) or f.metadata.get("range") or INHERITED_RANGES.get(f.name)
        values = list(value) if is_list and isinstance(value, (list, tuple)) else [value]
        for i, v in enumerate(values):
            label = f"{owner}.{f.name}" + (f"[{i}]" if is_list else "")
            check_number(v, label, interval, integer=kind == "int")


@functools.lru_cache(maxsize=None)  # a class's hints never change; resolving them is 90% of a config's check
def _type_hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a forward reference that cannot be resolved: fall back to the raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


# ------------------------------------------------------------------------------------------------ types
def type_ok(value, hint) -> bool:
    """Whether a value read from YAML fits a dataclass type hint (an int is a fine float; a bool is neither)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin is list:
        (inner,) = typing.get_args(hint) or (Any,)
        return isinstance(value, (list, tuple)) and all(type_ok(v, inner) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return is_real(value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def describe_type(hint) -> str:
    """'int | null', 'list[str]', ...: the type as a YAML user reads it."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " | ".join(describe_type(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is list:
        return f"list[{', '.join(describe_type(h) for h in typing.get_args(hint))}]"
    return getattr(hint, "__name__", str(hint))


def check_types(config) -> None:
    """InputError naming Class.field for the first field of the dataclass instance `config` whose value does
    not fit its type hint."""
    hints = _type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not type_ok(value, hints[f.name]):
            raise InputError(f"{type(config).__name__}.{f.name}={value!r} has type {type(value).__name__}; "
                             f"expected {describe_type(hints[f.name])}")


def build_checked(cls, data, where: str, *, hidden: tuple = (), given: dict | None = None):
    """cls(**data, **given) from a mapping read from YAML or the command line, after checking it: a mapping, no
    unknown key (the error lists the valid ones), every required key present, every value of its field's type.
    hidden: fields a mapping may not set (Python-only ones); given: fields supplied by the caller, not the mapping.
    InputError naming `where` and the key."""
    given = given or {}
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a mapping of keys to values (got {type(data).__name__})")
    settable = [f for f in dataclasses.fields(cls) if f.name not in hidden and f.name not in given]
    valid = [f.name for f in settable]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; valid keys: {valid}")
    missing = [f.name for f in settable if f.name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise InputError(f"{where}: missing required key(s) {missing}")
    hints = _type_hints(cls)
    for key, value in data.items():
        if not type_ok(value, hints[key]):
            raise InputError(f"{where}: {key}={value!r} has type {type(value).__name__}; expected {describe_type(hints[key])}")
    return cls(**data, **given)
