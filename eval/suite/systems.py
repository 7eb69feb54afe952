"""Turn a `SystemSpec` into the `LM` the evaluations call: model (+ merged PEFT adapter) (+ UDDIA decoding).

UDDIA changes decoding only: `HFLM(UDDIAGenerator)` generates through UDDIA but scores log-likelihoods with the
underlying model (`HFLM.scoring_model`), so a UDDIA system's log-likelihood-based results (occupation
`loglikelihood` scoring, BBNLI judge `loglikelihood` scoring) are those of its model. `notes` says so, and
the report carries the note.

`identity(spec)` fingerprints what a system is (hashes of the adapter and head files, the local model's
config and weight file sizes), so a rerun after retraining an adapter into the same folder recomputes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from fairalign.eval.lm import HFLM, LM, as_lm
from fairalign.eval.suite.config import SystemSpec
from fairalign.eval.suite.sources import sha256_path

UDDIA_LOGLIK_NOTE = ("UDDIA adapts decoding only: log-likelihood scoring reads the unadapted model, so this system's "
                     "log-likelihood-based numbers equal those of its model without UDDIA")


@dataclass
class LoadedSystem:
    """A system ready to evaluate: `generator` is the model (or its UDDIAGenerator) and `tokenizer` its
    tokenizer; for a Python-API system, `generator` is the given LM and `tokenizer` is None."""

    spec: SystemSpec
    generator: object
    tokenizer: object = None
    batch_size: int = 8
    notes: list[str] = field(default_factory=list)

    def lm(self, use_chat_template: bool = False) -> LM:
        """The `LM` a task calls; tasks differ in whether prompts are wrapped in the chat template."""
        if self.tokenizer is None:
            return as_lm(self.generator)
        return HFLM(self.generator, self.tokenizer, batch_size=self.batch_size, use_chat_template=use_chat_template,
                    name=self.spec.name)

    @property
    def can_score(self) -> bool:
        """Whether the system gives log-likelihoods (a plain callable does not)."""
        return type(self.lm()).loglikelihood is not LM.loglikelihood


def identity(spec: SystemSpec) -> dict:
    """What the system is, as content hashes where files are local (cheap: weights by name and size only)."""
    out = {"model": spec.model, "adapter": spec.adapter, "uddia": spec.uddia, "uddia_config": spec.uddia_config}
    if spec.lm is not None:
        out["lm"] = getattr(spec.lm, "name", None) or type(spec.lm).__name__
    model_dir = Path(spec.model) if spec.model else None
    if model_dir is not None and model_dir.is_dir():
        h = hashlib.sha256()
        for file in sorted(model_dir.iterdir()):
            if file.suffix in (".json", ".txt", ".model", ".jinja") and file.is_file():
                h.update(file.name.encode() + file.read_bytes())
            elif file.is_file():  # weights: name and size (hashing GBs on every run would be too slow)
                h.update(f"{file.name}:{file.stat().st_size}".encode())
        out["model_files_sha256"] = h.hexdigest()
    if spec.adapter:
        out["adapter_sha256"] = sha256_path(spec.adapter) if Path(spec.adapter).exists() else None
    if spec.uddia and spec.uddia not in ("demo", "debias-only"):
        out["uddia_head_sha256"] = sha256_path(spec.uddia) if Path(spec.uddia).exists() else None
    return out


def check_files(spec: SystemSpec) -> None:
    """Fail before any work when a system's local files are missing (the error names the system and the fix)."""
    if spec.adapter and not (Path(spec.adapter) / "adapter_config.json").is_file():
        raise ValueError(f"system {spec.name!r}: adapter={spec.adapter} is not a PEFT adapter folder (no adapter_config.json); "
                         "train one first (e.g. `fairalign demo` writes outputs/demo/rdpo-adapter) or fix the path")
    if spec.uddia and spec.uddia not in ("demo", "debias-only") and not Path(spec.uddia).is_file():
        raise ValueError(f"system {spec.name!r}: uddia={spec.uddia} is not a file; pass an attribute head (.pt/.json), "
                         "'demo' for the shipped SmolLM2 head, or 'debias-only'")
    looks_local = spec.model and (spec.model.startswith((".", "/", "~")) or spec.model.count("/") > 1)
    if looks_local and not Path(spec.model).expanduser().exists():
        raise ValueError(f"system {spec.name!r}: model={spec.model} does not exist; pass a local model folder, "
                         "a Hub id or 'smollm2'")


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def load_system(spec: SystemSpec, device: str | None = None, dtype: str | None = None, batch_size: int = 8) -> LoadedSystem:
    """Load the model, merge the adapter, wrap with UDDIA; errors name the system and the fix."""
    if spec.lm is not None:
        if isinstance(spec.lm, tuple):
            return LoadedSystem(spec, spec.lm[0], spec.lm[1], batch_size)
        return LoadedSystem(spec, spec.lm, getattr(spec.lm, "tokenizer", None) if not isinstance(spec.lm, LM) else None,
                            batch_size)
    from fairalign.align.modeling import load_model_and_tokenizer

    check_files(spec)
    model, tokenizer = load_model_and_tokenizer(spec.model, dtype=dtype, device=device)
    notes = []
    if spec.adapter:
        from peft import PeftModel

        # Merged for evaluation: a plain model is faster and UDDIA's hooks see ordinary modules.
        model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
        notes.append(f"PEFT adapter {spec.adapter} merged into the weights for evaluation")
    model.eval()
    generator = model
    if spec.uddia:
        from fairalign.decoding import UDDIAGenerator, load_head
        from fairalign.decoding.heads import demo_head_path

        config = spec.uddia_config_object()
        head = None
        if spec.uddia != "debias-only":
            head = load_head(demo_head_path() if spec.uddia == "demo" else spec.uddia, model=model)
        generator = UDDIAGenerator(model, tokenizer, config, attribute_head=head)
        notes.append(UDDIA_LOGLIK_NOTE)
    return LoadedSystem(spec, generator, tokenizer, batch_size, notes)
