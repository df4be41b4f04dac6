#!/usr/bin/env bash
# The generation engine of this working tree against the one of an earlier commit, on the same workloads:
# builds the earlier commit in a temporary worktree with this tree's EngineBenchmark.cs, RoundBenchmark.cs and
# ModelShapes.cs (they use only APIs both trees have) behind a small entry point, then runs the benchmark
# alternately, earlier then current, twice. Outputs' sha256 (engine) must match.
# Usage: src/OnlineAlign.Benchmarks/engine_compare.sh BASE_COMMIT [engine|round] [options, e.g. --model qwen2-narrow]
set -euo pipefail
base=${1:?an earlier commit, e.g. 22bf1be}; shift
command=engine
if [ "${1:-}" = engine ] || [ "${1:-}" = round ]; then command=$1; shift; fi
root=$(git rev-parse --show-toplevel)
prev=$(mktemp -d)/engine-base
git -C "$root" worktree add -f -q "$prev" "$base"
trap 'git -C "$root" worktree remove --force "$prev"' EXIT
bench="$prev/src/OnlineAlign.Benchmarks"
cp "$root/src/OnlineAlign.Benchmarks/"{EngineBenchmark,RoundBenchmark,ModelShapes}.cs "$bench/"
# Before chat templates moved into the tokenizer, the judge took the prompt template (plain for a byte tokenizer).
if grep -q "PromptTemplate template, int judgements" "$prev/src/OnlineAlign.Alignment/Judges/LlmJudge.cs"; then
  sed -i 's/new LlmJudge(model, tokenizer, /new LlmJudge(model, tokenizer, OnlineAlign.Modeling.Tokenization.PromptTemplate.Plain, /' "$bench/EngineBenchmark.cs"
fi
# The earlier tree's other benchmarks stay; its entry point is replaced by one that runs these two only.
cat > "$bench/Program.cs" <<'CS'
using OnlineAlign.Benchmarks;
string Arg(string name, string fallback)
{
    int i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
if (args[0] == "engine") EngineBenchmark.Run(EngineBenchmark.Parse(Arg), Console.Out);
else RoundBenchmark.Run(RoundBenchmark.Parse(Arg), Console.Out);
CS
dotnet build "$bench" -c Release -v q -nologo
dotnet build "$root/src/OnlineAlign.Benchmarks" -c Release -v q -nologo
once=()   # engine: one repeat a pass (the alternation is the repetition), its expected scores kept for comparison
for pass in 1 2; do
  for dir in "$prev" "$root"; do
    echo "== $command of $(git -C "$dir" rev-parse --short HEAD)$([ "$dir" = "$root" ] && echo ' (this tree)'), pass $pass"
    scores="$(dirname "$prev")/scores-$([ "$dir" = "$root" ] && echo this || echo base)-$pass.txt"
    [ "$command" = engine ] && once=(--repeats 1 --scores-out "$scores")
    dotnet "$dir/src/OnlineAlign.Benchmarks/bin/Release/net10.0/OnlineAlign.Benchmarks.dll" "$command" "${once[@]}" "$@"
  done
  # Expected scores are sums in a different order (a prompt computed once): equal up to float rounding.
  base_scores="$(dirname "$prev")/scores-base-$pass.txt" this_scores="$(dirname "$prev")/scores-this-$pass.txt"
  if [ -s "$base_scores" ] && [ -s "$this_scores" ]; then
    paste "$base_scores" "$this_scores" | awk '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d} END {printf "expected scores, largest |difference| between the engines: %.3g over %d responses\n", m, NR}'
  fi
done
