"""Faults on the training side: every numeric setting checked, non-finite steps stopped, one run per folder,
SIGKILL then resume equals an uninterrupted run, half-written checkpoints, data that looks valid but is not,
the README's two-process launch, and one-line CLI errors."""
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import datasets
import pytest
import torch
import yaml

from fairalign.align.errors import FolderInUseError, InputError, NonFiniteError
from fairalign.align.testing import TINY_PREFERENCES, tiny_llama
from fairalign.scripts import cli

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "align" / "resources" / "preferences_demo" / "train.jsonl"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1", "WANDB_DISABLED": "true"}
FAST = dict(per_device_train_batch_size=4, max_steps=3, learning_rate=1e-2, report_to=[], logging_steps=1,
            save_strategy="no", bf16=False, seed=0, beta=0.1, max_length=128, disable_tqdm=True)


# ------------------------------------------------------------------------------------ numeric settings
def _configs():
    from fairalign.align.logic import LogicDPAConfig
    from fairalign.align.rdpo import RobustDPOConfig
    from fairalign.align.reweighting import ReweightingConfig
    from fairalign.align.reweighting.sft import ReweightingSFTConfig
    from fairalign.align.rpo import RPOConfig
    from fairalign.decoding import UDDIAConfig
    from fairalign.scripts.train import ScriptArguments

    out = "out-unused"
    return {
        "RobustDPOConfig": (RobustDPOConfig, {"output_dir": out}),
        "RPOConfig": (RPOConfig, {"output_dir": out}),
        "LogicDPAConfig": (LogicDPAConfig, {"output_dir": out, "structure": "dpo"}),
        "ReweightingConfig": (ReweightingConfig, {"output_dir": out}),
        "ReweightingSFTConfig": (ReweightingSFTConfig, {"output_dir": out}),
        "UDDIAConfig": (UDDIAConfig, {}),
        "ScriptArguments": (ScriptArguments, {}),
    }


def _numeric_fields(cls):
    from fairalign.align.validation import _numeric_kind

    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if f.init and _numeric_kind(hints[f.name])[0] is not None]


def _bad_values(cls, name):
    """NaN and ±inf for every numeric field, plus a value just outside its declared interval."""
    from fairalign.align.validation import INHERITED_RANGES, Interval

    values = [math.nan, math.inf, -math.inf]
    declared = {}
    for klass in reversed(cls.__mro__):
        declared.update(vars(klass).get("FIELD_RANGES", {}))
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    text = declared.get(name) or field.metadata.get("range") or INHERITED_RANGES.get(name)
    if text:
        rng = Interval.parse(text)
        if rng.allows_infinity():
            values = [v for v in values if not (math.isinf(v) and v in rng)]
        if math.isfinite(rng.low):
            values.append(rng.low - 1 if not rng.low_closed else rng.low - 0.5)
            if not rng.low_closed:
                values.append(rng.low)
        if math.isfinite(rng.high):
            values.append(rng.high + 1)
            if not rng.high_closed:
                values.append(rng.high)
    return values


CASES = [(key, name, value) for key, (cls, _) in _configs().items() for name in _numeric_fields(cls)
         for value in _bad_values(cls, name)]


@pytest.mark.parametrize("key, name, value", CASES, ids=[f"{k}.{n}={v}" for k, n, v in CASES])
def test_every_numeric_setting_is_checked(key, name, value):
    cls, base = _configs()[key]
    hints = typing.get_type_hints(cls)
    if "int" in str(hints[name]) and "float" not in str(hints[name]) and math.isfinite(value):
        value = int(value) if value == int(value) else value
    with pytest.raises(InputError, match=rf"{cls.__name__}\.{name}\b"):
        cls(**base, **{name: value})


def test_negative_beta_is_refused_for_the_dpo_family(tmp_path):
    from fairalign.align.rdpo import RobustDPOConfig
    from fairalign.align.rpo import RPOConfig

    for cls in (RobustDPOConfig, RPOConfig):
        with pytest.raises(InputError, match=r"beta=-0.1 is out of range: must be in \(0, inf\)"):
            cls(output_dir=str(tmp_path), beta=-0.1)


# ----------------------------------------------------------------------------------- finite or stopped
class _PoisonedAt(Exception):
    pass


def _poisoned_trainer(tmp_path, tokenizer, poison_step: int, **kw):
    from fairalign.align.rdpo import RobustDPOConfig, RobustDPOTrainer

    class Poisoned(RobustDPOTrainer):
        def pair_losses(self, logps):
            losses = super().pair_losses(logps)
            if self.state.global_step + 1 == poison_step:
                losses = losses * torch.tensor(float("nan"))
            return losses

    args = RobustDPOConfig(output_dir=str(tmp_path / "out"), **{**FAST, "max_steps": 4, **kw})
    return Poisoned(tiny_llama(), ref_model=tiny_llama(), args=args, processing_class=tokenizer,
                    train_dataset=datasets.Dataset.from_list(TINY_PREFERENCES))


def test_nan_loss_stops_before_the_step_and_nothing_non_finite_is_saved(tmp_path, tokenizer):
    trainer = _poisoned_trainer(tmp_path, tokenizer, poison_step=3, save_strategy="steps", save_steps=1)
    with pytest.raises(NonFiniteError, match=r"optimizer step 3 .*loss and gradient is not finite"):
        trainer.train()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    saved = sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*"))
    assert saved == ["checkpoint-1", "checkpoint-2"]
    # the model holds exactly step 2's parameters: those of checkpoint-2
    from safetensors.torch import load_file

    state = load_file(tmp_path / "out" / "checkpoint-2" / "model.safetensors")
    for name, p in trainer.model.named_parameters():
        assert torch.equal(p.detach(), state[name]), name


def test_nan_parameters_are_never_saved(tmp_path, tokenizer):
    trainer = _poisoned_trainer(tmp_path, tokenizer, poison_step=99)
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="refusing to save"):
        trainer.save_model(str(tmp_path / "final"))
    assert not (tmp_path / "final" / "model.safetensors").exists()


def test_the_guard_leaves_a_finite_run_unchanged(tmp_path, tokenizer):
    """Same run with and without the callback: identical parameters (the guard only reads)."""
    from fairalign.align.run_guard import _FiniteStepGuard

    a = _poisoned_trainer(tmp_path / "a", tokenizer, poison_step=99)
    b = _poisoned_trainer(tmp_path / "b", tokenizer, poison_step=99)
    b.callback_handler.callbacks = [c for c in b.callback_handler.callbacks if not isinstance(c, _FiniteStepGuard)]
    a.train()
    b.train()
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(p, q), name


# ----------------------------------------------------------------------------------- one run per folder
HOLD = """
import sys, time
from fairalign.align.locking import hold_folder
with hold_folder(sys.argv[1], "holder-under-test"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def held_folder(tmp_path):
    folder = tmp_path / "busy"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "held"
    yield folder, proc.pid
    proc.kill()
    proc.wait()


def test_second_run_on_a_held_output_dir_refuses_and_names_the_holder(held_folder, tokenizer, tmp_path):
    from fairalign.align.rdpo import RobustDPOConfig, RobustDPOTrainer

    folder, pid = held_folder
    trainer = RobustDPOTrainer(tiny_llama(), ref_model=tiny_llama(), processing_class=tokenizer,
                               args=RobustDPOConfig(output_dir=str(folder), **FAST),
                               train_dataset=datasets.Dataset.from_list(TINY_PREFERENCES))
    before = {p: p.detach().clone() for p in trainer.model.parameters()}
    with pytest.raises(FolderInUseError, match=rf"pid {pid} .*holder-under-test"):
        trainer.train()
    assert all(torch.equal(p, before[p]) for p in trainer.model.parameters())  # nothing trained, nothing written
    assert sorted(x.name for x in folder.iterdir()) == [".fairalign.lock"]


def test_the_lock_is_released_when_its_holder_is_killed(held_folder):
    from fairalign.align.locking import hold_folder

    folder, pid = held_folder
    with pytest.raises(FolderInUseError):
        with hold_folder(folder):
            pass
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        try:
            with hold_folder(folder):
                break
        except FolderInUseError:
            time.sleep(0.05)
    else:
        pytest.fail("the lock of a SIGKILLed holder was not released")


def test_cli_refuses_a_held_output_dir_in_one_line(held_folder, tmp_path, tiny_llama_dir, capsys):
    folder, pid = held_folder
    code = cli.main(["train", "--config", str(_recipe(tmp_path)), "--model_name_or_path", str(tiny_llama_dir),
                     "--output_dir", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"pid {pid}" in err[0] and "in use" in err[0]


# ------------------------------------------------------------------------- SIGKILL, then resume == uninterrupted
def _recipe(tmp_path, **overrides):
    recipe = dict(method="rdpo", model_name_or_path="smollm2", dataset_name=str(DATA), max_length=128, flip_rate=0.1, per_device_train_batch_size=4,
                  max_steps=6, save_strategy="steps", save_steps=1, logging_steps=1, report_to=[], learning_rate=1e-3,
                  output_dir=str(tmp_path / "out"), seed=0, disable_tqdm=True)
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _train_command(recipe, model_dir, out, *extra):
    return [sys.executable, "-m", "fairalign.scripts.cli", "train", "--config", str(recipe), "--model_name_or_path",
            str(model_dir), "--output_dir", str(out), *extra]


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.mark.slow
def test_sigkill_during_training_then_resume_equals_uninterrupted(tmp_path, tiny_llama_dir):
    recipe = _recipe(tmp_path)
    full, part = tmp_path / "full", tmp_path / "part"
    proc = subprocess.Popen(_train_command(recipe, tiny_llama_dir, part), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (part / "checkpoint-3" / "trainer_state.json").exists():  # killed mid-run, maybe mid-save
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (part / "model.safetensors").exists()
    args = ["train", "--config", str(recipe), "--model_name_or_path", str(tiny_llama_dir)]
    assert cli.main([*args, "--output_dir", str(part), "--resume_from_checkpoint", "last"]) == 0
    assert cli.main([*args, "--output_dir", str(full)]) == 0  # the uninterrupted run, in this process
    a, b = _weights(full), _weights(part)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical on CPU


def test_half_written_newest_checkpoint_is_skipped_and_named(tmp_path, tiny_llama_dir, caplog):
    from fairalign.align.run_guard import resolve_checkpoint

    recipe = _recipe(tmp_path, max_steps=3)
    full, part = tmp_path / "full", tmp_path / "part"
    assert cli.main(["train", "--config", str(recipe), "--model_name_or_path", str(tiny_llama_dir), "--output_dir", str(full)]) == 0
    assert cli.main(["train", "--config", str(recipe), "--model_name_or_path", str(tiny_llama_dir), "--output_dir", str(part)]) == 0
    (part / "model.safetensors").unlink()
    newest = part / "checkpoint-3" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # killed while writing the weights
    with pytest.raises(InputError, match=r"checkpoint-3 is incomplete: model.safetensors is truncated"):
        resolve_checkpoint(part, str(part / "checkpoint-3"))
    assert resolve_checkpoint(part, "last") == str(part / "checkpoint-2")
    assert "skipping checkpoint-3" in caplog.text
    assert cli.main(["train", "--config", str(recipe), "--model_name_or_path", str(tiny_llama_dir), "--output_dir", str(part),
                     "--resume_from_checkpoint", "last"]) == 0
    a, b = _weights(full), _weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_no_complete_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    from fairalign.align.run_guard import resolve_checkpoint

    (tmp_path / "checkpoint-5").mkdir()
    with pytest.raises(InputError, match=r"no complete checkpoint .*checkpoint-5: no trainer_state.json"):
        resolve_checkpoint(tmp_path, True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(tmp_path, str(tmp_path / "checkpoint-9"))


# ------------------------------------------------------------------------- data that looks valid but is not
def _trainer_on(rows, tokenizer, tmp_path):
    from fairalign.align.rdpo import RobustDPOConfig, RobustDPOTrainer

    return RobustDPOTrainer(tiny_llama(), ref_model=tiny_llama(), processing_class=tokenizer,
                            args=RobustDPOConfig(output_dir=str(tmp_path), **FAST), train_dataset=datasets.Dataset.from_list(rows))


def _conv(prompt_role="user", answer_role="assistant"):
    return [{"prompt": [{"role": prompt_role, "content": r["prompt"]}], "chosen": [{"role": answer_role, "content": r["chosen"]}],
             "rejected": [{"role": answer_role, "content": r["rejected"]}]} for r in TINY_PREFERENCES]


@pytest.mark.parametrize("roles, message", [(("human", "bot"), r"row 0: `prompt`\[0\] has role 'human'.*rename it to 'user'"),
                                             (("user", "gpt"), r"row 0: `chosen`\[0\] has role 'gpt'.*'assistant'")])
def test_unknown_chat_roles_name_the_row(tokenizer, tmp_path, roles, message):
    with pytest.raises(InputError, match=message):
        _trainer_on(_conv(*roles), tokenizer, tmp_path)


def test_plain_and_conversational_columns_mixed_name_the_row(tokenizer, tmp_path):
    rows = [dict(r, prompt=TINY_PREFERENCES[i]["prompt"]) for i, r in enumerate(_conv())]  # plain prompt, chat answers
    with pytest.raises(InputError, match=r"row 0: column `prompt` is plain text, but the dataset is conversational"):
        _trainer_on(rows, tokenizer, tmp_path)


def test_plain_and_conversational_rows_mixed_in_a_file_name_the_line(tmp_path):
    from fairalign.align.data import load_preference_dataset

    rows = [dict(r) for r in TINY_PREFERENCES[:3]] + _conv()[3:5]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"mixed.jsonl line 4: `prompt` is conversational, but line 1 has it plain text"):
        load_preference_dataset(str(path))


@pytest.mark.parametrize("content, message", [
    (b"", r"is empty"),
    (b'{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": "b"\n', r"bad.jsonl:2 is not valid JSON"),
    ('{"prompt": "caf\u00e9", "chosen": "b", "rejected": "c"}\n'.encode("latin-1"), r"is not UTF-8 text: line 1 has the byte 0xe9"),
    (b'["not", "an", "object"]\n', r"line 1: a row must be a JSON object"),
])
def test_bad_preference_files_name_the_file_and_line(tmp_path, tiny_llama_dir, capsys, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    from fairalign.align.data import load_preference_dataset

    with pytest.raises(InputError, match=message):
        load_preference_dataset(str(bad))
    code = cli.main(["train", "--config", str(_recipe(tmp_path, dataset_name=str(bad))), "--model_name_or_path", str(tiny_llama_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(bad) in err[0]


# ------------------------------------------------------------------------------------ one-line CLI errors
@pytest.mark.parametrize("argv, message", [
    (["--learning_rate", "nan"], r"RobustDPOConfig.learning_rate=nan is not a number"),
    (["--beta", "-0.1"], r"RobustDPOConfig.beta=-0.1 is out of range"),
    (["--dtype", "float33"], r"--dtype: invalid choice: 'float33'"),
    (["--lora_dropout", "1.5"], r"ModelConfig.lora_dropout=1.5"),
    (["--max_train_samples", "0"], r"ScriptArguments.max_train_samples=0"),
    (["--per_device_train_batch_size", "2.5"], r"invalid int value: '2.5'"),
    (["--dataset_name", "no/such/file.jsonl"], r"dataset_name: no/such/file.jsonl does not exist"),
    (["--resume_from_checkpoint", "no/such/checkpoint-3"], r"resume_from_checkpoint: no/such/checkpoint-3 does not exist"),
])
def test_train_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys, argv, message):
    code = cli.main(["train", "--config", str(_recipe(tmp_path)), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("fairalign train: error: ") and __import__("re").search(message, err[0]), err[0]


@pytest.mark.parametrize("value", [[1e-3, 2e-3], {"a": 1}, "fast", True])
def test_a_recipe_value_of_the_wrong_type_is_one_line(tmp_path, capsys, value):
    code = cli.main(["train", "--config", str(_recipe(tmp_path, learning_rate=value))])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "learning_rate" in err[0], err


@pytest.mark.parametrize("argv, message", [
    (["--prompt", ""], "--prompt number 1 is empty"),
    (["--prompt", "x", "--top-p", "nan"], r"--top-p=nan is not a number"),
    (["--prompt", "x", "--dtype", "float33"], "dtype='float33'"),
    (["--prompt", "x", "--uddia-head", "demo", "--uddia-fusion-weight", "inf"], "UDDIAConfig.fusion_weight=inf"),
    (["--prompts-file", "no/such/prompts.txt"], "--prompts-file: no/such/prompts.txt does not exist"),
])
def test_generate_cli_errors_are_one_line(tiny_llama_dir, capsys, argv, message):
    code = cli.main(["generate", "--model", str(tiny_llama_dir), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


# ------------------------------------------------------------------- the README's two-process CPU launch
@pytest.mark.slow
def test_readme_two_process_launch_is_one_distributed_job(tmp_path, tiny_llama_dir):
    """The command exactly as the README prints it (no ACCELERATE_USE_CPU): one job of two processes."""
    readme = (REPO / "README.md").read_text()
    assert "accelerate launch --config_file configs/accelerate/cpu_2proc.yaml scripts/train.py" in readme
    env = {k: v for k, v in ENV.items() if k != "ACCELERATE_USE_CPU"}
    out = tmp_path / "ddp"
    recipe = _recipe(tmp_path, max_steps=2, save_strategy="no", model_name_or_path=str(tiny_llama_dir), output_dir=str(out))
    accelerate = shutil.which("accelerate") or pytest.skip("the `accelerate` command is not on PATH")
    proc = subprocess.run([accelerate, "launch", "--config_file", "configs/accelerate/cpu_2proc.yaml", "scripts/train.py",
                           "--config", str(recipe)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((out / "fairalign_run.json").read_text())
    assert run["world_size"] == 2, "two independent copies, not one distributed job"
    assert (proc.stdout + proc.stderr).count("saved to") == 1
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in proc.stderr
