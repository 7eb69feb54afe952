"""The contract battery: every registered training method, and every example it registers, gets the same
guarantees with no test code of its own (cases come from fairalign.align.registry; see contract_cases.py).

- trains full and with LoRA, in every reference mode it allows, and logs TRL's metric names;
- precomputed reference log-probs give the run a reference model gives;
- gradient accumulation 2 x 2 equals batch 4 (mean and reweighted losses alike);
- save -> load gives the same outputs;
- SIGKILL during a run, then resume, equals the uninterrupted run;
- two processes (DDP, gloo) equal one; tests/distributed/test_engines.py runs every method under DDP, FSDP2
  and ZeRO-3 (two CPU processes) against one process too.
"""
from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import contract_cases as cc

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1", "WANDB_DISABLED": "true"}

BASE = cc.base_cases()
REDUCTION = cc.reduction_cases()
REWEIGHTED = [c for c in REDUCTION if c.reduction == "reweight"]
# One subprocess case per method and example (the most state to restore: reweighted, pending weights, RNG),
# full and LoRA alternating: the CI budget allows ~20 s for each of the two subprocess fixtures.
ONE_PER_EXAMPLE = [next(c for c in REWEIGHTED if (c.method, c.example) == ex and c.peft == bool(i % 2))
                   for i, ex in enumerate(cc.examples())]
RESUME = ONE_PER_EXAMPLE
# Under DDP: the reweighted cases, whose weights must span both processes' pairs (the plain-mean cases of every
# method run under DDP, FSDP2 and ZeRO-3 in tests/distributed/test_engines.py).
DISTRIBUTED = ONE_PER_EXAMPLE


@pytest.fixture(scope="module", autouse=True)
def fast_tiny_runs():
    """Tiny models: one intra-op thread is faster than two that wait for each other. Every Trainer.train()
    starts with gc.collect() (accelerate's free_memory), which in a test session holding a million objects takes
    ~0.5 s; gc.freeze() exempts everything alive before this module from it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Case -> (result, saved model folder) of the plain 2-step run, computed once per case."""
    cache = {}

    def get(case: cc.Case):
        if case not in cache:
            folder = tmp_path_factory.mktemp("run")
            trainer = cc.build(case, folder)
            result = cc.train_result(trainer)
            trainer.save_model(str(folder / "saved"))
            result["outputs"] = _outputs(trainer.accelerator.unwrap_model(trainer.model))
            cache[case] = (result, folder / "saved")
        return cache[case]

    return get


PROBE = torch.tensor([[5, 17, 42, 8, 99, 3]])


def _outputs(model) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=PROBE).logits


@pytest.fixture(scope="module")
def trl_metric_names(tmp_path_factory):
    """What TRL's own DPOTrainer logs on the same data (the names users' dashboards expect)."""
    import copy

    from trl import DPOConfig, DPOTrainer

    model = cc.tiny_llama()
    trainer = DPOTrainer(model, ref_model=copy.deepcopy(model), train_dataset=cc.data(BASE[0]),
                         processing_class=cc.tiny_tokenizer(),
                         args=DPOConfig(output_dir=str(tmp_path_factory.mktemp("trl")), max_steps=1, report_to=[],
                                        per_device_train_batch_size=cc.BATCH, logging_steps=1, bf16=False,
                                        save_strategy="no", disable_tqdm=True))
    trainer.train()
    return {k for h in trainer.state.log_history if "loss" in h for k in h}


def test_the_battery_covers_every_registered_method():
    from fairalign.align.registry import METHODS

    assert {c.method for c in BASE} == set(METHODS)
    assert {(c.method, c.example) for c in BASE} == {(m, e) for m, s in METHODS.items() for e in s.examples}
    logic_refs = {c.example: c.reference for c in BASE if c.method == "logic"}
    assert logic_refs["cpo"] == "none" and logic_refs["novel_ref"] in ("model", "precompute")  # both kinds covered


@pytest.mark.parametrize("case", BASE, ids=lambda c: c.id)
def test_trains_and_logs_trl_metric_names(case, runs, trl_metric_names):
    from fairalign.align.preference import TRL_METRICS_NOT_LOGGED

    result, _ = runs(case)
    assert result["steps"] == cc.STEPS and len(result["losses"]) == cc.STEPS
    assert all(torch.isfinite(torch.tensor(result["losses"])))
    assert cc.max_diff(result["params"], result["start"]) > 1e-4, "training did not move the parameters"
    keys = set(result["keys"])
    if case.spec.data == "lm":
        assert {"loss", "grad_norm", "learning_rate", "epoch"} <= keys
        return
    expected = trl_metric_names - set(TRL_METRICS_NOT_LOGGED)
    if case.reference == "none":  # no reference: no implicit rewards, the policy's log-prob margin instead
        expected = {k for k in expected if not k.startswith("rewards/")} | {"logps/margins"}
    assert expected <= keys, f"missing TRL metric names: {sorted(expected - keys)}"
    if case.reduction == "reweight":
        assert {"reweight/entropy", "reweight/max_weight"} <= keys


@pytest.mark.parametrize("case", [c for c in BASE if c.reference == "precompute"], ids=lambda c: c.id)
def test_precomputed_reference_equals_reference_model(case, runs):
    with_model, _ = runs(case.with_(reference="model"))
    precomputed, _ = runs(case)
    assert cc.max_diff(with_model["params"], precomputed["params"]) < cc.TOL
    assert with_model["losses"] == pytest.approx(precomputed["losses"], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("case", REWEIGHTED + [c for c in BASE if c.reference == "model" and not c.peft],
                         ids=lambda c: c.id)
def test_gradient_accumulation_2x2_equals_batch_4(case, runs, tmp_path):
    batch4, _ = runs(case)
    accumulated = cc.train_result(cc.build(case, tmp_path, per_device_train_batch_size=2,
                                           gradient_accumulation_steps=2))
    assert cc.max_diff(batch4["params"], accumulated["params"]) < cc.TOL
    assert batch4["losses"] == pytest.approx(accumulated["losses"], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("case", [c for c in BASE if c.reference != "precompute"], ids=lambda c: c.id)
def test_save_then_load_gives_the_same_outputs(case, runs):
    from transformers import AutoModelForCausalLM

    result, saved = runs(case)
    if case.peft:
        from peft import PeftModel

        loaded = PeftModel.from_pretrained(cc.tiny_llama(), str(saved))
    else:
        loaded = AutoModelForCausalLM.from_pretrained(str(saved))
    torch.testing.assert_close(_outputs(loaded), result["outputs"], rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------- subprocesses
def _cases_file(path: Path, cases) -> Path:
    path.write_text(json.dumps([c.__dict__ for c in cases]))
    return path


@pytest.fixture(scope="module")
def resume_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume")
    proc = subprocess.run([sys.executable, str(HERE / "contract_worker.py"), "resume",
                           str(_cases_file(out / "cases.json", RESUME)), str(out)],
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "resume.json").read_text())


@pytest.mark.parametrize("case", RESUME, ids=lambda c: c.id)
def test_sigkill_then_resume_equals_uninterrupted(case, runs, resume_results):
    uninterrupted, _ = runs(case)
    r = resume_results[case.id]
    assert r["killed_by_sigkill"], "the child was not killed during training"
    assert r["checkpoints"] == [f"checkpoint-{i}" for i in range(1, cc.STEPS)]  # killed before the last step
    assert r["resumed"]["steps"] == uninterrupted["steps"] == cc.STEPS
    assert cc.max_diff(r["resumed"]["params"], uninterrupted["params"]) == 0.0
    # the resumed run logs only the step it ran after the checkpoint; it equals the uninterrupted run's last
    assert r["resumed"]["losses"][-1] == uninterrupted["losses"][-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    """One job of two CPU processes (gloo) over every case. accelerate 1.x `--cpu --num_processes 2` starts one
    process unless MPI is set up; `--multi_gpu` with ACCELERATE_USE_CPU starts two torch.distributed workers,
    as configs/accelerate/cpu_2proc.yaml does."""
    out = tmp_path_factory.mktemp("ddp")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), str(HERE / "contract_worker.py"), "distributed",
               str(_cases_file(out / "cases.json", DISTRIBUTED)), str(out)]
    proc = subprocess.run(command, env={**ENV, "ACCELERATE_USE_CPU": "true"}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "distributed_2.json").read_text())


@pytest.mark.parametrize("case", DISTRIBUTED, ids=lambda c: c.id)
def test_two_processes_equal_one(case, runs, ddp_results):
    one, _ = runs(case)
    two = ddp_results[case.id]
    assert two["world_size"] == 2
    assert cc.max_diff(one["params"], two["params"]) < cc.TOL
    assert one["losses"] == pytest.approx(two["losses"], rel=1e-4, abs=1e-5)
