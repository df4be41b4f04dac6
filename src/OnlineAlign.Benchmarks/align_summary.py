"""Tables of the label-free experiment from align_sweep.sh's logs (one log per task, arm and seed).

Usage: python3 align_summary.py FOLDER [--baseline llm] [--test-seeds 6-15]

The protocol (docs/experiments.md): every run evaluates each round on the validation stream (what recipes, rounds and
hyperparameters are chosen on) and on the disjoint test stream (reported only). Per task this prints:
  1. test accuracy per arm and round (mean and 95% t-interval over seeds), and the change over round 0 paired by seed;
  2. paired differences between arms on test: each arm minus the baseline arm (default llm), by seed and round;
  3. the choice on validation: per arm the round with the best mean validation accuracy, and its test accuracy and paired
     change over round 0 there; the arm chosen on validation among the label-free ones, reported on test;
  4. per round the Kendall tau of the arm's judge against the verifier, CREAM's consistency C and the pairs kept, and
     (rounds 0 on, where the logs have it) the judge's accuracy on the checker-scored pairwise set (judge/pairwise_accuracy).
With --test-seeds, seeds in that range are left out of every choice (steps 3) and the chosen arm and round are reported
on them alone: confirmation on seeds not used for choosing. Runs that did not finish a round are left out of it.
"""
import glob, math, os, re, sys
from collections import defaultdict

T975 = [float("nan"), 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]
ROUND0 = re.compile(r"^seed (\d+) (\S+): round 0 .*validation accuracy ([\d.]+) ?%, test accuracy ([\d.]+) ?%")
ROUND = re.compile(r"^\s+(\S+)\s+round (\d+): validation accuracy ([\d.]+) ?%, test accuracy ([\d.]+) ?%, pairs (\d+), C ([\d.NaN]+), "
                   r"tau\(judge, verifier\) (\S+?),? ")
PAIRWISE = re.compile(r"judge pairwise accuracy ([\d.]+|NaN)")
LABELLED = {"verifier"}          # arms that use labels: never chosen as the label-free recipe
CONTROLS = {"random-llm", "rft-llm", "sft-extra", "best-of-8"}


def interval(values, points=False):
    n = len(values)
    if n == 0:
        return "-"
    mean = sum(values) / n
    t = T975[n - 1] if n - 1 < len(T975) else 1.96
    half = t * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n) if n > 1 else float("nan")
    return f"{mean:+.1f} ± {half:.1f}" if points else f"{mean:.1f} % ± {half:.1f}"


def mean(values):
    return sum(values) / len(values) if values else float("nan")


def parse(folder):
    """(task, arm) -> seed -> {round: (validation, test, pairs, tau, C, pairwise accuracy)}, and the first command line."""
    runs, command = defaultdict(dict), None
    for path in sorted(glob.glob(os.path.join(folder, "*.log"))):
        task = os.path.basename(path).split("-")[0]
        rounds, seed, arm = {}, None, None
        for line in open(path, errors="replace"):
            if line.startswith("$ ") and command is None:
                command = line.strip()
            pairwise = float(p.group(1)) if (p := PAIRWISE.search(line)) else float("nan")  # logs before it: NaN
            if m := ROUND0.match(line):
                seed, arm = int(m.group(1)), m.group(2)
                rounds[0] = (float(m.group(3)), float(m.group(4)), float("nan"), float("nan"), float("nan"), pairwise)
            elif (m := ROUND.match(line)) and seed is not None:
                rounds[int(m.group(2))] = (float(m.group(3)), float(m.group(4)), float(m.group(5)), float(m.group(7)), float(m.group(6)),
                                           pairwise)
        if seed is not None:
            runs[(task, arm)][seed] = rounds
    return runs, command


def seed_range(text):
    if not text:
        return set()
    lo, _, hi = text.partition("-")
    return set(range(int(lo), int(hi or lo) + 1))


def main(folder, baseline="llm", test_seeds=()):
    runs, command = parse(folder)
    print(f"Logs: {folder}; first command: `{command}` (each log holds its own)\n")
    for task in sorted({t for t, _ in runs}):
        arms = [a for t, a in runs if t == task]
        last = max(max(r) for a in arms for r in runs[(task, a)].values())
        seeds = sorted({s for a in arms for s in runs[(task, a)]})
        choose = [s for s in seeds if s not in test_seeds]
        confirm = [s for s in seeds if s in test_seeds]
        rounds_head = " | ".join(f"round {r}" for r in range(1, last + 1))
        runs_of = lambda a, pool: [runs[(task, a)][s] for s in pool if s in runs[(task, a)]]

        print(f"### Task `{task}`: test accuracy (mean ± 95% t-interval over seeds {', '.join(map(str, seeds))})\n")
        print(f"| arm | " + " | ".join(f"round {r}" for r in range(last + 1)) + " |\n|---|" + "---|" * (last + 1))
        for a in arms:
            print(f"| {a} | " + " | ".join(interval([r[k][1] for r in runs[(task, a)].values() if k in r]) for k in range(last + 1)) + " |")
        print(f"\nTest: change over round 0, paired by seed (percentage points, 95% t-interval):\n")
        print(f"| arm | {rounds_head} |\n|---|" + "---|" * last)
        for a in arms:
            print(f"| {a} | " + " | ".join(interval([r[k][1] - r[0][1] for r in runs[(task, a)].values() if k in r], True)
                                           for k in range(1, last + 1)) + " |")

        if (task, baseline) in runs:
            base = runs[(task, baseline)]
            print(f"\nTest: each arm minus `{baseline}`, paired by seed and round (percentage points, 95% t-interval):\n")
            print(f"| arm | {rounds_head} |\n|---|" + "---|" * last)
            for a in arms:
                if a == baseline:
                    continue
                cells = []
                for k in range(1, last + 1):
                    d = [r[k][1] - base[s][k][1] for s, r in runs[(task, a)].items() if k in r and s in base and k in base[s]]
                    cells.append(interval(d, True))
                print(f"| {a} | " + " | ".join(cells) + " |")

        print(f"\nChosen on validation (seeds {', '.join(map(str, choose)) or '-'}): per arm the round with the best mean validation "
              f"accuracy, and on test there (seeds {', '.join(map(str, confirm or choose))}):\n")
        print("| arm | chosen round | validation | test | test change over round 0 |\n|---|---|---|---|---|")
        chosen = {}
        for a in arms:
            pool = runs_of(a, choose)
            means = {k: mean([r[k][0] for r in pool if k in r]) for k in range(last + 1)}
            means = {k: v for k, v in means.items() if not math.isnan(v)}
            if not means:
                continue
            k = max(means, key=lambda j: (means[j], -j))  # ties: the earlier round
            chosen[a] = (k, means[k])
            report = [r for r in runs_of(a, confirm or choose) if k in r]
            print(f"| {a} | {k} | {means[k]:.1f} % | {interval([r[k][1] for r in report])} | "
                  f"{interval([r[k][1] - r[0][1] for r in report], True)} |")
        free = {a: v for a, v in chosen.items() if a not in LABELLED and a not in CONTROLS}
        if free:
            a = max(free, key=lambda x: free[x][1])
            print(f"\nThe label-free recipe chosen on validation: `{a}`, round {free[a][0]} (reported on test above"
                  + (f", on seeds {', '.join(map(str, confirm))} that were not used for choosing)." if confirm else ").") + "\n")

        for what, idx, fmt in (("Kendall tau of the judge against the verifier", 3, "{:.2f}"), ("CREAM consistency C", 4, "{:.2f}"),
                               ("pairs kept", 2, "{:.0f}")):
            print(f"\n{what} (mean over seeds):\n")
            print(f"| arm | {rounds_head} |\n|---|" + "---|" * last)
            for a in arms:
                cells = []
                for k in range(1, last + 1):
                    v = [r[k][idx] for r in runs[(task, a)].values() if k in r and not math.isnan(r[k][idx])]
                    cells.append(fmt.format(sum(v) / len(v)) if v else "-")
                print(f"| {a} | " + " | ".join(cells) + " |")
        print("\nJudge accuracy on the checker-scored pairwise set, judge/pairwise_accuracy (reported only; ties and unscored "
              "pairs count half; mean over seeds):\n")
        print(f"| arm | " + " | ".join(f"round {r}" for r in range(last + 1)) + " |\n|---|" + "---|" * (last + 1))
        for a in arms:
            cells = []
            for k in range(last + 1):
                v = [r[k][5] for r in runs[(task, a)].values() if k in r and not math.isnan(r[k][5])]
                cells.append(f"{sum(v) / len(v):.3f}" if v else "-")
            print(f"| {a} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    args = sys.argv[1:]
    opts = {args[i]: args[i + 1] for i in range(1, len(args) - 1, 2)}
    main(args[0], opts.get("--baseline", "llm"), seed_range(opts.get("--test-seeds", "")))
