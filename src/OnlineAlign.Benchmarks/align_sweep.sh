#!/usr/bin/env bash
# The label-free experiment of docs/experiments.md: every (task, arm, seed) as its own process with one
# torch thread, $JOBS at a time, then align_summary.py turns the logs into the tables.
# The protocol: every round is evaluated on the validation stream (for choosing a recipe, its rounds and
# hyperparameters) and on the disjoint test stream (reported only); SEEDS are the seeds choices are made on,
# TEST_SEEDS fresh seeds that are never looked at for choosing (align_summary.py --test-seeds reports the
# chosen recipe on them alone). Controls run as arms: random-llm (DPO on random pairs of the llm arm's samples),
# rft-llm (SFT on the judge's best sample), sft-extra (a round's steps of more SFT), best-of-8 (reranking by the
# warm-started model's own LLM judge at test time), shuffled-sppo (SPPO's loss on the sppo arm's samples with each
# prompt's scores permuted: its targets keep the judge's score distribution, not which sample earned which). Every arm of a task shares its round 0 per seed.
# Usage, from the repository root (build first):
#   bash src/OnlineAlign.Benchmarks/align_sweep.sh
#   SEEDS="1 2 3 4 5" TEST_SEEDS="6 7 8 9 10 11 12 13 14 15" bash src/OnlineAlign.Benchmarks/align_sweep.sh
#   BENCH="bash .gpu/run.sh OnlineAlign.Benchmarks" JOBS=16 bash src/OnlineAlign.Benchmarks/align_sweep.sh   # a packed copy
#   GROUP=1 ARMS="sppo shuffled-sppo" bash src/OnlineAlign.Benchmarks/align_sweep.sh   # a seed's arms share one warm start
set -u
OUT=${OUT:-/tmp/align-sweep}; mkdir -p "$OUT"
export BENCH=${BENCH:-dotnet run -c Release --no-build --project src/OnlineAlign.Benchmarks --}
export ARGS=${ARGS:---rounds 4 --prompts 512 --samples 8 --eval 200 --sft-steps 400 --eft 2000 --lr 3e-5 --beta 0.1 --pretrain 200 --threads 1}
export OUT CAP=${CAP:-540}
TASKS=${TASKS:-sort reverse}
ARMS=${ARMS:-verifier llm frozen-llm cream-llm self-consistent sppo cream cream-avg random-llm rft-llm sft-extra best-of-8}
SEEDS=${SEEDS:-1 2 3 4 5}
TEST_SEEDS=${TEST_SEEDS:-}
# ARMS_<task> overrides the arms for one task (e.g. ARMS_reverse="verifier llm").
# GROUP=1: one process per (task, seed) runs all its arms, the first arm's warm start copied to the others (most of a
# `small` run's time is its warm start); --arm-logs writes each arm's TASK-ARM-SEED.log as a one-arm process would, and
# CAP then bounds the whole group.
if [ "${GROUP:-0}" = 1 ]; then
  for seed in $SEEDS $TEST_SEEDS; do for task in $TASKS; do arms_var="ARMS_$task"; arms="${!arms_var:-$ARMS}"; echo "$task ${arms// /,} $seed"; done; done |
    xargs -P "${JOBS:-2}" -L 1 bash -c 'timeout "$CAP" $BENCH align --task "$0" --methods "$1" --seeds "$2" $ARGS --arm-logs "$OUT" > "$OUT/$0-seed$2.group.out" 2>&1'
else
  for seed in $SEEDS $TEST_SEEDS; do for task in $TASKS; do arms_var="ARMS_$task"; for arm in ${!arms_var:-$ARMS}; do echo "$task $arm $seed"; done; done; done |
    xargs -P "${JOBS:-2}" -L 1 bash -c 'timeout "$CAP" $BENCH align --task "$0" --methods "$1" --seeds "$2" $ARGS > "$OUT/$0-$1-$2.log" 2>&1'
fi
range=""; if [ -n "$TEST_SEEDS" ]; then set -- $TEST_SEEDS; first=$1; for s in "$@"; do last=$s; done; range="--test-seeds $first-$last"; fi
python3 src/OnlineAlign.Benchmarks/align_summary.py "$OUT" --baseline llm $range | tee "$OUT/summary.md"
