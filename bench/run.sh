#!/usr/bin/env bash
# Training throughput of the Go LoRA trainer against PyTorch on the CPU, in
# the same run: SmolLM2-135M shape, r8 on q,v and on all linear layers,
# 4 x 128 tokens per optimizer step (see train/bench_test.go and
# bench/lora_train_torch.py). Needs Debian's python3-torch
# (apt-get install -y python3-torch). STEPS and THREADS may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
steps=${STEPS:-2}
threads=${THREADS:-$(nproc)}
go_out=$(GOMAXPROCS=$threads go test ./train -run '^$' -bench SmolLM2 -benchtime ${steps}x -count 1)
echo "$go_out" | grep Benchmark
for t in qv all; do
	name=$t
	[ $t = all ] && name=all-linear
	gotps=$(echo "$go_out" | awk -v n="SmolLM2/$name-" 'index($1, n) {for (i = 1; i <= NF; i++) if ($(i+1) == "tokens/s") print $i}')
	py=$(/usr/bin/python3 bench/lora_train_torch.py --targets $t --steps $steps --threads $threads)
	echo "torch: $py"
	pytps=$(echo "$py" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_sec"])')
	echo "$name: go $gotps tokens/s, torch $pytps tokens/s, go/torch = $(/usr/bin/python3 -c "print(round($gotps/$pytps, 2))")"
done
