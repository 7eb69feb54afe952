"""Every shipped accelerate config either runs here or stops at launch naming the hardware it needs.

On a machine without CUDA, the variables `accelerate launch --config_file configs/accelerate/<x>.yaml` gives
each worker (computed by accelerate's own launcher code, launch.launcher_env) must make a config's
__post_init__ (before any model loads) raise one InputError naming what needs a GPU, the config and the CPU
alternative; cpu_2proc.yaml trains on CPU processes in one gloo group.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from launch import REPO, launcher_env  # noqa: E402

from fairalign.align.errors import InputError  # noqa: E402
from fairalign.align.run_guard import CPU_ENGINE_TEST_ENV, configure_cpu_launch  # noqa: E402

SHIPPED = sorted(p.name for p in (REPO / "configs" / "accelerate").glob("*.yaml"))
NEEDS_GPU = {"ddp.yaml": "mixed_precision: bf16", "single_gpu.yaml": "mixed_precision: bf16",
             "fsdp.yaml": "distributed_type: FSDP", "zero2.yaml": "DeepSpeed ZeRO-2", "zero3.yaml": "DeepSpeed ZeRO-3"}
RUNS_ON_CPU = {"cpu_2proc.yaml"}


def test_every_shipped_config_is_classified():
    assert set(SHIPPED) == set(NEEDS_GPU) | RUNS_ON_CPU


@pytest.fixture
def launched_with(monkeypatch):
    def apply(config: str):
        for key in list(os.environ):
            if key.startswith(("ACCELERATE_", "FSDP_")) or key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", CPU_ENGINE_TEST_ENV):
                monkeypatch.delenv(key)
        for key, value in launcher_env(config, nproc=None).items():
            monkeypatch.setenv(key, value)

    return apply


@pytest.mark.skipif(torch.cuda.is_available(), reason="what a launch without a GPU does")
@pytest.mark.parametrize("config", sorted(NEEDS_GPU))
def test_a_gpu_config_without_a_gpu_stops_before_the_model_loads(config, launched_with, tmp_path):
    from fairalign.align.rdpo import RobustDPOConfig
    from fairalign.align.reweighting import ReweightingConfig

    launched_with(config)
    for config_cls in (RobustDPOConfig, ReweightingConfig):
        with pytest.raises(InputError) as err:
            config_cls(output_dir=str(tmp_path))
        message = str(err.value)
        assert NEEDS_GPU[config] in message and config in message and "configs/accelerate/cpu_2proc.yaml" in message
        assert "no CUDA GPU" in message and len(message.splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="what a launch without a GPU does")
def test_the_cpu_config_trains_on_cpu_processes(launched_with):
    launched_with("cpu_2proc.yaml")
    config = SimpleNamespace(use_cpu=False)
    configure_cpu_launch(config)
    assert config.use_cpu  # one gloo group of CPU processes, not N independent copies


@pytest.mark.skipif(torch.cuda.is_available(), reason="what a launch without a GPU does")
def test_the_test_shim_alone_runs_an_engine_on_cpu(launched_with, monkeypatch):
    launched_with("fsdp.yaml")
    monkeypatch.setenv(CPU_ENGINE_TEST_ENV, "1")
    config = SimpleNamespace(use_cpu=False)
    configure_cpu_launch(config)
    assert not config.use_cpu  # cpu_engine_shim.py picks the device; use_cpu would turn FSDP off
