"""Every use of a private TRL or transformers API in fairalign's trainers, in one place.

fairalign's preference trainers are thin subclasses of `trl.DPOTrainer`; a few of the things they need have no
public hook in TRL. Each such use is below, with why it is needed and the TRL version it was checked against.
Nothing else in `fairalign.align` touches a private name of TRL or transformers: the trainers call the named
functions and methods here instead.

Tested with: TRL 1.16.x (pyproject.toml pins `trl>=1.16,<1.17`), transformers 5.25. `check_internals()` probes
each use and `tests/align/test_trl_internals.py` runs it plus behavioural probes, so a TRL release that renames
or reshapes one of them fails that test with the name of the internal and what changed, rather than a
trainer failing (or worse, silently computing something else) deep in a run. To widen the pin: run that test
and the contract battery (`tests/contract/`) on the new TRL, fix what they name, then raise the bound.
"""
from __future__ import annotations

import contextlib
import inspect

from trl import DPOTrainer

TESTED_TRL = ">=1.16,<1.17"  # keep equal to pyproject.toml's pin


class DPOTrainerInternals(DPOTrainer):
    """The private DPOTrainer / Trainer methods fairalign overrides, routed to named hooks.

    A subclass implements `prepare_pairs`, `precompute_reference` and `signature_columns` and calls the
    `trl_*` methods for TRL's own behaviour; it never names a private method itself.
    """

    # TRL >= 1.0: `DPOTrainer._prepare_dataset(dataset, processing_class, args, dataset_name)` tokenises
    # prompt/chosen/rejected (plain or conversational, chat template applied). There is no public tokenising
    # hook; fairalign adds the `baseline` column, length checks and counted skips around it.
    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        return self.prepare_pairs(dataset, processing_class, args, dataset_name)

    def trl_prepare_dataset(self, dataset, processing_class, args, dataset_name):
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    # TRL >= 1.0: `DPOTrainer._precompute_ref_logps(dataset, name, batch_size)` runs the reference over a
    # dataset once (called from __init__ when precompute_ref_log_probs=True, and from evaluate()). Overridden
    # so that a reference-free method skips the pass.
    def _precompute_ref_logps(self, dataset, name, batch_size):
        return self.precompute_reference(dataset, name, batch_size)

    def trl_precompute_ref_logps(self, dataset, name, batch_size):
        return super()._precompute_ref_logps(dataset, name, batch_size)

    # transformers Trainer (all 4.x/5.x): `_set_signature_columns_if_needed` fills `_signature_columns`, the
    # columns `remove_unused_columns` keeps. DPOTrainer sets its own list; fairalign's collator needs more
    # (the `baseline` tokens and per-example columns such as `flip_rate`).
    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns = list(self._signature_columns) + list(self.signature_columns())

    # ---- state TRL keeps in private attributes ---------------------------------------------------------------
    def record_metric(self, mode: str, name: str, value: float) -> None:
        record_metric(self, mode, name, value)

    def set_metric(self, mode: str, name: str, value: float) -> None:
        """Replace instead of append: a running total logged as is."""
        self._metrics[mode][name] = [value]

    def add_train_tokens(self, tokens: int) -> int:
        """TRL >= 1.0 keeps the running token count in `self._total_train_tokens` (logged as `num_tokens` and
        saved with the trainer state); fairalign counts its own tokens, so it adds to TRL's total."""
        self._total_train_tokens += tokens
        return self._total_train_tokens

    @property
    def reference_is_precomputed(self) -> bool:
        """TRL >= 1.0 copies args.precompute_ref_log_probs to `self.precompute_ref_logps` in __init__ and reads that
        attribute afterwards (fairalign switches it off for reference-free methods)."""
        return bool(self.precompute_ref_logps)

    @reference_is_precomputed.setter
    def reference_is_precomputed(self, value: bool) -> None:
        self.precompute_ref_logps = value


def record_metric(trainer, mode: str, name: str, value: float) -> None:
    """Append one value to a TRL trainer's logs; its `log` averages each list and clears it. TRL >= 1.0 keeps
    them in `trainer._metrics` ({"train"|"eval": defaultdict(list)}, DPOTrainer and SFTTrainer alike): the only
    way to put a metric into TRL's logs."""
    trainer._metrics[mode][name].append(value)


def fused_lm_head_outputs(model, inputs: dict):
    """Per-token log-probs without (B, T, V) logits, from the LM head TRL's SFTTrainer patches in (TRL 1.16:
    `model(..., fused_lm_head=True)` returns `log_probs`, `label_mask`, `entropy`, `is_top1`; the keyword and
    the output fields are TRL's own, undocumented)."""
    return model(**inputs, use_cache=False, fused_lm_head=True)


@contextlib.contextmanager
def trl_builds_no_reference(args):
    """DPOTrainer.__init__ (TRL 1.16) loads a reference model from the policy's path unless ref_model is given,
    a PEFT adapter is used, or `precompute_ref_log_probs` is set. A reference-free method wants none (and an
    in-memory model has no path), so __init__ sees precompute_ref_log_probs=True; the caller's value is put
    back afterwards and the trainer skips the pass (`precompute_reference`)."""
    asked = args.precompute_ref_log_probs
    args.precompute_ref_log_probs = True
    try:
        yield
    finally:
        args.precompute_ref_log_probs = asked


def use_adapter(model, adapter_name: str | None):
    """Context manager: activate `adapter_name` on a PEFT model, or disable every adapter when None (the
    adapter-free model is the reference). TRL >= 1.0 `trl.trainer.utils.use_adapter` (not exported at the top
    level); it also restores the active adapter on exit, which PEFT's `disable_adapter` alone does not for a
    named "ref" adapter."""
    from trl.trainer.utils import use_adapter as trl_use_adapter

    return trl_use_adapter(model, adapter_name=adapter_name)


def save_state_dict(trainer, output_dir: str, state_dict: dict) -> None:
    """Write `state_dict` (weights), the config and the tokenizer to output_dir the way save_model does, from the
    main process. transformers (all 4.x/5.x) `Trainer._save(output_dir, state_dict)`; its public save_model
    writes no weights at all under FSDP with SHARDED_STATE_DICT, so run_guard gathers them and calls this."""
    trainer._save(output_dir, state_dict=state_dict)


# Expected shapes of the internals above, checked by `check_internals()`.
_SIGNATURES = {
    "DPOTrainer._prepare_dataset": (lambda: DPOTrainer._prepare_dataset, ["self", "dataset", "processing_class", "args", "dataset_name"]),
    "DPOTrainer._precompute_ref_logps": (lambda: DPOTrainer._precompute_ref_logps, ["self", "dataset", "name", "batch_size"]),
    "Trainer._set_signature_columns_if_needed": (lambda: DPOTrainer._set_signature_columns_if_needed, ["self"]),
    "DPOTrainer.compute_loss": (lambda: DPOTrainer.compute_loss, ["self", "model", "inputs", "return_outputs", "num_items_in_batch"]),
    "Trainer._save": (lambda: DPOTrainer._save, ["self", "output_dir", "state_dict"]),
    "trl.trainer.utils.use_adapter": (lambda: _trl_use_adapter(), ["model", "adapter_name"]),
}


def _trl_use_adapter():
    from trl.trainer.utils import use_adapter as trl_use_adapter

    return trl_use_adapter


# Attributes the trainers' __init__ must assign (read by fairalign after __init__).
_INIT_ATTRIBUTES = {
    "DPOTrainer.__init__": ("_metrics", "_total_train_tokens", "precompute_ref_logps"),
    "SFTTrainer.__init__": ("_metrics",),
}


def check_internals() -> list[str]:
    """Problems with the installed TRL / transformers, one line each naming the internal; [] when all fit."""
    import trl

    problems = []
    for name, (get, params) in _SIGNATURES.items():
        try:
            found = list(inspect.signature(get()).parameters)
        except (AttributeError, ImportError) as err:
            problems.append(f"{name} is gone in trl {trl.__version__} ({type(err).__name__}: {err})")
            continue
        if found != params:
            problems.append(f"{name} now takes {found}; fairalign was written for {params} (trl {TESTED_TRL})")
    from trl import SFTTrainer

    for where, attributes in _INIT_ATTRIBUTES.items():
        source = inspect.getsource((DPOTrainer if where.startswith("DPO") else SFTTrainer).__init__)
        for attr in attributes:
            if f"self.{attr} =" not in source:
                problems.append(f"{where} no longer sets self.{attr} (trl {trl.__version__}; fairalign reads it)")
    return problems
