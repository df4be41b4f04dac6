#!/usr/bin/env bash
# One GPU session's checks, sized to fit one device call (under 10 minutes: every step has its own time cap).
# Run from the repository root on a machine with PyTorch + CUDA, after
# ../shared/tools/gpu/pack.sh src/OnlineAlign.Benchmarks/OnlineAlign.Benchmarks.csproj and, to keep the carried tree
# under 64 MiB, (cd .gpu/app && rm -f Microsoft.CodeAnalysis* Humanizer.dll libSkiaSharp.so libHarfBuzzSharp.so)
# (compiler and plotting libraries the benchmarks do not load). Writes to $OUT.
# OnlineAlign and its PyTorch counterpart run one after the other in the same call, on the same GPU.
# FULL=1 adds the model and round comparisons of earlier sessions (docs/benchmarks.md), which need a second call.
set -u
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
bench() { timeout "$1" bash .gpu/run.sh OnlineAlign.Benchmarks "${@:2}" --out "$OUT/results.md" 2>&1 | tee -a "$OUT/log.txt"; }
py() { local cap=$1; shift; echo '```' >> "$OUT/results.md"; echo "\$ python3 $*" >> "$OUT/results.md"
  timeout "$cap" python3 "$@" 2>&1 | grep -v Warning | tee -a "$OUT/log.txt" "$OUT/results.md"; echo '```' >> "$OUT/results.md"; }
bench 30 device-check --device cuda
# The generation engine on a round's shape (256 prompts x 8 samples, 64-token prompts, varied lengths with stop ids)
# and the rubric judge, Qwen2-0.5B shape in bf16; then transformers' generate() on the same round workload.
bench 130 engine --model qwen2-0.5b --device cuda --dtype bf16 --prompts 256 --samples 8 --prompt 64 --new 64 --batch 256 --judge-prompts 16 --judge-responses 8 --judgements 3 --judge-new 16 --expected-prompts 32 --expected-responses 8 --repeats 1
py 100 src/OnlineAlign.Benchmarks/pytorch_engine.py --workload round --prompts 256 --samples 8 --prompt 64 --new 64 --batch 256
# nano-vllm's benchmark shape (256 sequences, prompts and outputs of 100-1024 tokens): ours, then generate() and vLLM if installed.
bench 100 throughput --model qwen2-0.5b --device cuda --dtype bf16
py 130 src/OnlineAlign.Benchmarks/pytorch_engine.py --workload nanovllm --vllm
# The memory plan against measured peaks: full and LoRA DPO steps on Qwen2 shapes in bf16 (nvidia-smi's memory.used, polled).
bench 90 memory --device cuda --dtype bf16 --models qwen2-0.5b,qwen2-1.5b --pairs 4 --prompt 256 --response 256 --plan-shapes qwen2-0.5b,qwen2-1.5b,llama-3-8b
if [ "${FULL:-0}" = 1 ]; then
  bench 110 model --model qwen2-0.5b --device cuda --dtype bf16 --batches 1,8,32 --prompt 64 --new 64 --pairs 8 --tokens 512 --repeats 2 --peak-tflops 989
  py 100 src/OnlineAlign.Benchmarks/pytorch_reference.py --repeats 2
  # One online round, phase by phase, OnlineAlign then PyTorch + transformers (pytorch_round.py), same shapes.
  bench 120 round --model qwen2-0.5b --device cuda --dtype bf16 --rounds 2 --prompts 32 --prompt 64 --samples 4 --new 64 --batch 32 --peak-tflops 989
  py 110 src/OnlineAlign.Benchmarks/pytorch_round.py --model qwen2-0.5b --rounds 2 --prompts 32 --prompt 64 --samples 4 --new 64 --batch 32 --eval 32
fi
