"""Start a script as N CPU processes (gloo) under one of the shipped accelerate configs (test-only).

    launch("fsdp2", "tests/distributed/train_worker.py", ["--cases", ...]) -> subprocess.CompletedProcess

It runs the real launcher, `accelerate launch --config_file configs/accelerate/<config>.yaml`, with:
- `--num_processes N` (the configs say 8 GPUs), `--mixed_precision no` (bf16 on CPU is slow and would not
  match a float32 run to 1e-6), `--main_process_port 0` (a free port) and one thread per process;
- for fsdp2 / zero2 / zero3, the worker entry `cpu_engine_shim.py`, which bypasses accelerate's device choice
  (a gloo group on the CPU reported as MULTI_GPU, so accelerate takes its FSDP2 / DeepSpeed path) and
  fairalign's "GPU config without a GPU" launch error; see that file for exactly what it changes.
  DeepSpeed runs on its CPU accelerator (DS_ACCELERATOR=cpu).
- ddp needs no bypass: on a machine without CUDA, fairalign trains each process on the CPU in one gloo group
  (`run_guard.configure_cpu_launch`), which is what configs/accelerate/cpu_2proc.yaml does.
Everything else (FSDP_* / ACCELERATE_DEEPSPEED_* variables, torchrun, sharding, checkpoints) is unchanged.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).resolve().with_name("cpu_engine_shim.py")
ENGINES = {"ddp": "ddp.yaml", "fsdp2": "fsdp.yaml", "zero2": "zero2.yaml", "zero3": "zero3.yaml"}


def launch_env() -> dict[str, str]:
    """The environment of a launch: offline, no W&B, fairalign importable the way this process imports it."""
    import fairalign

    # a checkout's shim (a regular package) must reach the children; an installed fairalign is a namespace
    # package (no __file__) that every process finds anyway
    package_parent = str(Path(fairalign.__file__).resolve().parents[1]) if fairalign.__file__ else ""
    paths = [package_parent, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "WANDB_DISABLED": "true", "DS_ACCELERATOR": "cpu", "FAIRALIGN_ENGINE_ON_CPU": "1",
           "CUDA_VISIBLE_DEVICES": "",  # CPU processes even on a GPU machine
           "PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in paths if p))}
    env.pop("ACCELERATE_USE_CPU", None)  # the config file decides, as for a user's launch
    return env


def command(engine: str, script: str | os.PathLike, args: list, nproc: int = 2) -> list[str]:
    """The `accelerate launch` command line of `launch` (see the module docstring)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {sorted(ENGINES)}; got {engine!r}")
    entry = [str(script)] if engine == "ddp" else [str(SHIM), str(script)]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(REPO / "configs" / "accelerate" / ENGINES[engine]), "--num_processes", str(nproc),
            "--mixed_precision", "no", "--main_process_port", "0", "--num_cpu_threads_per_process", "1",
            *entry, *map(str, args)]


def start(engine: str, script: str | os.PathLike, args: list, log: str | os.PathLike, nproc: int = 2,
          cwd: str | os.PathLike = REPO) -> subprocess.Popen:
    """`launch` without waiting: stdout and stderr go to the file `log`."""
    with open(log, "w") as sink:  # the child keeps its own handle
        return subprocess.Popen(command(engine, script, args, nproc), cwd=cwd, env=launch_env(), stdout=sink,
                                stderr=subprocess.STDOUT, text=True)


def launch(engine: str, script: str | os.PathLike, args: list, nproc: int = 2, timeout: float = 600,
           cwd: str | os.PathLike = REPO) -> subprocess.CompletedProcess:
    """Run `script args` as `nproc` CPU processes under `engine`; returns the finished process (text stdout,
    stderr). Raises subprocess.TimeoutExpired after `timeout` seconds."""
    return subprocess.run(command(engine, script, args, nproc), cwd=cwd, env=launch_env(), capture_output=True,
                          text=True, timeout=timeout)


def launcher_env(config: str, nproc: int | None = 2) -> dict[str, str]:
    """The variables `accelerate launch --config_file configs/accelerate/<config> [--num_processes nproc]` gives
    each worker (accelerate's own config parsing and env preparation, plus torchrun's WORLD_SIZE / RANK for the
    multi-process launchers), without starting anything: what a launch check in the worker sees."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import launch as prepare

    argv = ["--config_file", str(REPO / "configs" / "accelerate" / config), "--main_process_port", "0"]
    argv += ["--num_processes", str(nproc)] if nproc else []
    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args([*argv, "script.py"]))
    torchrun = {"WORLD_SIZE": str(args.num_processes), "RANK": "0", "LOCAL_RANK": "0"}
    if args.use_deepspeed and not args.cpu:  # the dispatch of accelerate's launch_command
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config) if defaults else ""
        env = {**prepare.prepare_deepspeed_cmd_env(args)[1], **torchrun}
    elif (args.use_fsdp or args.multi_gpu) and not args.cpu:
        env = {**prepare.prepare_multi_gpu_env(args), **torchrun}
    else:
        env = prepare.prepare_simple_launcher_cmd_env(args)[1]
    return {k: v for k, v in env.items() if os.environ.get(k) != v and k != "PYTHONPATH"}
