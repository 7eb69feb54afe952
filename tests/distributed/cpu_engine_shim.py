"""Worker entry point for FSDP / DeepSpeed on CPU (test-only): `python cpu_engine_shim.py SCRIPT ARGS...`.

`launch.py` starts it through the real `accelerate launch --config_file configs/accelerate/<engine>.yaml`, so
every environment variable accelerate sets for the engine (ACCELERATE_USE_FSDP, FSDP_*, ACCELERATE_USE_DEEPSPEED,
ACCELERATE_DEEPSPEED_*) is accelerate's own. What this file bypasses, in each worker, before SCRIPT runs:

1. accelerate's choice of device and backend. On a machine without an accelerator, `PartialState` picks either
   no distribution (use_cpu=False) or MULTI_CPU (use_cpu=True), and it only switches to FSDP from a GPU-like
   type and to DeepSpeed when not on CPU. Here `PartialState._prepare_backend` answers ("gloo", MULTI_GPU) for
   a launched worker and ACCELERATE_TORCH_DEVICE=cpu keeps tensors on the CPU, so accelerate wraps the model
   in FSDP2 / a DeepSpeed engine exactly as on GPUs, over a gloo process group.
2. fairalign's launch check (`run_guard.configure_cpu_launch`), which stops a GPU configuration started without
   GPUs: launch.py sets FAIRALIGN_ENGINE_ON_CPU=1 for these workers.

DeepSpeed runs on its CPU accelerator (DS_ACCELERATOR=cpu, set by launch.py; its collectives use gloo).
Nothing else is changed: sharding, wrapping, optimizer, checkpointing and state-dict code are the engines' own.
"""
import os
import runpy
import sys

from accelerate.state import PartialState
from accelerate.utils import DistributedType

_prepare_backend = PartialState._prepare_backend


def _gloo_for_launched_workers(self, cpu=False, sagemaker_dp=False, backend=None):
    if int(os.environ.get("LOCAL_RANK", -1)) != -1:
        return "gloo", DistributedType.MULTI_GPU
    return _prepare_backend(self, cpu, sagemaker_dp, backend)


if __name__ == "__main__":
    PartialState._prepare_backend = _gloo_for_launched_workers
    os.environ["ACCELERATE_TORCH_DEVICE"] = "cpu"
    script, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
