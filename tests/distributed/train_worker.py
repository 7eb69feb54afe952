"""Train a list of small cases under whatever engine this process was launched with, and record the results.

A case is a dict (JSON):
    name       unique id, used for file names
    method     a key of fairalign.align.registry.METHODS (rdpo, rpo, logic, reweight)
    config     overrides of the method's config fields (e.g. {"structure": "dpo"} for logic)
    peft       true: train a LoRA adapter (r=4 on every linear layer); false: full fine-tune
    reference  "model": a reference model (full fine-tune: a copy of the policy; LoRA: the adapter-disabled
               policy); "precompute": precompute_ref_log_probs=True; "none": a reference-free method/config
               (reweight: always "none"; it trains on the texts prompt + chosen)
    steps      optimizer steps (default 2); the global batch is 4 pairs of fairalign.align.testing's 8
    resume     true: also train a second run resumed from checkpoint-1 of the first (resume_* results)
    save       true: save the final model to <out>/<name>/final (trainer.save_model, as `fairalign train`)
    perturb    true: change the loaded policy (embeddings + 1e-3) so that it differs from the model folder
    expect_error  true: building the trainer must fail; the results are {"error": "<type>: <message>"}

Per case, rank 0 writes <out>/<name>.json ({losses, metrics: {name: per-step values}, param_norm,
param_sum, world_size, engine ("FSDP2", "ZeRO-3", "MULTI_CPU", ...), sharded (whether any parameter is an
FSDP / ZeRO-3 shard), saved: [files of the saved model]}) and <out>/<name>.pt ({param name: full tensor}
of the trainable parameters, gathered from FSDP / ZeRO-3 shards, and "resume/<name>" for the resumed run).

    run_cases(engine, cases, tmp_path)   # "single" (this process) or a launch.ENGINES key (one launch, all cases)
    run_single(cases, tmp_path)          # the same cases in this process, to compare with
    launched = start_cases(engine, cases, tmp_path); ...; launched.results()   # overlap a launch with other work
    differences(one_process_result, engine_result)   # [] when they agree (tolerances in its docstring)
    python train_worker.py --cases cases.json --model DIR --out DIR   # what a launch runs in each process
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

HERE = Path(__file__).resolve().parent
GLOBAL_BATCH = 4
LORA = {"r": 4, "lora_alpha": 8, "target_modules": "all-linear", "lora_dropout": 0.0}


def make_model_dir(path: str | os.PathLike) -> Path:
    """The tiny random Llama of the engine tests (2 layers, hidden 64, seed 0) and its tokenizer, saved."""
    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        tiny_llama(hidden_size=64).save_pretrained(path)
        tiny_tokenizer().save_pretrained(path)
    return path


def case_config(case: dict, output_dir: Path, world_size: int, **extra):
    """The method config of `case` for a run with `world_size` processes (same global batch for any size)."""
    from fairalign.align.registry import get_method

    method = get_method(case["method"])
    config_cls, _ = method.load()
    if GLOBAL_BATCH % world_size:
        raise ValueError(f"the global batch of {GLOBAL_BATCH} does not split over {world_size} processes")
    fields = dict(output_dir=str(output_dir), max_steps=case.get("steps", 2), learning_rate=1e-3,
                  per_device_train_batch_size=GLOBAL_BATCH // world_size, logging_steps=1, save_strategy="no",
                  report_to=[], seed=0, disable_tqdm=True, dataloader_num_workers=0,
                  use_cpu=world_size == 1)  # CPU like the launched workers, even where CUDA is visible
    if method.data == "preference":
        fields["precompute_ref_log_probs"] = case["reference"] == "precompute"
    elif case["reference"] != "none":
        raise ValueError(f"case {case['name']}: method {case['method']!r} has no reference; use reference='none'")
    fields.update(case.get("config", {}))
    fields.update(extra)
    return config_cls(**fields)


def build_trainer(case: dict, model_dir: Path, output_dir: Path, world_size: int, **config_extra):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from fairalign.align.registry import get_method
    from fairalign.align.testing import TINY_PREFERENCES, tiny_tokenizer

    config = case_config(case, output_dir, world_size, **config_extra)  # first: ZeRO-3 loads partitioned after it
    method = get_method(case["method"])
    _, trainer_cls = method.load()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if case.get("perturb"):  # the in-memory policy no longer equals the one at model_dir
        _perturb(model.get_input_embeddings().weight)
    peft_config = None
    if case.get("peft"):
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **LORA)
    if method.data == "lm":  # as `fairalign train` builds it
        from fairalign.align.reweighting import build_lm_trainer

        texts = Dataset.from_list([{"text": row["prompt"] + row["chosen"]} for row in TINY_PREFERENCES])
        return build_lm_trainer(model, tiny_tokenizer(), config, texts, peft_config=peft_config)
    trainer = trainer_cls(model, args=config, train_dataset=Dataset.from_list(TINY_PREFERENCES),
                          processing_class=tiny_tokenizer(), peft_config=peft_config)
    wants_reference = case["reference"] != "none"
    if trainer.needs_reference != wants_reference:
        raise ValueError(f"case {case['name']}: reference={case['reference']!r} but {trainer_cls.__name__} "
                         f"{'needs' if trainer.needs_reference else 'does not use'} a reference")
    return trainer


def _perturb(param: torch.Tensor) -> None:
    if hasattr(param, "ds_id"):  # a ZeRO-3 partition: change the gathered tensor, written back on exit
        import deepspeed

        with deepspeed.zero.GatheredParameters([param], modifier_rank=0), torch.no_grad():
            param.add_(1e-3)
        return
    with torch.no_grad():
        param.add_(1e-3)


def trainable_parameters(trainer) -> dict[str, torch.Tensor]:
    """Full (unsharded) copies of the trainable parameters, on every rank (a collective under FSDP / ZeRO-3)."""
    named = [(n, p) for n, p in trainer.model.named_parameters() if p.requires_grad]
    out = {}
    zero3 = [p for _, p in named if hasattr(p, "ds_id")]
    if zero3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(zero3):
            out = {n: p.detach().clone().cpu() for n, p in named}
        return out
    for name, p in named:
        p = p.full_tensor() if hasattr(p, "full_tensor") else p
        out[name] = p.detach().clone().cpu()
    return out


def engine_name(trainer) -> str:
    """What wrapped the model: "NO" (one process), "MULTI_CPU" (DDP on CPU), "FSDP2", "ZeRO-2", "ZeRO-3", ..."""
    state = trainer.accelerator.state
    kind = str(state.distributed_type).split(".")[-1]
    if kind == "FSDP":
        return f"FSDP{state.fsdp_plugin.fsdp_version}"
    if kind == "DEEPSPEED":
        return f"ZeRO-{state.deepspeed_plugin.zero_stage}"
    return kind


def _history(trainer) -> tuple[list[float], dict[str, list[float]]]:
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    metrics: dict[str, list[float]] = {}
    for entry in logs:
        for key, value in entry.items():
            if isinstance(value, (int, float)):
                metrics.setdefault(key, []).append(float(value))
    return [entry["loss"] for entry in logs], metrics


def train_case(case: dict, model_dir: Path, out: Path) -> None:
    """Train `case` (and its resumed twin), write its results from rank 0."""
    world = int(os.environ.get("WORLD_SIZE", "1"))  # the launcher's; the process group starts with the config
    run_dir = out / case["name"]
    try:
        trainer = build_trainer(case, model_dir, run_dir / "run", world,
                                **({"save_strategy": "steps", "save_steps": 1} if case.get("resume") else {}))
    except Exception as err:
        if not case.get("expect_error"):
            raise
        if os.environ.get("RANK", "0") == "0":
            (out / f"{case['name']}.json").write_text(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        return
    if case.get("expect_error"):
        raise AssertionError(f"case {case['name']}: building the trainer did not fail")
    if case.get("resume"):
        trainer.add_callback(_SaveFirstStepOnly())
    trainer.train()
    losses, metrics = _history(trainer)
    params = trainable_parameters(trainer)
    flat = torch.cat([t.double().flatten() for t in params.values()])
    saved = []
    if case.get("save"):
        trainer.save_model(str(run_dir / "final"))
        trainer.accelerator.wait_for_everyone()
        saved = sorted(p.name for p in (run_dir / "final").iterdir()) if (run_dir / "final").is_dir() else []
    result = {"losses": losses, "metrics": metrics, "world_size": world, "engine": engine_name(trainer),
              "sharded": any(hasattr(p, "ds_id") or hasattr(p, "full_tensor") for p in trainer.model.parameters()),
              "saved": saved}
    if case.get("resume"):
        resumed = build_trainer(case, model_dir, run_dir / "resumed", world)
        resumed.train(resume_from_checkpoint=str(run_dir / "run" / "checkpoint-1"))
        result["resume_losses"] = _history(resumed)[0]
        params = {**params, **{f"resume/{n}": t for n, t in trainable_parameters(resumed).items()}}
        _release(resumed)
    result.update(param_norm=float(flat.norm()), param_sum=float(flat.sum()))
    if trainer.accelerator.is_main_process:
        torch.save(params, out / f"{case['name']}.pt")
        (out / f"{case['name']}.json").write_text(json.dumps(result, indent=1))
    _release(trainer)


class _SaveFirstStepOnly(TrainerCallback):
    """Keeps only checkpoint-1 (mid-epoch: resuming it skips a batch of the first epoch)."""

    def on_step_end(self, args, state, control, **kwargs):
        control.should_save = state.global_step == 1
        return control


@contextlib.contextmanager
def _tiny_run_settings():
    """Settings that make tiny runs fast: one intra-op thread (two wait for each other on models this small;
    the launched workers have it from OMP_NUM_THREADS=1), and gc.freeze(): each case ends in gc.collect()
    (accelerate's free_memory), which walks every object alive, ~1 s per case with the libraries loaded;
    freezing exempts what exists before the first case (modules, mostly)."""
    import fairalign.align.preference  # noqa: F401  (the bulk of what a case imports)
    import peft  # noqa: F401

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        torch.set_num_threads(threads)


def _release(trainer) -> None:
    """Drop what the accelerator still holds of a finished case (model, optimizer, engine) before the next."""
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.free_memory()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", required=True, help="JSON file: a list of cases")
    parser.add_argument("--model", required=True, help="model folder (make_model_dir)")
    parser.add_argument("--out", required=True, help="results folder")
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_DISABLED", "true")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = json.loads(Path(args.cases).read_text())
    with _tiny_run_settings():
        for case in cases:
            start = time.perf_counter()
            train_case(case, Path(args.model), out)
            if os.environ.get("RANK", "0") == "0":
                print(f"[train_worker] {case['name']}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # every rank leaves the gloo group together
        dist.barrier()
        dist.destroy_process_group()
    return 0


def read_results(out: Path, cases: list[dict]) -> dict[str, dict]:
    """{case name: its JSON results plus "params": {name: tensor}}."""
    results = {}
    for case in cases:
        result = json.loads((out / f"{case['name']}.json").read_text())
        if "error" not in result:
            result["params"] = torch.load(out / f"{case['name']}.pt", weights_only=True)
        results[case["name"]] = result
    return results


def run_single(cases: list[dict], tmp_path: str | os.PathLike) -> dict[str, dict]:
    """The one-process run of `cases` (in this process), to compare a launch with."""
    return run_cases("single", cases, tmp_path)


def differences(reference: dict, result: dict, loss_atol: float = 1e-6, metric_atol: float = 3e-5,
                metric_rtol: float = 1e-5, param_atol: float = 1e-5) -> list[str]:
    """How `result` (a case under an engine) differs from `reference` (the same case in one process), one line
    each; [] when they agree. The per-step loss to loss_atol; every other logged metric (same names) to
    metric_atol + metric_rtol*|x|: rewards, rho and margins are differences of summed log-probs of size ~100,
    whose float32 rounding (~1e-5) the order of a distributed reduction changes. The trainable parameters to
    param_atol: AdamW's first steps divide a near-zero gradient by its own magnitude, which magnifies the
    rounding of a few entries to ~5e-6."""
    problems = []
    if sorted(reference["metrics"]) != sorted(result["metrics"]):
        problems.append(f"metric names differ: {sorted(set(reference['metrics']) ^ set(result['metrics']))}")
    for name in sorted(set(reference["metrics"]) & set(result["metrics"])):
        want, got = torch.tensor(reference["metrics"][name]), torch.tensor(result["metrics"][name])
        atol, rtol = (loss_atol, 0.0) if name == "loss" else (metric_atol, metric_rtol)
        if want.shape != got.shape or not torch.allclose(got, want, rtol=rtol, atol=atol):
            problems.append(f"metric {name}: {got.tolist()} != one process {want.tolist()}")
    want, got = reference["params"], {k: v for k, v in result["params"].items() if not k.startswith("resume/")}
    if sorted(want) != sorted(got):
        problems.append(f"trainable parameters differ by name: {sorted(set(want) ^ set(got))[:5]}")
    for name in sorted(set(want) & set(got)):
        gap = (got[name].double() - want[name].double()).abs().max().item()
        if gap > param_atol:
            problems.append(f"parameter {name}: max |difference| {gap:.2e} > {param_atol:.0e}")
    return problems


def run_cases(engine: str, cases: list[dict], tmp_path: str | os.PathLike, timeout: float = 600) -> dict[str, dict]:
    """Train every case under `engine` ("single" = this process; else one launch of launch.ENGINES[engine] with
    2 CPU processes for all cases) and return read_results. A failed launch raises with the log's tail."""
    if engine == "single":
        _check_names(cases)
        out = Path(tmp_path) / "results-single"
        out.mkdir(parents=True, exist_ok=True)
        with _tiny_run_settings():
            for case in cases:
                train_case(case, make_model_dir(Path(tmp_path) / "tiny-llama-64"), out)
        return read_results(out, cases)
    return start_cases(engine, cases, tmp_path).results(timeout)


class Launched:
    """A launch of train_worker under an engine, running; `results()` waits for it and reads what it wrote."""

    def __init__(self, engine: str, cases: list[dict], tmp_path: Path):
        sys.path.insert(0, str(HERE))
        from launch import start

        self.engine, self.cases = engine, cases
        model_dir = make_model_dir(tmp_path / "tiny-llama-64")
        self.out, self.log = tmp_path / f"results-{engine}", tmp_path / f"launch-{engine}.log"
        cases_file = tmp_path / f"cases-{engine}.json"
        cases_file.write_text(json.dumps(cases))
        self.process = start(engine, Path(__file__), ["--cases", cases_file, "--model", model_dir, "--out", self.out],
                             log=self.log)

    def results(self, timeout: float = 600) -> dict[str, dict]:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        if code != 0:
            log = self.log.read_text(errors="replace")
            rank_lines = [line for line in log.splitlines() if line.startswith(("[rank0]:", "[rank1]:"))]
            raise RuntimeError(f"{self.engine} launch failed (exit {code}); log: {self.log}\n"
                               + "\n".join((rank_lines or log.splitlines())[-60:]))
        return read_results(self.out, self.cases)


def start_cases(engine: str, cases: list[dict], tmp_path: str | os.PathLike) -> Launched:
    """Start the launch of `run_cases` and return at once (e.g. to run the one-process cases meanwhile)."""
    _check_names(cases)
    return Launched(engine, cases, Path(tmp_path))


def _check_names(cases: list[dict]) -> None:
    names = [case["name"] for case in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names must be unique: {names}")


if __name__ == "__main__":
    sys.exit(main())
