#!/usr/bin/env bash
# The generation engine of this working tree against the one of an earlier commit, on the same workloads:
# builds the earlier commit in a temporary worktree with this tree's EngineBenchmark.cs (it uses only APIs both
# engines have), then runs `engine` alternately, earlier then current, twice. Outputs' sha256 must match.
# Usage: src/OnlineAlign.Benchmarks/engine_compare.sh BASE_COMMIT [engine options, e.g. --model qwen2-narrow]
set -euo pipefail
base=${1:?an earlier commit, e.g. 22bf1be}; shift
root=$(git rev-parse --show-toplevel)
prev=$(mktemp -d)/engine-base
git -C "$root" worktree add -f -q "$prev" "$base"
trap 'git -C "$root" worktree remove --force "$prev"' EXIT
cp "$root/src/OnlineAlign.Benchmarks/EngineBenchmark.cs" "$root/src/OnlineAlign.Benchmarks/Program.cs" "$prev/src/OnlineAlign.Benchmarks/"
dotnet build "$prev/src/OnlineAlign.Benchmarks" -c Release -v q -nologo
dotnet build "$root/src/OnlineAlign.Benchmarks" -c Release -v q -nologo
for pass in 1 2; do
  for dir in "$prev" "$root"; do
    echo "== engine of $(git -C "$dir" rev-parse --short HEAD)$([ "$dir" = "$root" ] && echo ' (this tree)'), pass $pass"
    dotnet "$dir/src/OnlineAlign.Benchmarks/bin/Release/net10.0/OnlineAlign.Benchmarks.dll" engine --repeats 1 "$@"
  done
done
