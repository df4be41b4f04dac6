"""Tables of the label-free experiment from align_sweep.sh's logs (one log per task, arm and seed).

Usage: python3 align_summary.py FOLDER. Prints, per task: held-out accuracy per round (mean and 95%
t-interval over seeds), the change over round 0 paired by seed, and per round the Kendall tau of the
arm's judge against the verifier, CREAM's consistency C (1 where it does not apply) and the pairs kept. Runs that did not finish a round are left out of it.
"""
import glob, math, os, re, sys
from collections import defaultdict

T975 = [float("nan"), 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
ROUND0 = re.compile(r"^seed (\d+) (\S+): round 0 .*held-out accuracy ([\d.]+) ?%")
ROUND = re.compile(r"^\s+(\S+)\s+round (\d+): accuracy ([\d.]+) ?%, pairs (\d+), C ([\d.NaN]+), tau\(judge, verifier\) (\S+),")


def interval(values, points=False):
    n = len(values)
    if n == 0:
        return "-"
    mean = sum(values) / n
    half = T975[n - 1] * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n) if n > 1 else float("nan")
    return f"{mean:+.1f} ± {half:.1f}" if points else f"{mean:.1f} % ± {half:.1f}"


def main(folder):
    runs = defaultdict(dict)  # (task, arm) -> seed -> {round: (acc, pairs, tau)}
    command = None
    for path in sorted(glob.glob(os.path.join(folder, "*.log"))):
        task = os.path.basename(path).split("-")[0]
        rounds, seed, arm = {}, None, None
        for line in open(path, errors="replace"):
            if line.startswith("$ ") and command is None:
                command = line.strip()
            if m := ROUND0.match(line):
                seed, arm = int(m.group(1)), m.group(2)
                rounds[0] = (float(m.group(3)), float("nan"), float("nan"), float("nan"))
            elif (m := ROUND.match(line)) and seed is not None:
                rounds[int(m.group(2))] = (float(m.group(3)), float(m.group(4)), float(m.group(6)), float(m.group(5)))
        if seed is not None:
            runs[(task, arm)][seed] = rounds
    print(f"Logs: {folder}; first command: `{command}` (each log holds its own)\n")
    for task in sorted({t for t, _ in runs}):
        arms = [a for t, a in runs if t == task]
        last = max(max(r) for a in arms for r in runs[(task, a)].values())
        heads = " | ".join(f"round {r}" for r in range(last + 1))
        seeds = sorted({s for a in arms for s in runs[(task, a)]})
        print(f"### Task `{task}`: held-out accuracy (mean ± 95% t-interval over seeds {', '.join(map(str, seeds))})\n")
        print(f"| arm | {heads} |\n|---|" + "---|" * (last + 1))
        for a in arms:
            print(f"| {a} | " + " | ".join(interval([r[k][0] for r in runs[(task, a)].values() if k in r]) for k in range(last + 1)) + " |")
        print(f"\nChange over round 0, paired by seed (percentage points, 95% t-interval):\n")
        print(f"| arm | " + " | ".join(f"round {r}" for r in range(1, last + 1)) + " |\n|---|" + "---|" * last)
        for a in arms:
            print(f"| {a} | " + " | ".join(interval([r[k][0] - r[0][0] for r in runs[(task, a)].values() if k in r], True) for k in range(1, last + 1)) + " |")
        for what, idx, fmt in (("Kendall tau of the judge against the verifier", 2, "{:.2f}"), ("CREAM consistency C", 3, "{:.2f}"),
                               ("pairs kept", 1, "{:.0f}")):
            print(f"\n{what} (mean over seeds):\n")
            print(f"| arm | " + " | ".join(f"round {r}" for r in range(1, last + 1)) + " |\n|---|" + "---|" * last)
            for a in arms:
                cells = []
                for k in range(1, last + 1):
                    v = [r[k][idx] for r in runs[(task, a)].values() if k in r and not math.isnan(r[k][idx])]
                    cells.append(fmt.format(sum(v) / len(v)) if v else "-")
                print(f"| {a} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
