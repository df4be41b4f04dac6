#!/usr/bin/env bash
# One GPU session's checks (run from the repository root on a machine with PyTorch + CUDA, after
# ../shared/tools/gpu/pack.sh src/OnlineAlign.Benchmarks/OnlineAlign.Benchmarks.csproj). Writes to $OUT.
# OnlineAlign and the PyTorch reference run one after the other in the same call, on the same GPU.
set -u
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
bench() { timeout "$1" bash .gpu/run.sh OnlineAlign.Benchmarks "${@:2}" --out "$OUT/results.md" 2>&1 | tee -a "$OUT/log.txt"; }
bench 120 device-check --device cuda
bench 240 model --model qwen2-0.5b --device cuda --dtype bf16 --batches 1,8,32 --prompt 64 --new 64 --pairs 8 --tokens 512 --repeats 3 --peak-tflops 989
echo '```' >> "$OUT/results.md"
echo '$ python3 src/OnlineAlign.Benchmarks/pytorch_reference.py' >> "$OUT/results.md"
timeout 200 python3 src/OnlineAlign.Benchmarks/pytorch_reference.py 2>&1 | grep -v Warning | tee -a "$OUT/log.txt" "$OUT/results.md"
echo '```' >> "$OUT/results.md"
# Training like for like: PyTorch with the LM head only at response tokens too (TRL's use_logits_to_keep).
echo '```' >> "$OUT/results.md"
echo '$ python3 src/OnlineAlign.Benchmarks/pytorch_reference.py --batches 1 --new 8 --logits-to-keep' >> "$OUT/results.md"
timeout 150 python3 src/OnlineAlign.Benchmarks/pytorch_reference.py --batches 1 --new 8 --logits-to-keep 2>&1 | grep -v Warning | grep -E "DPO|log-probs" | tee -a "$OUT/log.txt" "$OUT/results.md"
echo '```' >> "$OUT/results.md"
# One online round, phase by phase, OnlineAlign then PyTorch + transformers (pytorch_round.py), same shapes.
bench 300 round --model qwen2-0.5b --device cuda --dtype bf16 --rounds 2 --prompts 64 --prompt 64 --samples 4 --new 64 --batch 8 --peak-tflops 989
echo '```' >> "$OUT/results.md"
echo '$ python3 src/OnlineAlign.Benchmarks/pytorch_round.py --model qwen2-0.5b --rounds 2 --prompts 64 --prompt 64 --samples 4 --new 64 --batch 8 --eval 32' >> "$OUT/results.md"
timeout 300 python3 src/OnlineAlign.Benchmarks/pytorch_round.py --model qwen2-0.5b --rounds 2 --prompts 64 --prompt 64 --samples 4 --new 64 --batch 8 --eval 32 2>&1 | grep -v Warning | tee -a "$OUT/log.txt" "$OUT/results.md"
echo '```' >> "$OUT/results.md"
