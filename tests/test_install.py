"""Reproducible installs: the pinned set covers every dependency and fits pyproject's ranges; setup.sh applies
it; `fairalign env` reports what differs from it."""
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    from fairalign.scripts.env import tested_versions

    return tested_versions()


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def _name(req: Requirement) -> str:
    return re.sub(r"[-_.]+", "-", req.name).lower()


def test_every_dependency_is_pinned_except_torch():
    pins = _pins()
    missing = sorted({_name(r) for r in _requirements()} - set(pins) - {"torch"})
    assert not missing, f"re-pin with scripts/pin_versions.sh: {missing} are not in scripts/constraints.txt"
    assert "torch" not in pins  # a user's CUDA torch must never be replaced by a pin


def test_pins_satisfy_the_declared_ranges():
    pins = _pins()
    for req in _requirements():
        if _name(req) in pins:
            assert Version(pins[_name(req)]) in req.specifier, f"{req} does not admit the pinned {pins[_name(req)]}"


def test_private_api_users_are_bounded_and_others_are_not():
    bounded = {_name(r) for r in _requirements() if any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)}
    assert bounded == {"trl"}, "an upper bound only where fairalign uses a private API (see pyproject.toml)"


def test_setup_applies_the_pins_and_offers_latest():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "-c scripts/constraints.txt" in setup and "FAIRALIGN_DEPS" in setup and "latest)" in setup
    assert (REPO / ".ci" / "run").read_text().strip().endswith("bash scripts/setup.sh test")


def test_env_reports_untested_versions(monkeypatch, capsys):
    from fairalign.scripts import env

    import importlib.metadata as md

    assert env.tested_versions(), "scripts/constraints.txt is empty or not shipped with the package"
    fake = {"pytest": md.version("pytest"), "transformers": "0.0.1", "no-such-package": "1.0"}
    differ = env.untested_versions(fake)
    assert list(differ) == ["transformers"] and differ["transformers"]["tested"] == "0.0.1"
    monkeypatch.setattr(env, "untested_versions", lambda pins=None: differ)
    assert env.main(env.make_parser().parse_args([])) == 0
    out = capsys.readouterr().out
    assert "1 installed package(s) differ from the tested set" in out and "(tested 0.0.1)" in out


@pytest.mark.parametrize("line", ["torch==2.13.0", "nvidia-cublas-cu12==12.1"])
def test_pin_script_leaves_gpu_builds_out(line):
    script = (REPO / "scripts" / "pin_versions.sh").read_text()
    pattern = re.search(r"grep -viE '([^']+)'", script).group(1)
    assert re.search(pattern, line, re.IGNORECASE)


def test_data_files_ship_in_the_wheel(tmp_path):
    # setup.py ships a data file only if its folder is a package and its suffix is in package_data: ask setuptools
    # itself (in a subprocess, egg-info under tmp_path) which files build_py would copy, instead of restating the rule.
    import json
    import subprocess
    import sys

    code = (
        "import json, os, sys, warnings; warnings.simplefilter('ignore'); import setuptools\n"
        "from distutils.core import run_setup\n"
        "dist = run_setup('setup.py', stop_after='config')\n"
        "dist.get_command_obj('egg_info').egg_base = sys.argv[1]\n"
        "cmd = dist.get_command_obj('build_py'); cmd.ensure_finalized()\n"
        "print(json.dumps(sorted(os.path.join(src, n) for _, src, _, names in cmd.data_files for n in names)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    shipped = set(json.loads(run.stdout.strip().splitlines()[-1]))
    # Every data file in a resources/ or assets/ folder (package data by convention), e.g. the packaged BLS table.
    data = {str(p.relative_to(REPO)) for root in ("align", "decoding", "eval", "scripts")
            for folder in ("resources", "assets") for depth in ("*", "*/*") for p in (REPO / root).rglob(f"{folder}/{depth}")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    data |= {str(p.relative_to(REPO)) for p in (REPO / "eval" / "tasks").glob("*.yaml")}  # the task registry
    assert {"eval/occupation/resources/cpsaat11_2022.csv", "eval/bbnli/resources/demo_probes.csv",
            "eval/toxicity/resources/demo_prompts.jsonl", "eval/tasks/toxicity.yaml"} <= data
    assert not data - shipped, f"not in the wheel (add an __init__.py or the suffix to package_data): {sorted(data - shipped)}"
    assert "scripts/constraints.txt" in shipped
