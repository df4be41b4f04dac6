#!/usr/bin/env bash
# The label-free experiment of docs/experiments.md: every (task, arm, seed) as its own process with one
# torch thread, $JOBS at a time, then align_summary.py turns the logs into the tables (mean and 95%
# t-interval over seeds, the paired change over round 0, judge quality per round).
# Every arm of a task shares its round 0 per seed (same warm start: IFT + EFT).
# Usage, from the repository root (build first):
#   bash src/OnlineAlign.Benchmarks/align_sweep.sh
#   BENCH="bash .gpu/run.sh OnlineAlign.Benchmarks" JOBS=16 bash src/OnlineAlign.Benchmarks/align_sweep.sh   # a packed copy
set -u
OUT=${OUT:-/tmp/align-sweep}; mkdir -p "$OUT"
export BENCH=${BENCH:-dotnet run -c Release --no-build --project src/OnlineAlign.Benchmarks --}
export ARGS=${ARGS:---rounds 4 --prompts 512 --samples 8 --eval 200 --sft-steps 400 --eft 2000 --lr 3e-5 --beta 0.1 --threads 1}
export OUT CAP=${CAP:-540}
TASKS=${TASKS:-sort reverse}
ARMS=${ARMS:-verifier llm frozen-llm cream-llm self-consistent sppo cream}
SEEDS=${SEEDS:-1 2 3 4 5}
# ARMS_<task> overrides the arms for one task (e.g. ARMS_reverse="verifier llm").
for seed in $SEEDS; do for task in $TASKS; do arms_var="ARMS_$task"; for arm in ${!arms_var:-$ARMS}; do echo "$task $arm $seed"; done; done; done |
  xargs -P "${JOBS:-2}" -L 1 bash -c 'timeout "$CAP" $BENCH align --task "$0" --methods "$1" --seeds "$2" $ARGS > "$OUT/$0-$1-$2.log" 2>&1'
python3 src/OnlineAlign.Benchmarks/align_summary.py "$OUT" | tee "$OUT/summary.md"
