"""OffsetConfig: the PEFT config of UDDIA's offset adapter (which modules are wrapped, which columns each adds)."""
from __future__ import annotations

from dataclasses import dataclass, field

from peft.config import PeftConfig


@dataclass
class OffsetConfig(PeftConfig):
    """PEFT config of the UDDIA offset adapter: the exact names of the wrapped modules and the columns of the
    (B, P) offsets each one adds to its output."""

    target_modules: frozenset = field(default_factory=frozenset)
    spans: dict = field(default_factory=dict)  # module name -> (start, stop)
    modules_to_save: None = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = "UDDIA_OFFSET"  # not a PeftType member: the tuner is not registered (see __init__.py)
