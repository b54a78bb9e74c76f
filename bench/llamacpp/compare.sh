#!/usr/bin/env bash
# compare.sh: Switchyard vs llama.cpp on the same GGUF files in the same run.
#
# For the SmolLM2-135M-shaped F16 and Q8_0 test models it runs, one after the
# other, `switchyard bench --format json` and run.mjs (llama.cpp through the
# node-llama-cpp npm package's prebuilt CPU build), both on $THREADS threads,
# and prints Switchyard / llama.cpp tokens/s ratios for: prefill of 512
# tokens, decode of 1 sequence, decode with one rank-8 LoRA adapter, and 8
# sequences decoding together (Switchyard: each on its own adapter;
# llama.cpp: base model, as it cannot batch per-sequence adapters).
#
#   bench/llamacpp/compare.sh          # env: THREADS=2 PROMPT_TOKENS=512 DECODE_STEPS=32 OUT=dir
#
# node-llama-cpp is installed once into $SWITCHYARD_CACHE/node-llama-cpp
# (default ~/.cache/switchyard/node-llama-cpp); the raw JSON reports go to $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-2} PROMPT_TOKENS=${PROMPT_TOKENS:-512} DECODE_STEPS=${DECODE_STEPS:-32} RANK=8
CACHE=${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}
export NODE_LLAMA_CPP_DIR=$CACHE/node-llama-cpp NLC_VERSION=3.21.1
OUT=${OUT:-$(mktemp -d -t switchyard-vs-llamacpp.XXXX)}
mkdir -p "$OUT"

echo "building switchyard and mklora into $OUT" >&2
go build -o "$OUT/switchyard" ./cmd/switchyard
go build -o "$OUT/mklora" ./bench/llamacpp/mklora

MODELS=$CACHE/models
if [[ ! -f $MODELS/smollm2-135m-v1-f16.gguf || ! -f $MODELS/smollm2-135m-v1-q8_0.gguf ]]; then
  echo "writing the test models into $MODELS" >&2 # switchyard bench writes them when given no --model
  "$OUT/switchyard" bench --prompt-tokens 1 --decode-steps 1 --threads "$THREADS" >/dev/null
fi

if [[ ! -f $NODE_LLAMA_CPP_DIR/node_modules/node-llama-cpp/package.json ]]; then
  echo "installing node-llama-cpp $NLC_VERSION into $NODE_LLAMA_CPP_DIR" >&2
  mkdir -p "$NODE_LLAMA_CPP_DIR"
  (cd "$NODE_LLAMA_CPP_DIR" && [[ -f package.json ]] || echo '{"private": true}' >package.json)
  # Skip the postinstall (it would build llama.cpp from source): the platform
  # package, named explicitly, carries the prebuilt CPU binaries; the other
  # optional ones (CUDA, Vulkan, other platforms) are left out.
  (cd "$NODE_LLAMA_CPP_DIR" && NODE_LLAMA_CPP_POSTINSTALL=skip npm i --no-audit --no-fund --omit=optional \
    "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/$(node -p 'process.platform + "-" + process.arch')@$NLC_VERSION" >&2)
fi

table=()
for q in f16 q8_0; do
  model=$MODELS/smollm2-135m-v1-$q.gguf
  lora=$MODELS/smollm2-135m-v1-$q-lora-r$RANK.gguf
  [[ -f $lora ]] || "$OUT/mklora" --model "$model" --rank "$RANK" --out "$lora"
  loras=$lora # the mixed load: 8 adapters, seeds 1 (the one above) to 8
  for seed in 2 3 4 5 6 7 8; do
    l=$MODELS/smollm2-135m-v1-$q-lora-r$RANK-s$seed.gguf
    [[ -f $l ]] || "$OUT/mklora" --model "$model" --rank "$RANK" --seed "$seed" --out "$l"
    loras+=,$l
  done
  echo "$q: switchyard bench" >&2
  "$OUT/switchyard" bench --model "$model" --format json --threads "$THREADS" --rank "$RANK" \
    --prompt-tokens "$PROMPT_TOKENS" --decode-steps "$DECODE_STEPS" >"$OUT/switchyard-$q.json"
  echo "$q: llama.cpp" >&2
  node bench/llamacpp/run.mjs --model "$model" --lora "$lora" --loras "$loras" --threads "$THREADS" \
    --prompt-tokens "$PROMPT_TOKENS" --decode-steps "$DECODE_STEPS" >"$OUT/llamacpp-$q.json"
  table+=("$q" "$OUT/switchyard-$q.json" "$OUT/llamacpp-$q.json")
done
node bench/llamacpp/table.mjs "${table[@]}"
echo "raw reports: $OUT" >&2
